"""DeepFool sampling (Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to
fool deep neural networks", CVPR 2016; as active learning: Ducoffe & Precup, "Adversarial Active
Learning for Deep Networks: a Margin Based Approach", 2018).

For each unlabelled row, iterative multi-class DeepFool on the fused head (`fuse`) starting from the
row's modality embeddings (`embeddings`): linearise the head, step to the nearest linearised
boundary f_k = f_y over the candidate classes k, repeat until the predicted class changes or
`max_iter` steps. The candidates are the `top_k` classes of highest logit (10, as in the DeepFool
authors' implementation; `top_k=None` for all classes). The score is minus the norm of the
accumulated perturbation, so rows closest to a decision boundary are selected first. For a linear
head one step is exact: the norm is min_k |f_k - f_y| / |w_k - w_y|.

Cost: per row and step, one backward pass per candidate class (grad_outputs e_k - e_y), vectorised
over blocks of rows, so O(N top_k C D) time and O(BLOCK_ELEMENTS) extra memory. The reference code
always aimed at its 10th-ranked class (a bug) and looped per sample.
"""

from __future__ import annotations

import numpy as np
import torch

from bmmal.errors import BmmalError
from bmmal.strategies.base import ScoreStrategy
from bmmal.strategies.registry import register

BLOCK_ELEMENTS = 2 ** 22  # rows per block * embedding size


def _gather(f: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    return f.gather(1, classes[:, None]).squeeze(1)


def _boundary_normal(x, f, k, y, retain: bool) -> torch.Tensor:
    """[B, D] w = grad (f_k - f_y) per row: one backward pass with grad_outputs e_k - e_y."""
    direction = torch.zeros_like(f)
    direction.scatter_add_(1, k[:, None], torch.ones_like(f[:, :1]))
    direction.scatter_add_(1, y[:, None], -torch.ones_like(f[:, :1]))
    return torch.autograd.grad(f, x, grad_outputs=direction, retain_graph=retain)[0]


def _nearest_boundary(x, f, y, classes):
    """Per row: distance to the nearest linearised boundary, its |f_k - f_y| and normal w_k - w_y.

    Two passes over [B, D] per candidate class (the backward pass and a norm); the normal of the
    nearest boundary is recomputed once at the end instead of being kept per class.
    """
    best = torch.full((len(x),), float("inf"), dtype=torch.float64)
    best_gap = torch.zeros(len(x), dtype=torch.float64)
    best_k = y.clone()
    fd = f.detach()
    for j in range(classes.shape[1]):
        k = classes[:, j]
        norm = torch.linalg.vector_norm(_boundary_normal(x, f, k, y, retain=True), dim=1).double()
        gap = (_gather(fd, k) - _gather(fd, y)).double().abs()
        dist = torch.where(gap == 0, torch.zeros_like(gap), gap / norm)  # gap > 0, norm 0: inf (never)
        better = dist < best
        best = torch.where(better, dist, best)
        best_gap = torch.where(better, gap, best_gap)
        best_k = torch.where(better, k, best_k)
    return best, best_gap, _boundary_normal(x, f, best_k, y, retain=False)  # k = y (none better): w = 0


def deepfool_distances(fuse, blocks: list[torch.Tensor], names: list[str], max_iter: int = 50,
                       overshoot: float = 0.02, top_k: int | None = None) -> torch.Tensor:
    """[n] float64 norms of the DeepFool perturbations of rows [z_1, ..., z_M] (inf: no other class)."""
    sizes = [b.shape[1] for b in blocks]
    x0 = torch.cat([b.float() for b in blocks], dim=1)

    def logits(x):
        return fuse(dict(zip(names, x.split(sizes, dim=1)))).float()

    with torch.no_grad():
        f0 = logits(x0)
    y = f0.argmax(1)
    n_classes = f0.shape[1]
    k = n_classes - 1 if top_k is None else min(int(top_k), n_classes - 1)
    if k < 1:
        return torch.full((len(x0),), float("inf"), dtype=torch.float64)
    classes = f0.scatter(1, y[:, None], float("-inf")).topk(k, dim=1).indices
    r_tot = torch.zeros_like(x0)
    result = torch.zeros(len(x0), dtype=torch.float64)
    active = torch.arange(len(x0))
    for step in range(max_iter):
        x = x0[active] + (1 + overshoot) * r_tot[active]
        if step > 0:  # rows whose predicted class changed are done
            with torch.no_grad():
                keep = logits(x).argmax(1) == y[active]
            active, x = active[keep], x[keep]
            if len(active) == 0:
                break
        x.requires_grad_(True)
        with torch.enable_grad():
            f = logits(x)
            if not f.requires_grad:
                raise BmmalError("deepfool needs a differentiable fuse (it ran under torch.no_grad)")
            dist, gap, w = _nearest_boundary(x, f, y[active], classes[active])
        stuck = torch.isinf(dist)  # every normal is zero: no boundary in reach, the distance is infinite
        result[active[stuck]] = float("inf")
        sq_norm = (w.double() ** 2).sum(1)
        scale = torch.where(stuck | (gap == 0), torch.zeros_like(gap), gap / sq_norm.clamp_min(1e-300))
        r_tot[active] += (scale[:, None] * w.double()).float()
        active = active[~stuck & (gap > 0)]  # gap 0: already on a boundary
        if len(active) == 0:
            break
    finite = ~torch.isinf(result)
    result[finite] = torch.linalg.vector_norm(r_tot[finite], dim=1).double()
    return result


@register
class DeepFool(ScoreStrategy):
    name = "deepfool"
    needs = frozenset({"embeddings", "fuse"})
    summary = "smallest DeepFool perturbation of the fused embedding (Ducoffe & Precup, 2018)"

    def __init__(self, max_iter: int = 50, overshoot: float = 0.02, top_k: int | None = 10):
        if max_iter < 1 or overshoot < 0 or (top_k is not None and top_k < 1):
            raise BmmalError("deepfool: max_iter and top_k must be at least 1 and overshoot at least 0")
        self.max_iter, self.overshoot, self.top_k = int(max_iter), float(overshoot), top_k

    def distances(self, outputs, rows: np.ndarray) -> torch.Tensor:
        names = list(outputs.embeddings)
        dim = sum(z.shape[1] for z in outputs.embeddings.values())
        block = max(1, BLOCK_ELEMENTS // max(1, dim))
        parts = []
        for start in range(0, len(rows), block):
            index = torch.as_tensor(rows[start:start + block], dtype=torch.long)
            parts.append(deepfool_distances(outputs.fuse, [outputs.embeddings[m][index] for m in names], names,
                                            self.max_iter, self.overshoot, self.top_k))
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)

    def row_scores(self, outputs, rows):
        return (-self.distances(outputs, np.asarray(rows))).numpy()

    def __repr__(self) -> str:
        return f"DeepFool(max_iter={self.max_iter}, overshoot={self.overshoot}, top_k={self.top_k})"
