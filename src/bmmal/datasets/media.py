"""Decoding and preprocessing of images, video frames, audio and recipe text, as in the BMMAL reference.

Everything here is a plain function of a file (or array) and, for training-time augmentation, a
`numpy.random.Generator`, so that a batch is reproducible from its seed whichever worker builds it.
Images are decoded with Pillow and audio with soundfile (resampled with scipy when needed); neither
torchvision nor torchaudio is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bmmal.errors import BmmalError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)  # the reference's video normalisation (R(2+1)D, Kinetics-400)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise BmmalError("reading images needs Pillow: pip install 'bmmal[media]'") from None
    return Image


# ---- images ------------------------------------------------------------------------------------
def read_image(path: str | Path):
    """The image at `path` as an RGB PIL image; a BmmalError naming the file if it cannot be decoded."""
    Image = _pil()
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise BmmalError(f"image file not found: {path}") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise BmmalError(f"cannot decode image {path}: {e}") from None


def resize_shorter(img, size: int):
    """Scale so that the shorter side is `size` (aspect ratio kept), bilinear."""
    w, h = img.size
    if w <= h:
        new = (size, int(size * h / w))
    else:
        new = (int(size * w / h), size)
    return img.resize(new, _pil().BILINEAR)


def resize_exact(img, height: int, width: int):
    return img.resize((width, height), _pil().BILINEAR)


def crop_box(height: int, width: int, size: int, rng: np.random.Generator | None) -> tuple[int, int]:
    """Top-left corner of a size x size crop: uniform at random with `rng`, else the centre."""
    if height < size or width < size:
        raise BmmalError(f"image of {height}x{width} is smaller than the {size}x{size} crop")
    if rng is None:
        return round((height - size) / 2.0), round((width - size) / 2.0)
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def crop(img, top: int, left: int, size: int):
    return img.crop((left, top, left + size, top + size))


def color_jitter(img, rng: np.random.Generator, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1):
    """Random brightness, contrast, saturation and hue changes, applied in a random order."""
    from PIL import ImageEnhance

    def shift_hue(im, amount):
        h, s, v = im.convert("HSV").split()
        h = h.point(lambda x: (x + round(amount * 255)) % 256)
        return _pil().merge("HSV", (h, s, v)).convert("RGB")

    ops = [
        lambda im: ImageEnhance.Brightness(im).enhance(rng.uniform(1 - brightness, 1 + brightness)),
        lambda im: ImageEnhance.Contrast(im).enhance(rng.uniform(1 - contrast, 1 + contrast)),
        lambda im: ImageEnhance.Color(im).enhance(rng.uniform(1 - saturation, 1 + saturation)),
        lambda im: shift_hue(im, rng.uniform(-hue, hue)),
    ]
    for i in rng.permutation(len(ops)):
        img = ops[i](img)
    return img


def food101_augment(img, rng: np.random.Generator):
    """The reference's training augmentation after the crop: flip, colour jitter (p 0.8), grayscale (p 0.2),
    Gaussian blur (sigma uniform in [0.1, 2]; the reference's 21-tap kernel covers +-5 sigma)."""
    from PIL import ImageFilter

    if rng.random() < 0.5:
        img = img.transpose(_pil().FLIP_LEFT_RIGHT)
    if rng.random() < 0.8:
        img = color_jitter(img, rng)
    if rng.random() < 0.2:
        img = img.convert("L").convert("RGB")
    return img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.1, 2.0))))


