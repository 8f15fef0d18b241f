"""PoolOutputs: what strategies consume, one row per pool sample. `bmmal.pool_outputs` computes it from a model;
it can also be built by hand from arrays (embeddings computed elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bmmal.errors import BmmalError

FIELDS = ("probs", "embeddings", "unimodal_probs", "shapley", "mc_probs", "fuse")


@dataclass
class PoolOutputs:
    """One row per pool sample (labeled and unlabeled rows); strategies read it and never change it.

    `labeled` bool [N]; `probs` [N, C] fused class probabilities; `embeddings` modality -> [N, d_m], the
    inputs of the fusion head in modality order; `unimodal_probs` modality -> [N, C]; `shapley` [N, M, C]
    exact Shapley values of each modality on the fused probabilities; `mc_probs` [T, N, C] fused
    probabilities under T dropout passes; `fuse` maps a dict of embeddings (absent modality = zeros) to
    fused logits; `present` bool [N, M] which modality of which row is there (None: all; an absent
    modality's embedding is zero and its Shapley value exactly 0). Arrays are converted to tensors.
    """

    labeled: torch.Tensor  # bool [N]
    probs: torch.Tensor  # [N, C] fused class probabilities
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [N, d_m]
    unimodal_probs: dict[str, torch.Tensor] | None = None
    shapley: torch.Tensor | None = None  # [N, M, C]
    mc_probs: torch.Tensor | None = None  # [T, N, C]
    fuse: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None
    present: torch.Tensor | None = None  # bool [N, M]; None: every modality of every row

    def __post_init__(self) -> None:
        self.labeled = torch.as_tensor(self.labeled, dtype=torch.bool)
        self.probs = torch.as_tensor(self.probs)
        self.embeddings = {m: torch.as_tensor(z) for m, z in (self.embeddings or {}).items()}
        if self.unimodal_probs is not None:
            self.unimodal_probs = {m: torch.as_tensor(p) for m, p in self.unimodal_probs.items()}
        if self.shapley is not None:
            self.shapley = torch.as_tensor(self.shapley)
        if self.mc_probs is not None:
            self.mc_probs = torch.as_tensor(self.mc_probs)
        if self.present is not None:
            self.present = torch.as_tensor(self.present)
            if self.present.dtype != torch.bool or self.present.dim() != 2 or len(self.present) != len(self.labeled):
                raise BmmalError(f"PoolOutputs.present must be bool [N, M] with N = {len(self.labeled)}, got "
                                 f"{self.present.dtype} {tuple(self.present.shape)}")

    def __len__(self) -> int:
        return len(self.labeled)

    @property
    def unlabeled_rows(self) -> np.ndarray:
        """The row indices (int64, ascending) of the rows not yet labelled: the candidates of a selection."""
        return np.flatnonzero(~self.labeled.cpu().numpy())

    def presence(self) -> torch.Tensor:
        """bool [N, M]: `present`, or all true (M from the embeddings, else from the Shapley values)."""
        if self.present is not None:
            return self.present
        n_modalities = len(self.embeddings) or (self.shapley.shape[1] if self.shapley is not None else 1)
        return torch.ones(len(self.labeled), n_modalities, dtype=torch.bool)

    @property
    def complete(self) -> bool:
        """Whether every row has every modality."""
        return self.present is None or bool(self.present.all())

    def fused_embedding(self) -> torch.Tensor:
        """[N, sum d_m]: the concatenated modality embeddings, as fed to the fused head."""
        return torch.cat(list(self.embeddings.values()), dim=1)
