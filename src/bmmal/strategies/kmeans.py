"""k-means sampling (as a diversity baseline, e.g. Zhdanov, "Diverse mini-batch Active Learning", 2019;
the reference BMMAL code's `kmeans`).

Clusters the fused embedding (`embeddings`, concatenated) of the unlabelled rows into k = budget
clusters with scikit-learn's MiniBatchKMeans (k-means++ initialisation, seeded) and selects, per
cluster, the member nearest the mean of the cluster's members (MiniBatchKMeans centroids are running
averages; the exact mean costs one pass), so the rows are distinct by construction. A cluster left
empty (possible with duplicate points) takes the unselected row nearest its centroid, so exactly
`budget` rows come back. The reference code kept two points from about half the clusters instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning

from bmmal.strategies.base import Strategy
from bmmal.strategies.fused import fused_rows
from bmmal.strategies.registry import register


def member_means(x: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The mean of each cluster's members; an empty cluster keeps its centroid."""
    sums = torch.zeros(centroids.shape, dtype=torch.float32).index_add_(
        0, torch.as_tensor(labels, dtype=torch.long), torch.as_tensor(x, dtype=torch.float32))
    counts = np.bincount(labels, minlength=len(centroids))[:, None]
    return np.where(counts > 0, sums.numpy() / np.maximum(counts, 1), centroids).astype(x.dtype)


def nearest_per_cluster(x: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One distinct row per centroid: its nearest member, or (empty cluster) the nearest unused row."""
    d2 = ((x - centroids[labels]) ** 2).sum(1, dtype=np.float64)
    order = np.lexsort((np.arange(len(x)), d2, labels))  # by cluster, then distance, then position
    first = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    picks = np.full(len(centroids), -1, dtype=np.int64)
    picks[labels[first]] = first
    used = np.zeros(len(x), dtype=bool)
    used[first] = True
    x_sq = (x.astype(np.float64) ** 2).sum(1)
    for c in np.flatnonzero(picks < 0):
        dist = x_sq - 2.0 * (x @ centroids[c]).astype(np.float64)
        dist[used] = np.inf
        picks[c] = int(np.argmin(dist))
        used[picks[c]] = True
    return picks


@register
class KMeansSampling(Strategy):
    name = "kmeans"
    needs = frozenset({"embeddings"})
    summary = "one row per k-means cluster (k = budget), nearest its centroid, fused embedding"

    def __init__(self, batch_size: int = 4096, max_iter: int = 100):
        self.batch_size = int(batch_size)
        self.max_iter = int(max_iter)

    def _select(self, outputs, candidates, budget, rng):
        if budget == len(candidates):
            return rng.permutation(candidates)
        x = fused_rows(outputs, candidates).numpy()
        km = MiniBatchKMeans(n_clusters=budget, batch_size=max(self.batch_size, budget), max_iter=self.max_iter,
                             n_init=1, random_state=int(rng.integers(2 ** 31 - 1)))
        with warnings.catch_warnings():  # fewer distinct points than clusters: handled below
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = km.fit_predict(x)
        centres = member_means(x, labels, km.cluster_centers_)
        return candidates[nearest_per_cluster(x, centres, labels)]

    def __repr__(self) -> str:
        return f"KMeansSampling(batch_size={self.batch_size}, max_iter={self.max_iter})"
