"""Emoji-9: every emoji as a rendered glyph (image) and its Unicode/CLDR name (text), labelled by its group.

Built from Debian packages: `fonts-noto-color-emoji` (Noto Color Emoji glyphs, OFL-1.1 font, Apache-2.0
images) and `unicode-data` (emoji-test.txt, Unicode data licence). Every fully-qualified emoji is kept
except the "Component" group and skin-tone variants: 1,870 samples in 9 groups (85 to 363 each) with
Noto 2.042 / Emoji 15. Sample ids are the code points, e.g. "1F600" or "1F469-200D-1F4BB".

Modalities (frozen pretrained features, cached on disk, see `bmmal.features`):
- "image": EfficientNet-Lite0 on the glyph drawn at 109 px on a 160 x 160 canvas (1280 values);
- "text": all-MiniLM-L6-v2 on the emoji's name, e.g. "grinning face" (384 values).
With these encoders text is the stronger modality (about 85 % vs 78 % with all labels).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bmmal import features as F
from bmmal.data import ArrayDataset
from bmmal.datasets.encoded import check_modalities, split_standardized
from bmmal.errors import BmmalError

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
INSTALL = "apt-get install -y fonts-noto-color-emoji unicode-data"
MODALITIES = ("image", "text")
GLYPH_SIZE = 109  # the only size a CBDT bitmap font such as Noto Color Emoji renders at
CANVAS = 160
_LINE = re.compile(r"^([0-9A-F ]+?)\s*;\s*fully-qualified\s*#\s*(\S+)\s+E[\d.]+\s+(.*)$")


@dataclass(frozen=True)
class Emoji:
    code: str  # code points joined by "-"
    char: str
    name: str
    group: str


def read_emoji_test(path: Path = EMOJI_TEST) -> list[Emoji]:
    """Fully-qualified emoji of emoji-test.txt, without the Component group and skin-tone variants."""
    out, group = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif (match := _LINE.match(line)) and group != "Component" and "skin tone" not in match[3]:
            out.append(Emoji("-".join(match[1].split()), match[2], match[3].strip(), group))
    return out


def render(char: str, font):
    """The glyph, centred on a transparent CANVAS x CANVAS RGBA image."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((CANVAS // 2, CANVAS // 2), char, font=font, embedded_color=True, anchor="mm")
    return image


def _check_installed(font: Path, emoji_test: Path) -> None:
    for path in (font, emoji_test):
        if not path.is_file():
            raise BmmalError(f"Emoji-9 needs {path} from Debian's fonts-noto-color-emoji and unicode-data; "
                             f"install them with: {INSTALL}")


def build_emoji9(modalities=MODALITIES, per_class: int | None = None, cache_dir: str | Path | None = None,
                 font: str | Path = FONT, emoji_test: str | Path = EMOJI_TEST) -> ArrayDataset:
    """All samples (or the first `per_class` of each group, in file order), unscaled.

    Only the requested modalities are encoded (or read from the cache).
    """
    modalities = check_modalities("emoji9", modalities or MODALITIES, MODALITIES)
    font, emoji_test = Path(font), Path(emoji_test)
    _check_installed(font, emoji_test)
    emoji = read_emoji_test(emoji_test)
    classes = tuple(dict.fromkeys(e.group for e in emoji))
    if per_class is not None:
        if per_class < 1:
            raise BmmalError(f"emoji9: per_class must be at least 1, got {per_class}")
        emoji = [e for c in classes for e in [e for e in emoji if e.group == c][:per_class]]
    cache = F.FeatureCache(cache_dir)
    names = [e.name for e in emoji]

    def glyphs():
        from PIL import ImageFont

        face = ImageFont.truetype(str(font), GLYPH_SIZE)
        return [render(e.char, face) for e in emoji]

    encode = {
        "image": lambda: cache.features(
            "emoji9", "image", F.get("efficientnet-lite0"),
            F.fingerprint([font, f"glyph {GLYPH_SIZE} canvas {CANVAS}", *(e.char for e in emoji)]), glyphs),
        "text": lambda: cache.features("emoji9", "text", F.get("all-minilm-l6-v2"), F.fingerprint(names),
                                       lambda: names),
    }
    labels = np.array([classes.index(e.group) for e in emoji], dtype=np.int64)
    return ArrayDataset({m: encode[m]() for m in modalities}, labels, classes, np.array([e.code for e in emoji]),
                        name="emoji9")


def load_emoji9(modalities=None, seed: int = 0, test_fraction: float = 0.2, per_class: int | None = None,
                cache_dir: str | Path | None = None, font: str | Path = FONT, emoji_test: str | Path = EMOJI_TEST):
    """Stratified train/test split (80/20 by default), standardised with train statistics."""
    return split_standardized(build_emoji9(modalities, per_class, cache_dir, font, emoji_test), seed, test_fraction)
