"""Last-layer gradient embeddings (BADGE, and BMMAL's modality-scaled variant) in factored form."""

from __future__ import annotations

import numpy as np
import torch

from bmmal.outputs import PoolOutputs
from bmmal.strategies.kmeanspp import OuterProductEmbedding


def pseudo_label_residual(probs: torch.Tensor) -> torch.Tensor:
    """a = p - onehot(argmax p): the gradient of the cross-entropy at the pseudo-label w.r.t. the logits."""
    residual = probs.clone()
    residual[torch.arange(len(probs)), probs.argmax(1)] -= 1.0
    return residual


def gradient_embedding(outputs: PoolOutputs, rows: np.ndarray, scales: torch.Tensor | None = None
                       ) -> OuterProductEmbedding:
    """g = concat_m (a (x) s_m z_m) for `rows`; scales [len(rows), M], or None for all ones (BADGE)."""
    embeddings = list(outputs.embeddings.values())
    index = torch.as_tensor(rows, dtype=torch.long, device=embeddings[0].device)
    features = torch.empty(len(index), sum(z.shape[1] for z in embeddings), dtype=embeddings[0].dtype,
                           device=embeddings[0].device)
    start = 0  # filled one modality block at a time, scaled in place: one [N, D] copy at the peak
    for m, z in enumerate(embeddings):
        block = features[:, start:start + z.shape[1]]
        block.copy_(z[index])
        if scales is not None:
            block.mul_(scales[:, m:m + 1].to(block))
        start += z.shape[1]
    residual = pseudo_label_residual(outputs.probs.to(features.device)[index])
    return OuterProductEmbedding(residual, features)
