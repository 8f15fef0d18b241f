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
    index = torch.as_tensor(rows, dtype=torch.long)
    blocks = [z[index] for z in outputs.embeddings.values()]
    if scales is not None:
        blocks = [block * scales[:, m:m + 1].to(block) for m, block in enumerate(blocks)]
    return OuterProductEmbedding(pseudo_label_residual(outputs.probs[index]), torch.cat(blocks, dim=1))
