"""UCI Multiple Features (mfeat): 2,000 handwritten digits (200 per class), six views.

Source: R. P. W. Duin, "Multiple Features" data set, UCI Machine Learning Repository,
https://doi.org/10.24432/C5HC70, licensed CC BY 4.0 (see data/MFEAT-LICENSE.txt). The vendored file
holds the six views unchanged (integer views as integers, the others as float32).

Views: fou (76 Fourier coefficients), fac (216 profile correlations), kar (64 Karhunen-Loeve
coefficients), pix (240 pixel averages in 2x3 windows), zer (47 Zernike moments), mor (6
morphological features). Their strength differs a lot (about 97 % for fac and pix, 74 % for mor).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from bmmal.data import ArrayDataset, standardize, stratified_split

VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
DEFAULT_MODALITIES = ("pix", "mor")


def read_mfeat() -> ArrayDataset:
    """All 2,000 samples with all six views, unscaled; ids are mfeat-0000 ... mfeat-1999."""
    with resources.files("bmmal.datasets").joinpath("data/mfeat.npz").open("rb") as f:
        z = np.load(f)
        features = {v: z[v] for v in VIEWS}
        labels = z["label"].astype(np.int64)
    ids = np.array([f"mfeat-{i:04d}" for i in range(len(labels))])
    return ArrayDataset(features, labels, tuple(str(d) for d in range(10)), ids, name="mfeat")


def load_mfeat(modalities=None, seed: int = 0, test_fraction: float = 0.2):
    """Stratified train/test split (80/20 by default), standardised with train statistics."""
    data = read_mfeat().select_modalities(modalities or DEFAULT_MODALITIES)
    train_rows, test_rows = stratified_split(data.labels, test_fraction, seed)
    return standardize(data.subset(train_rows), data.subset(test_rows))
