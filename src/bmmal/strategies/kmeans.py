"""k-means sampling (as a diversity baseline, e.g. Zhdanov, "Diverse mini-batch Active Learning", 2019;
the reference BMMAL code's `kmeans`).

Clusters the fused embedding (`embeddings`, concatenated) of the unlabelled rows into k = budget
clusters with scikit-learn's MiniBatchKMeans (k-means++ seeds from a subsample, drawn with the shared
k-means++ kernel, which is much faster here than scikit-learn's own; seeded) and selects, per
cluster, the member nearest the mean of the cluster's members (MiniBatchKMeans centroids are running
averages; the exact mean costs one pass), so the rows are distinct by construction. A cluster left
empty (possible with duplicate points) takes the unselected row nearest its centroid, so exactly
`budget` rows come back. The reference code kept two points from about half the clusters instead.

Cost: `max_iter` passes (epochs) over the unlabelled pool at most, in mini-batches of max(4096, k),
each batch O(batch k D), plus one O(U k D) labelling pass, after k-means++ seeding on
3 x batch rows, O(k batch D) (the reference made a single mini-batch step).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning

from bmmal.strategies.base import Strategy
from bmmal.strategies.fused import fused_rows
from bmmal.strategies.kmeanspp import OuterProductEmbedding, kmeanspp_seeding
from bmmal.strategies.registry import register


def kmeanspp_init(x: torch.Tensor, k: int, sample_size: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds from a random subsample of `sample_size` rows (as scikit-learn's init_size), with
    the shared kernel: a plain row x_i is the outer product 1 (x) x_i, one matrix-vector product a seed."""
    sample = np.sort(rng.choice(len(x), size=min(len(x), max(sample_size, k)), replace=False))
    rows = x[torch.as_tensor(sample)]
    with warnings.catch_warnings():  # duplicates: the kernel fills up at random, which is fine for seeds
        warnings.simplefilter("ignore", RuntimeWarning)
        seeds = kmeanspp_seeding(OuterProductEmbedding(None, rows), k, rng)
    return rows[torch.as_tensor(seeds)].numpy()


def member_means(x: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The mean of each cluster's members; an empty cluster keeps its centroid."""
    sums = torch.zeros(centroids.shape, dtype=torch.float32).index_add_(
        0, torch.as_tensor(labels, dtype=torch.long), torch.as_tensor(x, dtype=torch.float32))
    counts = np.bincount(labels, minlength=len(centroids))[:, None]
    return np.where(counts > 0, sums.numpy() / np.maximum(counts, 1), centroids).astype(x.dtype)


def nearest_per_cluster(x: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One distinct row per centroid: its nearest member, or (empty cluster) the nearest unused row."""
    d2 = np.concatenate([((x[i:i + 4096] - centroids[labels[i:i + 4096]]) ** 2).sum(1, dtype=np.float64)
                         for i in range(0, len(x), 4096)])  # in blocks: no [U, D] temporaries
    order = np.lexsort((np.arange(len(x)), d2, labels))  # by cluster, then distance, then position
    first = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    picks = np.full(len(centroids), -1, dtype=np.int64)
    picks[labels[first]] = first
    used = np.zeros(len(x), dtype=bool)
    used[first] = True
    empty = np.flatnonzero(picks < 0)
    x_sq = np.einsum("ij,ij->i", x, x) if len(empty) else None
    for c in empty:
        dist = (x_sq - 2.0 * (x @ centroids[c])).astype(np.float64)
        dist[used] = np.inf
        picks[c] = int(np.argmin(dist))
        used[picks[c]] = True
    return picks


@register
class KMeansSampling(Strategy):
    name = "kmeans"
    needs = frozenset({"embeddings"})
    summary = "one row per k-means cluster (k = budget), nearest the cluster mean, fused embedding"

    def __init__(self, batch_size: int = 4096, max_iter: int = 5):
        self.batch_size = int(batch_size)
        self.max_iter = int(max_iter)

    def _select(self, outputs, candidates, budget, rng):
        if budget == len(candidates):
            return rng.permutation(candidates)
        x = fused_rows(outputs, candidates)
        batch = max(self.batch_size, budget)
        km = MiniBatchKMeans(n_clusters=budget, init=kmeanspp_init(x, budget, 3 * batch, rng), batch_size=batch,
                             max_iter=self.max_iter, n_init=1, random_state=int(rng.integers(2 ** 31 - 1)))
        x = x.numpy()
        with warnings.catch_warnings():  # fewer distinct points than clusters: handled below
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = km.fit_predict(x)
        centres = member_means(x, labels, km.cluster_centers_)
        return candidates[nearest_per_cluster(x, centres, labels)]

    def __repr__(self) -> str:
        return f"KMeansSampling(batch_size={self.batch_size}, max_iter={self.max_iter})"
