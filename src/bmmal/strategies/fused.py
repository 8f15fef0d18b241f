"""The fused embedding (concatenated modality embeddings, as fed to the fused head) of some rows."""

from __future__ import annotations

import numpy as np
import torch

from bmmal.outputs import PoolOutputs


def fused_rows(outputs: PoolOutputs, rows: np.ndarray) -> torch.Tensor:
    """[len(rows), sum d_m] float32, built from the rows only (never a full [N, D] copy first)."""
    index = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    return torch.cat([z[index].float() for z in outputs.embeddings.values()], dim=1)
