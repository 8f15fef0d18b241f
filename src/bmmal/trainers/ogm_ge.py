"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement.

Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient Modulation",
CVPR 2022.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bmmal.trainers.base import TrainingMethod, check, check_window, present_ratios, true_class_confidence
from bmmal.trainers.registry import register


def modality_logits(model, out) -> dict[str, torch.Tensor]:
    """Each modality's share of the fused logits, detached.

    Concat fusion: the fused head is W [z_1; ...; z_M] + b, so modality m contributes W_m z_m + b / M
    (the paper's split). Sum fusion: the unimodal heads' logits (the fused logits are their mean).
    """
    if model.fused_head is None:
        return {m: logits.detach() for m, logits in out.unimodal_logits.items()}
    weight, bias = model.fused_head.weight.detach(), model.fused_head.bias.detach()
    blocks = torch.split(weight, [model.embed_dims[m] for m in model.modalities], dim=1)
    share = bias / len(model.modalities)
    return {m: out.embeddings[m].detach().to(w.dtype) @ w.T + share for m, w in zip(model.modalities, blocks)}


def ogm_coefficients(logits: dict[str, torch.Tensor], targets: torch.Tensor, alpha: float,
                     present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """k_m = 1 - tanh(alpha (rho_m - 1)) where rho_m > 1, else 1, in modality order.

    s_m = sum over the batch of softmax(logits_m)[true class]; rho_m = s_m / mean_{k != m} s_k. With
    `present` (modality -> bool [B]) s_m is taken over the rows that have m (see `true_class_confidence`),
    and a modality no row has is left out of the ratios (k = 1).
    """
    scores = torch.stack([true_class_confidence(z, targets, None if present is None else present[m])
                          for m, z in logits.items()])
    rho = present_ratios(scores)
    return torch.where(rho > 1, 1 - torch.tanh(alpha * (rho - 1)), torch.ones_like(rho))


@register
@dataclass
class OGMGE(TrainingMethod):
    """Damps the encoder gradients of the modalities that lead on the current batch, plus GE noise.

    Per batch, modality m's confidence is s_m = sum_i softmax(W_m z_m,i + b/M)[y_i] (concat fusion; the
    unimodal heads' logits for sum fusion) and rho_m = s_m / mean_{k != m} s_k, which for M = 2 is the
    paper's ratio s_1 / s_2. After the ordinary joint backward pass, the gradient of every parameter of
    encoder m is multiplied by k_m = 1 - tanh(alpha (rho_m - 1)) when rho_m > 1 (1 otherwise); with
    generalisation enhancement (GE) Gaussian noise N(0, Var(g)) is then added to every encoder gradient
    tensor g (Var over the tensor's entries, before modulation), as the paper's SGD-noise argument
    prescribes. Heads are never modulated. All of it happens only in epochs
    [modulation_starts, modulation_ends); outside them this is joint training.

    Parameters: `alpha` = 0.5 here (the paper has no single default: it tunes alpha per dataset,
    roughly 0.1 to 0.8; larger damps harder); `modulation_starts` = 0 and `modulation_ends` = 50
    (the paper modulates in the early epochs only, then trains plainly; 50 is the first half of the
    default 100 epochs); `generalisation_enhancement` =
    True (OGM-GE; False gives plain OGM). With one modality there is nothing to balance: joint training.
    """

    name = "ogm_ge"
    summary = "OGM-GE (Peng et al. 2022): damp the leading modality's encoder gradients, add GE noise"
    alpha: float = 0.5
    modulation_starts: int = 0
    modulation_ends: int = 50
    generalisation_enhancement: bool = True

    def __post_init__(self):
        check(self.alpha >= 0, f"trainer 'ogm_ge': alpha must be >= 0, got {self.alpha}")
        check_window(self.name, self.modulation_starts, self.modulation_ends)

    def backward(self, model, out, terms, targets, scale) -> None:
        scale(terms.total).backward()
        if len(model.modalities) < 2 or not self.modulating():
            return
        coefficients = ogm_coefficients(modality_logits(model, out), targets, self.alpha, out.present)
        for m, k in zip(model.modalities, coefficients.tolist()):
            for p in model.encoders[m].parameters():
                if p.grad is None:
                    continue
                noise = self._noise(p.grad) if self.generalisation_enhancement else None
                p.grad.mul_(k)
                if noise is not None:
                    p.grad.add_(noise)

    @staticmethod
    def _noise(grad: torch.Tensor) -> torch.Tensor:
        std = grad.float().std() if grad.numel() > 1 else grad.new_zeros(())
        return torch.randn_like(grad) * std.to(grad.dtype)
