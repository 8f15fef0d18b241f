"""Tux Paint stamps: clip art (image), its English description (text) and a recorded spoken name (audio).

Built from Debian's `tuxpaint-stamps-default` (GPL-2). A stamp is a `<name>.txt` under
/usr/share/tuxpaint/stamps/<category>/...; its first line is the English description, its picture
is `<name>.png` (else `<name>.svg`, rendered with cairosvg) and its speech is `<name>_desc_<lang>.ogg`
(human recordings; French by default, the language with the most clips). The label is the top
category folder; categories with fewer than 20 complete stamps are dropped, leaving 876 stamps in 11
categories for French. Sample ids are the stamp paths without suffix, e.g. "animals/mammals/badger".

Modalities (frozen features, cached): "image" (EfficientNet-Lite0, 1280), "text" (all-MiniLM-L6-v2,
384), "audio" (MFCC statistics, 61). They rank text > image >> audio (about 86 / 81 / 44 %).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bmmal import features as F
from bmmal.data import ArrayDataset
from bmmal.datasets.encoded import check_modalities, split_standardized
from bmmal.errors import BmmalError

ROOT = Path("/usr/share/tuxpaint/stamps")
INSTALL = "apt-get install -y --no-install-recommends tuxpaint-stamps-default"
MODALITIES = ("image", "text", "audio")
MIN_PER_CLASS = 20


@dataclass(frozen=True)
class Stamp:
    id: str
    category: str
    image: Path
    text: str
    speech: Path | None


def find_stamps(root: Path = ROOT, language: str = "fr") -> list[Stamp]:
    """Every stamp with a picture and an English description, sorted by id; `speech` is None where the
    stamp has no recording in `language`."""
    stamps = []
    for txt in sorted(root.rglob("*.txt")):
        base = txt.with_suffix("")
        image = next((p for p in (base.with_suffix(".png"), base.with_suffix(".svg")) if p.is_file()), None)
        speech = base.parent / f"{base.name}_desc_{language}.ogg"
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        if image is None or not lines or not lines[0].strip():
            continue
        rel = base.relative_to(root)
        stamps.append(Stamp(rel.as_posix(), rel.parts[0], image, lines[0].strip(),
                            speech if speech.is_file() else None))
    return stamps


def build_tuxpaint(modalities=MODALITIES, language: str = "fr", per_class: int | None = None,
                   cache_dir: str | Path | None = None, root: str | Path = ROOT) -> ArrayDataset:
    """Stamps with speech in `language`, in the categories with at least MIN_PER_CLASS pictures (all of
    them, or the first `per_class` of each category), unscaled."""
    modalities = check_modalities("tuxpaint", modalities or MODALITIES, MODALITIES)
    root = Path(root)
    if not root.is_dir():
        raise BmmalError(f"Tux Paint needs {root} from Debian's tuxpaint-stamps-default; install it with: {INSTALL}")
    stamps = find_stamps(root, language)
    counts = Counter(s.category for s in stamps)
    classes = tuple(sorted(c for c, n in counts.items() if n >= MIN_PER_CLASS))
    stamps = [s for s in stamps if s.category in classes and s.speech is not None]
    classes = tuple(c for c in classes if any(s.category == c for s in stamps))
    if not stamps:
        raise BmmalError(f"tuxpaint: no stamp under {root} has speech in {language!r} in a category of "
                         f"{MIN_PER_CLASS} or more stamps")
    if per_class is not None:
        if per_class < 1:
            raise BmmalError(f"tuxpaint: per_class must be at least 1, got {per_class}")
        stamps = [s for c in classes for s in [s for s in stamps if s.category == c][:per_class]]
    inputs = {"image": [s.image for s in stamps], "text": [s.text for s in stamps],
              "audio": [s.speech for s in stamps]}
    cache = F.FeatureCache(cache_dir)
    feats = {m: cache.features("tuxpaint", m, F.get(F.default_for(m)), F.fingerprint(inputs[m]),
                               lambda m=m: inputs[m])
             for m in modalities}
    labels = np.array([classes.index(s.category) for s in stamps], dtype=np.int64)
    return ArrayDataset(feats, labels, classes, np.array([s.id for s in stamps]), name="tuxpaint")


def load_tuxpaint(modalities=None, seed: int = 0, test_fraction: float = 0.2, language: str = "fr",
                  per_class: int | None = None, cache_dir: str | Path | None = None, root: str | Path = ROOT):
    """Stratified train/test split (80/20 by default), standardised with train statistics."""
    return split_standardized(build_tuxpaint(modalities, language, per_class, cache_dir, root), seed, test_fraction)
