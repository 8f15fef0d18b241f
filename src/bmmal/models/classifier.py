"""MultimodalClassifier: one encoder per modality, a fusion head, one unimodal head per modality.

Fusion is linear in the modality embeddings for both kinds, which is what makes the last-layer
gradient embedding a sum of per-modality outer products (docs/method.md, "Why it scales"):
- `concat`: fused logits = W [z_1; ...; z_M] + b  (the reference setting);
- `sum`: fused logits = mean over m of the unimodal heads' logits (as the reference's `sum`), so the
  fused head shares its weights with the unimodal heads.

A sample's absent modality (its batch row is NaN, see `bmmal.data`) is embedded as exactly zero: the
encoder runs on the present rows only (no absent row in its batch statistics), and the fusion head sees
the same zero that the Shapley values use for "absent". `absent`: "zeros" stops there; "learned" (the
default) also adds a learned per-modality offset a_m to the fused logits of every row whose modality-m
embedding is zero. Through a linear fusion head this is exactly a learned absent embedding e_m
(W_m e_m is a constant logit vector), but it keeps the absent embedding at zero, so a modality zeroed
by a Shapley coalition and one missing from the data are the same input (the offset starts at 0: with
complete data nothing changes). Measured against zeros in benchmarks/RESULTS.md.

Head initialisation (`head_init`): "torch" keeps PyTorch's default for nn.Linear; "xavier" is the
reference's (Xavier-uniform weights, every bias 0.01), used by the paper configs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bmmal.data import batch_present
from bmmal.errors import BmmalError

FUSIONS = ("concat", "sum")
ABSENTS = ("zeros", "learned")
HEAD_INITS = ("torch", "xavier")
REFERENCE_HEAD_BIAS = 0.01


def init_head(head: nn.Linear, how: str) -> None:
    if how == "xavier":
        nn.init.xavier_uniform_(head.weight)
        nn.init.constant_(head.bias, REFERENCE_HEAD_BIAS)


@dataclass
class ModelOutput:
    fused_logits: torch.Tensor  # [B, C]
    unimodal_logits: dict[str, torch.Tensor]  # name -> [B, C]
    embeddings: dict[str, torch.Tensor]  # name -> [B, d_m], zero where the modality is absent
    present: dict[str, torch.Tensor] | None = None  # name -> bool [B]; None: all present


class MultimodalClassifier(nn.Module):
    def __init__(self, encoders: dict[str, nn.Module], num_classes: int, fusion: str = "concat",
                 head_init: str = "torch", absent: str = "learned"):
        super().__init__()
        if fusion not in FUSIONS:
            raise BmmalError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
        if head_init not in HEAD_INITS:
            raise BmmalError(f"unknown head_init {head_init!r}; choose one of {', '.join(HEAD_INITS)}")
        if absent not in ABSENTS:
            raise BmmalError(f"unknown absent {absent!r}; choose one of {', '.join(ABSENTS)}")
        self.modalities = tuple(encoders)
        self.fusion = fusion
        self.num_classes = num_classes
        self.encoders = nn.ModuleDict(encoders)
        self.embed_dims = {m: int(e.out_dim) for m, e in encoders.items()}
        self.unimodal_heads = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in self.embed_dims.items()})
        self.fused_head = nn.Linear(sum(self.embed_dims.values()), num_classes) if fusion == "concat" else None
        for head in [*self.unimodal_heads.values(), *([self.fused_head] if self.fused_head is not None else [])]:
            init_head(head, head_init)
        self.absent_logits = nn.Parameter(torch.zeros(len(self.modalities), num_classes)) \
            if absent == "learned" else None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a checkpoint from before the learned absent offset: offset 0, the same model as it was
        key = prefix + "absent_logits"
        if self.absent_logits is not None and key not in state_dict:
            state_dict[key] = torch.zeros_like(self.absent_logits)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def presence(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """modality -> bool [B]: the rows that have it (an absent row is all NaN)."""
        return {m: batch_present(x) for m, x in inputs.items()}

    def _encode(self, m: str, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if bool(present.all()):
            return self.encoders[m](x)
        rows = torch.nonzero(present).squeeze(1)
        if len(rows) == 0:
            weight = next(self.unimodal_heads[m].parameters())
            return weight.new_zeros(len(x), self.embed_dims[m])
        z = self.encoders[m](x[rows])
        return z.new_zeros(len(x), z.shape[1]).index_copy(0, rows, z)

    def embed(self, inputs: dict[str, torch.Tensor], present: dict[str, torch.Tensor] | None = None
              ) -> dict[str, torch.Tensor]:
        """One embedding per modality, in modality order (the `bmmal.MultimodalModel` protocol); an absent
        modality's embedding is zero."""
        present = present if present is not None else self.presence({m: inputs[m] for m in self.modalities})
        return {m: self._encode(m, inputs[m], present[m]) for m in self.modalities}

    def unimodal_logits(self, embeddings: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: self.unimodal_heads[m](embeddings[m]) for m in self.modalities}

    def fuse(self, embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fused logits from the modality embeddings (a missing modality must be passed as zeros)."""
        if self.fused_head is not None:
            logits = self.fused_head(torch.cat([embeddings[m] for m in self.modalities], dim=1))
        else:
            logits = torch.stack([self.unimodal_heads[m](embeddings[m]) for m in self.modalities]).mean(0)
        if self.absent_logits is None:
            return logits
        zero = torch.stack([(embeddings[m] == 0).all(dim=1) for m in self.modalities], dim=1)  # [B, M]
        return logits + zero.to(self.absent_logits.dtype) @ self.absent_logits

    def forward(self, inputs: dict[str, torch.Tensor]) -> ModelOutput:
        present = self.presence({m: inputs[m] for m in self.modalities})
        z = self.embed(inputs, present)
        return ModelOutput(fused_logits=self.fuse(z), unimodal_logits=self.unimodal_logits(z), embeddings=z,
                           present=None if all(bool(p.all()) for p in present.values()) else present)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part: one group per modality encoder, and "heads" for the rest."""
        groups = {m: list(self.encoders[m].parameters()) for m in self.modalities}
        groups["heads"] = list(self.unimodal_heads.parameters())
        if self.fused_head is not None:
            groups["heads"] += list(self.fused_head.parameters())
        if self.absent_logits is not None:
            groups["heads"].append(self.absent_logits)
        return groups
