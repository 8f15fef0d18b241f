"""MultimodalClassifier: one encoder per modality, a fusion head, one unimodal head per modality.

Fusion is linear in the modality embeddings for both kinds, which is what makes the last-layer
gradient embedding a sum of per-modality outer products (docs/method.md, "Why it scales"):
- `concat`: fused logits = W [z_1; ...; z_M] + b  (the reference setting);
- `sum`: fused logits = mean over m of the unimodal heads' logits (as the reference's `sum`), so the
  fused head shares its weights with the unimodal heads.

Head initialisation (`head_init`): "torch" keeps PyTorch's default for nn.Linear; "xavier" is the
reference's (Xavier-uniform weights, every bias 0.01), used by the paper configs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bmmal.errors import BmmalError

FUSIONS = ("concat", "sum")
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
    embeddings: dict[str, torch.Tensor]  # name -> [B, d_m]


class MultimodalClassifier(nn.Module):
    def __init__(self, encoders: dict[str, nn.Module], num_classes: int, fusion: str = "concat",
                 head_init: str = "torch"):
        super().__init__()
        if fusion not in FUSIONS:
            raise BmmalError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
        if head_init not in HEAD_INITS:
            raise BmmalError(f"unknown head_init {head_init!r}; choose one of {', '.join(HEAD_INITS)}")
        self.modalities = tuple(encoders)
        self.fusion = fusion
        self.num_classes = num_classes
        self.encoders = nn.ModuleDict(encoders)
        self.embed_dims = {m: int(e.out_dim) for m, e in encoders.items()}
        self.unimodal_heads = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in self.embed_dims.items()})
        self.fused_head = nn.Linear(sum(self.embed_dims.values()), num_classes) if fusion == "concat" else None
        for head in [*self.unimodal_heads.values(), *([self.fused_head] if self.fused_head is not None else [])]:
            init_head(head, head_init)

    def embed(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One embedding per modality, in modality order (the `bmmal.MultimodalModel` protocol)."""
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def unimodal_logits(self, embeddings: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: self.unimodal_heads[m](embeddings[m]) for m in self.modalities}

    def fuse(self, embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fused logits from the modality embeddings (a missing modality must be passed as zeros)."""
        if self.fused_head is not None:
            return self.fused_head(torch.cat([embeddings[m] for m in self.modalities], dim=1))
        return torch.stack([self.unimodal_heads[m](embeddings[m]) for m in self.modalities]).mean(0)

    def forward(self, inputs: dict[str, torch.Tensor]) -> ModelOutput:
        z = self.embed(inputs)
        return ModelOutput(fused_logits=self.fuse(z), unimodal_logits=self.unimodal_logits(z), embeddings=z)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part: one group per modality encoder, and "heads" for the rest."""
        groups = {m: list(self.encoders[m].parameters()) for m in self.modalities}
        groups["heads"] = list(self.unimodal_heads.parameters())
        if self.fused_head is not None:
            groups["heads"] += list(self.fused_head.parameters())
        return groups
