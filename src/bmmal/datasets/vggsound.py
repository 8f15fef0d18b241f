"""VGGSound (Chen et al., 2020): 10 s YouTube clips of 309 sound classes, audio + frames.

Layout under `root` (the reference's; see docs/paper-datasets.md):
    audio/{train,test}/<label>/<clip id>.wav
    frames/{train,test}/<label>/<clip id>/frame_*.jpg    (10 frames extracted per clip)
    vggsound_{train,test}.json                           optional split file, in `root` or beside it
Spectrograms are standardised with the reference's VGGSound statistics (mean -3.0093, std 2.7911).
Classes are the label folders of the training split, sorted, unless the `classes` option lists them.
"""

from __future__ import annotations

from bmmal.datasets.audiovisual import AVLayout, load_audiovisual

LAYOUT = AVLayout(
    name="vggsound",
    audio_dir=lambda root, split: root / "audio" / split,
    frames_dir=lambda root, split: root / "frames" / split,
    # the reference writes its split file beside the data folder; inside it is accepted too
    split_files=lambda root, split: (root / f"vggsound_{split}.json", root.parent / f"vggsound_{split}.json"),
    anchors=("audio", "frames"),
    spectrogram_mean=-3.0093,
    spectrogram_std=2.7911,
)


def load_vggsound(modalities=None, seed: int = 0, **options):
    return load_audiovisual(LAYOUT, modalities, seed, **options)
