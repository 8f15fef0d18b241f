"""CoreGCN and UncertainGCN (Caramalau, Bhattarai & Kim, "Sequential Graph Convolutional Network for
Active Learning", CVPR 2021).

Both train a two-layer GCN over all pool rows (labelled and unlabelled) to tell labelled rows (-> 1)
from unlabelled ones (-> 0), with the paper's loss
    L = -mean_labelled log s - lambda * mean_unlabelled log(1 - s),   lambda = 1.2,
(Adam, lr 1e-3, weight decay 5e-4, 200 epochs, hidden 128, dropout 0.3). Nodes are the L2-normalised
fused embeddings (`embeddings`, concatenated). CoreGCN then runs greedy k-center on the GCN's hidden
features with the labelled rows as centres; UncertainGCN selects the unlabelled rows whose score s is
closest to the margin (0.1 in the authors' code).

Deviations, for pools of any size (the paper builds a dense N x N graph over a random subset; the
reference code cuts the pool into independent chunks of 20,000):
- the graph is sparse: each node keeps its `neighbours` most cosine-similar nodes (similarities below
  0 become 0), rows normalised to sum 1, plus self-loops (the paper: D^-1 (X X^T - I) + I, dense);
- when the embedding is wider than `dims`, the nodes are first projected on their top `dims` right
  singular vectors (seeded randomised SVD), which makes the neighbour search and the training
  O(N dims) per pass instead of O(N D).
Memory is O(N (dims + neighbours)), time O(N^2 dims) for the neighbour search (in blocks).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bmmal.errors import BmmalError
from bmmal.strategies.base import Strategy
from bmmal.strategies.fused import fused_rows
from bmmal.strategies.kcenter import greedy_k_center
from bmmal.strategies.registry import register

BLOCK_ELEMENTS = 2 ** 23  # rows per block * N in the neighbour search
EPS = 1e-7


def node_features(x: torch.Tensor, dims: int) -> torch.Tensor:
    """L2-normalised rows; when wider than `dims`, projected on their top `dims` right singular vectors
    (randomised SVD, uncentred: the best rank-`dims` approximation of the similarity matrix X X^T)
    and renormalised."""
    x = F.normalize(x.float(), dim=1)
    if x.shape[1] > dims and len(x) > dims:
        _, _, v = torch.svd_lowrank(x, q=dims, niter=2)
        x = F.normalize(x @ v, dim=1)
    return x


def knn_adjacency(x: torch.Tensor, neighbours: int) -> torch.Tensor:
    """Sparse [N, N] row-normalised k-nearest-neighbour cosine graph plus the identity (x: unit rows)."""
    n = len(x)
    k = min(neighbours, n - 1)
    rows, cols, vals = [torch.arange(n)], [torch.arange(n)], [torch.ones(n)]
    if k > 0:
        block = max(1, BLOCK_ELEMENTS // n)
        buffer = torch.empty(min(block, n), n, dtype=x.dtype)  # reused: a fresh product per block grew RSS
        for start in range(0, n, block):
            own = torch.arange(start, min(start + block, n))
            sim = torch.mm(x[start:start + block], x.T, out=buffer[:len(own)])
            sim[torch.arange(len(own)), own] = float("-inf")
            top = sim.topk(k, dim=1)
            weight = top.values.clamp_min(0.0)
            weight = weight / weight.sum(1, keepdim=True).clamp_min(EPS)
            rows.append(own.repeat_interleave(k))
            cols.append(top.indices.reshape(-1))
            vals.append(weight.reshape(-1))
    index = torch.stack([torch.cat(rows), torch.cat(cols)])
    return torch.sparse_coo_tensor(index, torch.cat(vals), (n, n), check_invariants=True).coalesce()


def propagate(adj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """adj @ h over the edge list (gather, scale, index_add): differentiable in h, no sparse transpose."""
    rows, cols = adj.indices()
    return torch.zeros(adj.shape[0], h.shape[1], dtype=h.dtype).index_add_(0, rows, adj.values()[:, None] * h[cols])


class SequentialGCN(nn.Module):
    """gc1 -> ReLU -> dropout -> gc2 -> sigmoid; a graph convolution is adj @ (h W) + b."""

    def __init__(self, in_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.gc1 = nn.Linear(in_dim, hidden)
        self.gc2 = nn.Linear(hidden, 1)
        self.dropout = dropout

    def forward(self, adj_x: torch.Tensor, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores [N], hidden features [N, hidden]); adj_x = adj @ x, computed once (gc1 is linear)."""
        hidden = F.relu(adj_x @ self.gc1.weight.T + self.gc1.bias)
        h = F.dropout(hidden, self.dropout, self.training)
        logit = propagate(adj, h @ self.gc2.weight.T).squeeze(1) + self.gc2.bias
        return torch.sigmoid(logit), hidden