def to_tensor(img, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[3, H, W] float32, scaled to [0, 1] and then normalised per channel."""
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def food101_image(path, rng: np.random.Generator | None, resize: int = 256, size: int = 224) -> torch.Tensor:
    """Resize 256, crop 224 (random with augmentation in training, centre otherwise), ImageNet normalisation."""
    img = resize_shorter(read_image(path), resize)
    top, left = crop_box(img.size[1], img.size[0], size, rng)
    img = crop(img, top, left, size)
    if rng is not None:
        img = food101_augment(img, rng)
    return to_tensor(img, IMAGENET_MEAN, IMAGENET_STD)


# ---- video frames ------------------------------------------------------------------------------
def frame_indices(n_frames: int, n_sampled: int, rng: np.random.Generator | None) -> np.ndarray:
    """Which of a clip's extracted frames to use: `n_sampled` distinct random ones (sorted) in training,
    otherwise the centres of `n_sampled` equal segments (frames 1, 3, 5, 7, 9 of 10, as the reference)."""
    if n_sampled > n_frames:
        raise BmmalError(f"cannot sample {n_sampled} frames from a clip of {n_frames}")
    if rng is not None:
        return np.sort(rng.choice(n_frames, size=n_sampled, replace=False))
    return ((np.arange(n_sampled) + 0.5) * n_frames / n_sampled).astype(np.int64)


VIDEO_AUGMENTATIONS = ("per_frame", "per_clip")


def video_clip(frame_paths: Sequence[str | Path], n_sampled: int, rng: np.random.Generator | None,
               resize: tuple[int, int] = (128, 171), size: int = 112, augmentation: str = "per_frame"
               ) -> torch.Tensor:
    """[3, T, H, W]: sampled frames resized to 128x171, cropped to 112, Kinetics normalisation.

    In training (`rng` given) each frame gets a random crop and a random horizontal flip: drawn for every
    frame separately with `augmentation="per_frame"` (the reference applies its torchvision transform to
    each frame), or once for the whole clip with `"per_clip"`. Otherwise every frame is centre-cropped."""
    if augmentation not in VIDEO_AUGMENTATIONS:
        raise BmmalError(f"video augmentation must be one of {', '.join(VIDEO_AUGMENTATIONS)}, got {augmentation!r}")
    chosen = frame_indices(len(frame_paths), n_sampled, rng)

    def draw():
        top, left = crop_box(resize[0], resize[1], size, rng)
        return top, left, rng is not None and rng.random() < 0.5

    clip_draw = draw() if augmentation == "per_clip" else None
    frames = []
    for i in chosen:
        top, left, flip = clip_draw or draw()
        img = crop(resize_exact(read_image(frame_paths[i]), *resize), top, left, size)
        if flip:
            img = img.transpose(_pil().FLIP_LEFT_RIGHT)
        frames.append(to_tensor(img, KINETICS_MEAN, KINETICS_STD))
    return torch.stack(frames, dim=1)


# ---- audio -------------------------------------------------------------------------------------
def read_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 waveform at `sample_rate` (channels averaged; resampled with a polyphase filter)."""
    try:
        import soundfile
    except ImportError:
        raise BmmalError("reading audio needs soundfile: pip install 'bmmal[media]'") from None
    try:
        wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise BmmalError(f"audio file not found: {path}") from None
    except (RuntimeError, OSError, ValueError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise BmmalError(f"cannot decode audio {path}: {e}") from None
    wave = wave.mean(axis=1)
    if rate != sample_rate:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(rate), sample_rate)
        wave = resample_poly(wave, sample_rate // g, int(rate) // g).astype(np.float32)
    return wave


def fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Cut to n samples, or pad the end with zeros."""
    return wave[:n] if len(wave) >= n else np.pad(wave, (0, n - len(wave)))


def audio_window(wave: np.ndarray, sample_rate: int, rng: np.random.Generator | None,
                 clip_seconds: float = 10.0, window_seconds: float = 5.0) -> np.ndarray:
    """A `window_seconds` window of the clip (padded or cut to `clip_seconds`): a random start in training,
    the middle ([2.5 s, 7.5 s] of 10 s) otherwise; clipped to [-1, 1]."""
    wave = fit_length(wave, int(clip_seconds * sample_rate))
    width = int(window_seconds * sample_rate)
    if rng is not None:
        start = int(rng.integers(0, len(wave) - width + 1))
    else:
        start = int((clip_seconds - window_seconds) / 2 * sample_rate)
    return np.clip(wave[start:start + width], -1.0, 1.0)


def log_spectrogram(wave: np.ndarray, n_fft: int = 512, hop: int = 159) -> torch.Tensor:
    """[n_fft // 2 + 1, 1 + len // hop]: log(|STFT| + 1e-7), Hann window, frames centred (zero padding)."""
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft), center=True,
                      pad_mode="constant", return_complex=True)
    return torch.log(spec.abs() + 1e-7)


def audio_spectrogram(path, rng: np.random.Generator | None, mean: float, std: float,
                      sample_rate: int = 16000) -> torch.Tensor:
    """[1, 257, 504]: the reference's standardised log spectrogram of a 5 s window of the clip."""
    wave = audio_window(read_audio(path, sample_rate), sample_rate, rng)
    return ((log_spectrogram(wave) - mean) / std).unsqueeze(0)


# ---- recipe text -------------------------------------------------------------------------------
# The reference preprocessing (and MMBT's Food-101 script before it) replaces these characters by spaces.
_REMOVED = re.compile(r"[<>/\\+=\-_\[\]{}'\";:.,()*&^%$#@!~`|]")


def recipe_tokens(text: str) -> list[str]:
    """The reference's tokens of a recipe page: the characters above replaced by spaces, lower-cased, then
    NLTK's Treebank word tokenizer (which splits "cannot" into "can", "not" and keeps "?" as a token).

    The reference calls `nltk.word_tokenize`, which first splits sentences with the Punkt model; here the
    text is tokenised as one line (no Punkt data needed). With the periods already removed, the sentence
    split does not change the tokens."""
    try:
        from nltk.tokenize import word_tokenize
    except ImportError:
        raise BmmalError("Food-101 text needs NLTK's tokenizer: pip install 'bmmal[media]'") from None
    return word_tokenize(_REMOVED.sub(" ", text).lower(), preserve_line=True)


def ingredient_words(text: str, max_words: int = 100) -> list[str] | None:
    """The reference's text of a Food-101 sample: None when no token is exactly "ingredients" (the
    reference drops the sample); otherwise the `max_words` tokens after the section start.

    The start is where the reference's loop lands: it takes the last token that contains "ingredients"
    and looks up that token's *first* occurrence (`list.index`). With two "ingredients" tokens that is
    the first one; after "ingredients ... ingredientsx" it is the first "ingredientsx"."""
    tokens = recipe_tokens(text)
    if "ingredients" not in tokens:
        return None
    last = [t for t in tokens if "ingredients" in t][-1]
    start = tokens.index(last)
    return tokens[start + 1:start + 1 + max_words]
