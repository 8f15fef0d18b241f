"""Emoji-9 raw: the Emoji-9 samples (see emoji9.py) as raw inputs for encoders trained end to end: the
glyph as a small colour image and the emoji's name as characters, labelled by its group (9 classes).

Built from Debian's `fonts-noto-color-emoji` and `unicode-data` (install: `apt-get install -y
fonts-noto-color-emoji unicode-data`). Modalities:
- "image": the glyph drawn on white, resized to `image_size` (32) pixels, [3, 32, 32], standardised with
  one mean and standard deviation of the train split;
- "text": the lower-cased name, e.g. "grinning face", as `text_length` (40) character ids (0 pads).
Stratified 80/20 split by `seed`. Build and cache it with one command: `python -m bmmal.datasets.emoji9_raw`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bmmal.data import ArrayDataset
from bmmal.datasets.emoji9 import EMOJI_TEST, FONT, GLYPH_SIZE, _check_installed, read_emoji_test, render
from bmmal.datasets.encoded import check_modalities
from bmmal.datasets.raw import cached_arrays, split_raw
from bmmal.errors import BmmalError

MODALITIES = ("image", "text")


def glyph_images(chars: list[str], font, size: int) -> np.ndarray:
    """[N, 3, size, size] uint8: each glyph on white, resized (Lanczos)."""
    from PIL import Image

    out = np.empty((len(chars), 3, size, size), dtype=np.uint8)
    for i, char in enumerate(chars):
        glyph = render(char, font)
        canvas = Image.new("RGBA", glyph.size, (255, 255, 255, 255))
        canvas.alpha_composite(glyph)
        out[i] = np.asarray(canvas.convert("RGB").resize((size, size), Image.LANCZOS)).transpose(2, 0, 1)
    return out


def load_font(font: str | Path | None, size: int = GLYPH_SIZE):
    """The emoji font at the size it renders at; `None`: Pillow's built-in font (for tests without fonts)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size) if font is None else ImageFont.truetype(str(font), size)


def build_emoji9_raw(image_size: int = 32, text_length: int = 40, font: str | Path | None = FONT,
                     emoji_test: str | Path = EMOJI_TEST, cache_dir=None) -> ArrayDataset:
    emoji_test = Path(emoji_test)
    _check_installed(Path(font) if font is not None else emoji_test, emoji_test)
    if image_size < 8 or text_length < 1:
        raise BmmalError("emoji9_raw: image_size must be at least 8 and text_length at least 1")
    emoji = read_emoji_test(emoji_test)
    classes = tuple(dict.fromkeys(e.group for e in emoji))
    key = [emoji_test, Path(font) if font is not None else "pillow default font", f"{image_size} {text_length} v1"]

    def build() -> dict[str, np.ndarray]:
        from bmmal.models.small import char_ids

        return {"image": glyph_images([e.char for e in emoji], load_font(font), image_size),
                "text": char_ids([e.name for e in emoji], text_length)}

    arrays = cached_arrays("emoji9_raw", key, build, cache_dir)
    labels = np.array([classes.index(e.group) for e in emoji], dtype=np.int64)
    return ArrayDataset(arrays, labels, classes, np.array([e.code for e in emoji]), name="emoji9_raw")


def load_emoji9_raw(modalities=None, seed: int = 0, test_fraction: float = 0.2, image_size: int = 32,
                    text_length: int = 40, font: str | Path | None = FONT, emoji_test: str | Path = EMOJI_TEST,
                    cache_dir=None):
    modalities = check_modalities("emoji9_raw", modalities or MODALITIES, MODALITIES)
    data = build_emoji9_raw(image_size, text_length, font, emoji_test, cache_dir)
    data = ArrayDataset({m: data.features[m] for m in modalities}, data.labels, data.classes, data.ids, data.name)
    return split_raw(data, seed, test_fraction, [m for m in modalities if m == "image"])


def main() -> None:
    train, test = load_emoji9_raw()
    shapes = ", ".join(f"{m} {list(s)}" for m, s in train.input_shapes().items())
    print(f"emoji9_raw: {len(train)} train and {len(test)} test samples, {len(train.classes)} classes; {shapes}")


if __name__ == "__main__":
    main()