def train_gcn(x: torch.Tensor, labeled: torch.Tensor, seed: int, *, neighbours: int = 10, dims: int = 128,
              hidden: int = 128, dropout: float = 0.3, epochs: int = 200, lr: float = 1e-3,
              weight_decay: float = 5e-4, lam: float = 1.2) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores [N], hidden features [N, hidden]) of a GCN trained to tell `labelled` rows from the rest."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        nodes = node_features(x, dims)
        adj = knn_adjacency(nodes, neighbours)
        adj_x = propagate(adj, nodes)
        model = SequentialGCN(nodes.shape[1], hidden, dropout)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        model.train()
        for _ in range(epochs):
            optimizer.zero_grad()
            s, _ = model(adj_x, adj)
            loss = -lam * torch.log((1 - s[~labeled]).clamp_min(EPS)).mean()
            if labeled.any():
                loss = loss - torch.log(s[labeled].clamp_min(EPS)).mean()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            return model(adj_x, adj)


class GCNStrategy(Strategy):
    needs = frozenset({"embeddings"})

    def __init__(self, neighbours: int = 10, dims: int = 128, hidden: int = 128, epochs: int = 200,
                 lam: float = 1.2):
        if min(neighbours, dims, hidden) < 1 or epochs < 0 or lam < 0:
            raise BmmalError(f"{self.name}: neighbours, dims and hidden must be >= 1, epochs and lam >= 0")
        self.params = {"neighbours": int(neighbours), "dims": int(dims), "hidden": int(hidden),
                       "epochs": int(epochs), "lam": float(lam)}

    def train(self, outputs, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return train_gcn(fused_rows(outputs, np.arange(len(outputs))), outputs.labeled, seed, **self.params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.params.items())})"


@register
class CoreGCN(GCNStrategy):
    name = "coregcn"
    summary = "k-center on features of a GCN trained labelled-vs-unlabelled (Caramalau et al., CVPR 2021)"

    def _select(self, outputs, candidates, budget, rng):
        _, hidden = self.train(outputs, int(rng.integers(2 ** 31 - 1)))
        labeled = outputs.labeled.numpy()
        return candidates[greedy_k_center(hidden[candidates], budget, hidden[labeled], rng)]


@register
class UncertainGCN(GCNStrategy):
    name = "uncertaingcn"
    summary = "GCN labelled-vs-unlabelled score closest to the margin (Caramalau et al., CVPR 2021)"

    def __init__(self, margin: float = 0.1, **params):
        super().__init__(**params)
        if not 0 <= margin <= 1:
            raise BmmalError(f"uncertaingcn: margin must be in [0, 1], got {margin}")
        self.margin = float(margin)

    def _row_scores(self, outputs, rows, seed: int) -> np.ndarray:
        scores, _ = self.train(outputs, seed)
        return -(scores[torch.as_tensor(rows, dtype=torch.long)].double() - self.margin).abs().numpy()

    def _select(self, outputs, candidates, budget, rng):
        scores = self._row_scores(outputs, candidates, int(rng.integers(2 ** 31 - 1)))
        order = np.lexsort((rng.random(len(candidates)), -scores))[:budget]  # ties broken by the seed
        return candidates[order]

    def scores(self, outputs, seed: int = 0):
        """-|s - margin| per unlabelled row (NaN for labelled), from a GCN trained with `seed`."""
        out = np.full(len(outputs), np.nan)
        rows = outputs.unlabeled_rows
        out[rows] = self._row_scores(outputs, rows, int(np.random.default_rng(seed).integers(2 ** 31 - 1)))
        return out

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", margin={self.margin})"
