"""UPMC Food-101 (Wang et al., 2015): recipe web page text + food photo, 101 classes, read from disk.

Layout under `root` (see docs/paper-datasets.md):
    images/{train,test}/<label>/<label>_<n>.jpg
    texts_txt/<label>/<label>_<n>.txt
    {train,test}.json   optional: the reference's split files, a list of
                        {"id", "label", "img_path", "text_tokens"}; used instead of scanning when present
                        (absolute image paths of another machine are re-rooted at `root`)

Text is derived exactly as the reference preprocessing derives it when scanning (see
`media.ingredient_words`): the 100 tokens after the ingredients marker; samples without an
"ingredients" token are dropped and images without a text file are skipped, both counted and logged.
It is then tokenised with the BERT tokenizer to 100 tokens. Images: resize 256, crop 224, augmentation
in training only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bmmal.datasets.filebacked import (
    FileDataset,
    ImageReader,
    MissingFiles,
    TokenReader,
    choose_modalities,
    require_root,
    resolve_path,
)
from bmmal.datasets.frozen import finish
from bmmal.datasets.media import ingredient_words
from bmmal.errors import BmmalError

log = logging.getLogger("bmmal")

MODALITIES = ("text", "image")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as e:
        raise BmmalError(f"cannot read text file {path}: {e}") from None


def _scan(root: Path, split: str) -> tuple[list[dict], int]:
    """Records {"id", "label", "image", "words"} found in the raw UPMC layout, and how many images have no
    text file (the reference skips those; so does this, whatever `on_missing` says)."""
    image_root = root / "images" / split
    if not image_root.is_dir():
        raise BmmalError(f"food101: folder not found: {image_root} (expected images/{split}/<label>/*.jpg)")
    records, no_text = [], 0
    for label_dir in sorted(p for p in image_root.iterdir() if p.is_dir()):
        label = label_dir.name
        for image in sorted(label_dir.glob("*.jpg")):
            text = root / "texts_txt" / label / f"{image.stem}.txt"
            if not text.is_file():
                no_text += 1
                continue
            records.append({"id": f"{label}_{image.name}", "label": label, "image": image,
                            "words": ingredient_words(_read_text(text))})
    if no_text:
        log.warning("food101 %s: skipped %d images without a text file under texts_txt/ (as the reference "
                    "preprocessing does)", split, no_text)
    return records, no_text


def _from_split_file(root: Path, path: Path, missing: MissingFiles) -> list[dict]:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BmmalError(f"cannot read split file {path}: {e}") from None
    records = []
    for entry in entries:
        try:
            image = resolve_path(entry["img_path"], root, ("images",))
            records.append({"id": str(entry["id"]), "label": str(entry["label"]), "image": image,
                            "words": list(entry["text_tokens"])})
        except (KeyError, TypeError):
            raise BmmalError(f"{path}: every entry needs id, label, img_path and text_tokens") from None
    return [r for r in records if missing.file(r["image"])]


def read_split(root: Path, split: str, on_missing: str) -> tuple[list[dict], dict]:
    missing = MissingFiles("food101", on_missing)
    split_file = root / f"{split}.json"
    no_text = 0
    if split_file.is_file():
        records = _from_split_file(root, split_file, missing)
    else:
        records, no_text = _scan(root, split)
    kept = [r for r in records if r["words"] is not None]
    if len(kept) < len(records):
        log.warning("food101 %s: dropped %d samples whose text has no \"ingredients\" token (as the reference "
                    "preprocessing does)", split, len(records) - len(kept))
    return kept, {"skipped_missing": missing.report(split), "skipped_no_text": no_text,
                  "dropped_no_ingredients": len(records) - len(kept)}


def build_split(records: list[dict], classes: tuple[str, ...], modalities, split: str, options: dict,
                meta: dict) -> FileDataset:
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({r["label"] for r in records} - set(index))
    if unknown:
        raise BmmalError(f"food101 {split}: label {unknown[0]!r} is not one of the training classes")
    sources, readers = {}, {}
    for m in modalities:
        if m == "text":
            from bmmal.models.text import tokenize

            sources[m] = list(tokenize([" ".join(r["words"]) for r in records], options["tokenizer"],
                                       options["max_tokens"])) if records else []
            readers[m] = TokenReader(options["max_tokens"])
        else:
            sources[m] = [str(r["image"]) for r in records]
            readers[m] = ImageReader()
    return FileDataset("food101", classes, [r["id"] for r in records], [index[r["label"]] for r in records],
                       sources, readers, options["threads"], meta)


def load_food101(modalities=None, seed: int = 0, root=None, on_missing: str = "error", verify: bool = False,
                 tokenizer: str = "bert-base-uncased", max_tokens: int = 100, classes=None,
                 threads: int | None = None, frozen: dict | None = None):
    """(train, test) FileDatasets of UPMC Food-101 under `root`; with `frozen`, ArrayDatasets of features."""
    root = require_root("food101", root)
    modalities = choose_modalities("food101", modalities, MODALITIES)
    options = {"tokenizer": tokenizer, "max_tokens": int(max_tokens), "threads": threads}
    splits = {}
    for split in ("train", "test"):
        splits[split] = read_split(root, split, on_missing)
    classes = tuple(classes) if classes else tuple(sorted({r["label"] for r in splits["train"][0]}))
    if not classes:
        raise BmmalError(f"food101: no training samples found under {root}")
    train, test = (build_split(splits[s][0], classes, modalities, s, options, splits[s][1]) for s in ("train", "test"))
    if verify:
        train, test = train.verified(on_missing), test.verified(on_missing)
    return finish(train, test, frozen, seed)

