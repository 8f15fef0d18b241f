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


def pool_gradient_embedding(outputs: PoolOutputs, scales: torch.Tensor | None = None, precision: str = "fp32"
                            ) -> OuterProductEmbedding:
    """g = concat_m (a (x) s_m z_m) for every row of the pool, on the caller's embedding blocks as they are.

    scales: [N, M], or None for all ones (BADGE). Nothing of size [N, D] is allocated in fp32 (the
    reduced precisions store a rounded copy of the blocks); above the inputs: the [N, C] residual."""
    embeddings = list(outputs.embeddings.values())
    residual = pseudo_label_residual(outputs.probs.to(embeddings[0].device))
    return OuterProductEmbedding(residual, embeddings, scales, precision)


def gradient_embedding(outputs: PoolOutputs, rows: np.ndarray, scales: torch.Tensor | None = None
                       ) -> OuterProductEmbedding:
    """g for `rows` only, with the scaled features gathered into one [len(rows), D] block (a copy).

    scales: [len(rows), M] or None. For strategies that combine it with other row-gathered blocks;
    BADGE and BMMAL use `pool_gradient_embedding`, which copies nothing."""
    embeddings = list(outputs.embeddings.values())
    index = torch.as_tensor(rows, dtype=torch.long, device=embeddings[0].device)
    features = torch.cat([z[index] if scales is None else z[index] * scales[:, m:m + 1].to(z)
                          for m, z in enumerate(embeddings)], dim=1)
    residual = pseudo_label_residual(outputs.probs.to(features.device)[index])
    return OuterProductEmbedding(residual, features)
