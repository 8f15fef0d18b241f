"""Kinetics-Sounds (Arandjelovic & Zisserman, 2017): the 31 Kinetics-400 classes with useful sound.

Layout under `root` (the reference's; see docs/paper-datasets.md):
    {train,test}/audio/<label>/<clip id>.wav
    {train,test}/video/<label>/<clip id>/frame_*.jpg     (10 frames extracted per clip)
    {train,test}.json                                    optional split file (clip id -> paths, label)
Spectrograms are standardised with the reference's Kinetics-Sounds statistics (mean -3.0352, std 3.0475).
"""

from __future__ import annotations

from bmmal.datasets.audiovisual import AVLayout, load_audiovisual

# The reference's class order (labels are these folder names).
CLASSES = ("bowling", "ripping paper", "playing xylophone", "playing organ", "playing bass guitar",
           "tapping guitar", "playing accordion", "playing guitar", "dribbling basketball", "playing piano",
           "playing bagpipes", "playing saxophone", "playing harmonica", "tickling", "blowing nose", "tapping pen",
           "chopping wood", "blowing out candles", "tap dancing", "stomping grapes", "playing clarinet", "laughing",
           "playing trombone", "shoveling snow", "playing trumpet", "playing violin", "singing", "shuffling cards",
           "playing keyboard", "mowing lawn", "playing drums")

LAYOUT = AVLayout(
    name="kinetics_sounds",
    audio_dir=lambda root, split: root / split / "audio",
    frames_dir=lambda root, split: root / split / "video",
    split_files=lambda root, split: (root / f"{split}.json",),
    anchors=("train", "test"),
    spectrogram_mean=-3.0352,
    spectrogram_std=3.0475,
)


def load_kinetics_sounds(modalities=None, seed: int = 0, classes=None, **options):
    """`classes` defaults to the label folders found in the training split (sorted); the paper config
    lists the reference's 31 classes."""
    return load_audiovisual(LAYOUT, modalities, seed, classes=classes, **options)
