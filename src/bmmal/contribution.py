"""Exact Shapley modality contributions and the BMMAL scaling factors derived from them.

The players are the modalities; the value of a coalition S is the fused softmax with the embeddings
of the modalities outside S replaced by zeros at the input of the fusion head (docs/method.md).
A modality a sample lacks is never in its coalitions: v(S) uses S minus the absent modalities, so the
absent modality's Shapley value is exactly 0 and efficiency holds over the present ones
(sum = v(present) - v(none)).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bmmal.errors import BmmalError

MAX_MODALITIES = 12
Fuse = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def coalition_weight(size: int, n_players: int) -> float:
    """|S|! (M - |S| - 1)! / M!: the weight of coalition S (without m) in m's Shapley value."""
    return math.factorial(size) * math.factorial(n_players - size - 1) / math.factorial(n_players)


def zero_absent(embeddings: dict[str, torch.Tensor], present: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The embeddings with the rows of absent modalities set to exactly 0 (present: bool [N, M] or None)."""
    if present is None:
        return embeddings
    present = present.to(next(iter(embeddings.values())).device)
    return {m: torch.where(present[:, i, None], z, torch.zeros((), dtype=z.dtype, device=z.device))
            for i, (m, z) in enumerate(embeddings.items())}


@torch.no_grad()
def coalition_values(fuse: Fuse, embeddings: dict[str, torch.Tensor], present: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """[2^M, N, C] fused probabilities; coalition S is the bit mask over modalities in order (an absent
    modality of a row is zero in every coalition)."""
    names = list(embeddings)
    embeddings = zero_absent(embeddings, present)
    values = []
    for mask in range(2 ** len(names)):
        masked = {m: z if mask >> i & 1 else torch.zeros_like(z) for i, (m, z) in enumerate(embeddings.items())}
        logits = fuse(masked)
        values.append(torch.softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=1))
    return torch.stack(values)


@torch.no_grad()
def shapley(fuse: Fuse, embeddings: dict[str, torch.Tensor], max_elements: int = 2 ** 26,
            present: torch.Tensor | None = None) -> torch.Tensor:
    """[N, M, C]: Shapley value of each modality on each class probability, exact (2^M coalitions).

    Efficiency holds per sample and class: the sum over modalities is v(all) - v(none). With `present`
    (bool [N, M]) an absent modality is zero in every coalition: its value is exactly 0.
    Rows are processed in chunks so that the coalition values stay under `max_elements` numbers.
    """
    n_mod = len(embeddings)
    if n_mod == 0:
        raise BmmalError("shapley needs at least one modality")
    if n_mod > MAX_MODALITIES:
        raise BmmalError(f"exact Shapley needs 2^M head evaluations; M = {n_mod} is more than {MAX_MODALITIES}")
    n = len(next(iter(embeddings.values())))
    first = {m: z[:1] for m, z in embeddings.items()}
    n_classes = fuse(first).shape[1]
    chunk = max(1, max_elements // (2 ** n_mod * n_classes))
    # For each modality: the coalitions without it, the same with it, and their weights.
    plans = []
    for i in range(n_mod):
        without = [s for s in range(2 ** n_mod) if not s >> i & 1]
        weights = torch.tensor([coalition_weight(s.bit_count(), n_mod) for s in without])
        plans.append((torch.tensor(without), torch.tensor(without) | (1 << i), weights))
    out = []
    for start in range(0, n, chunk):
        values = coalition_values(fuse, {m: z[start:start + chunk] for m, z in embeddings.items()},
                                  present[start:start + chunk] if present is not None else None)
        phi = [torch.einsum("s,sbc->bc", w.to(values), values[with_m] - values[without])
               for without, with_m, w in plans]
        out.append(torch.stack(phi, dim=1))
    return torch.cat(out) if out else torch.zeros(0, n_mod, n_classes)


def contribution_shares(phi: torch.Tensor, classes: torch.Tensor, present: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """[N, M]: c_m = |phi_m[y]| / sum_k |phi_k[y]| at class y per row, over the present modalities (an
    absent one has share 0; a row with one present modality gives it 1); equal shares over the present
    modalities where the sum is 0 or NaN."""
    at_class = phi.gather(2, classes.long().view(-1, 1, 1).expand(-1, phi.shape[1], 1)).squeeze(2).abs()
    if present is None:
        present = torch.ones(at_class.shape, dtype=torch.bool, device=at_class.device)
    present = present.to(at_class.device)
    at_class = torch.where(present, at_class, torch.zeros_like(at_class))
    total = at_class.sum(dim=1, keepdim=True)
    ok = torch.isfinite(total) & (total > 0)
    shares = at_class / torch.where(ok, total, torch.ones_like(total))
    equal = present.to(shares.dtype) / present.sum(dim=1, keepdim=True).clamp_min(1).to(shares.dtype)
    return torch.where(ok & torch.isfinite(shares).all(dim=1, keepdim=True), shares, equal)


def dominance_scales(shares: torch.Tensor) -> torch.Tensor:
    """[N, M]: s_m = 1 - (max_k c_k - c_m). The dominant modality keeps 1; for M = 2, s_weak = 2 c_weak."""
    return 1.0 - (shares.max(dim=1, keepdim=True).values - shares)
