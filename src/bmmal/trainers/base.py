"""The trainer contract and what trainers share: the weighted loss terms and the imbalance ratio.

A trainer is called by the training loop, per fit, per epoch and per batch:
- `start(model, config)` before the first batch of a fit (resets any state);
- `start_epoch(epoch, model, labeled)` before the first batch of each epoch; `labeled()` returns
  the embeddings of all labelled rows (eval mode, no gradient) and their labels, for trainers that
  need whole-set statistics;
- `loss(out, targets)` inside the autocast region: the batch's `LossTerms`;
- `backward(model, out, terms, targets, scale)` after `zero_grad`: fills the `.grad` of the
  parameters (`scale` is the AMP loss scaler's `scale`, identity without AMP); the loop then steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from bmmal.errors import BmmalError

Scale = Callable[[torch.Tensor], torch.Tensor]
Labeled = Callable[[], tuple[dict[str, torch.Tensor], torch.Tensor]]


@dataclass
class LossTerms:
    """The weighted cross-entropies of a batch: total = (fused + sum of unimodal) / norm + extra."""

    fused: torch.Tensor  # fused_loss_weight * CE(fused logits)
    unimodal: dict[str, torch.Tensor]  # modality -> unimodal_loss_weight * CE(its head's logits)
    norm: float  # the sum of the weights
    extra: torch.Tensor | None = None  # a trainer's additional loss (added unnormalised)

    @property
    def total(self) -> torch.Tensor:
        joint = torch.stack([self.fused, *self.unimodal.values()]).sum() / self.norm
        return joint if self.extra is None else joint + self.extra


def present_rows(out, modality: str) -> torch.Tensor | None:
    """bool [B]: the batch rows that have `modality` (None: all of them)."""
    present = getattr(out, "present", None)
    return None if present is None else present[modality]


def present_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy over the present rows only (0, still in the graph, when the batch has none)."""
    if rows is None:
        return F.cross_entropy(logits, targets)
    if not bool(rows.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[rows], targets[rows])


def loss_terms(out, targets: torch.Tensor, config) -> LossTerms:
    """Fused and unimodal cross-entropies weighted by `config.fused_loss_weight` / `unimodal_loss_weight`;
    a unimodal head's loss is over the rows that have its modality."""
    unimodal = {m: config.unimodal_loss_weight * present_cross_entropy(logits, targets, present_rows(out, m))
                for m, logits in out.unimodal_logits.items()}
    norm = config.fused_loss_weight + config.unimodal_loss_weight * len(unimodal)
    return LossTerms(config.fused_loss_weight * F.cross_entropy(out.fused_logits, targets), unimodal,
                     max(norm, 1e-12))


def imbalance_ratios(scores: torch.Tensor) -> torch.Tensor:
    """rho_m = s_m / mean_{k != m} s_k for the M per-modality confidence scores s (M >= 2).

    For M = 2 this is the ratio of OGM-GE and PMR: rho_1 = s_1 / s_2 and rho_2 = s_2 / s_1.
    """
    m = scores.numel()
    others = (scores.sum() - scores) / (m - 1)
    return scores / others.clamp_min(torch.finfo(scores.dtype).tiny)


def true_class_confidence(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor | None = None
                          ) -> torch.Tensor:
    """Sum over the batch of softmax(logits)[true class]: the confidence score of OGM-GE and PMR.

    With `rows` (the rows that have the modality), the mean over those rows times the batch size: the
    same as the sum when every row is present, and comparable across modalities present in different
    numbers of rows; NaN when no row has the modality.
    """
    confidence = logits.float().softmax(1).gather(1, targets[:, None]).squeeze(1)
    if rows is None:
        return confidence.sum()
    return confidence[rows].mean() * len(confidence)


def present_ratios(scores: torch.Tensor) -> torch.Tensor:
    """`imbalance_ratios` over the modalities with a score (not NaN); 1 (neither leading nor lagging) for the
    others, and for all when fewer than two have one."""
    known = ~torch.isnan(scores)
    if int(known.sum()) < 2:
        return torch.ones_like(scores)
    rho = torch.ones_like(scores)
    rho[known] = imbalance_ratios(scores[known])
    return rho


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BmmalError(message)


def check_window(name: str, starts: int, ends: int) -> None:
    check(0 <= starts <= ends, f"trainer {name!r}: need 0 <= modulation_starts <= modulation_ends, "
                               f"got {starts} and {ends}")


class TrainingMethod:
    """Plain joint training; subclasses change the loss or the gradients."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""

    def start(self, model, config) -> None:
        self.config = config
        self.epoch = 0

    def start_epoch(self, epoch: int, model, labeled: Labeled) -> None:
        self.epoch = epoch

    def loss(self, out, targets: torch.Tensor) -> LossTerms:
        return loss_terms(out, targets, self.config)

    def backward(self, model, out, terms: LossTerms, targets: torch.Tensor, scale: Scale) -> None:
        scale(terms.total).backward()

    def modulating(self) -> bool:
        """Within [modulation_starts, modulation_ends) epochs (trainers that have such a window)."""
        return self.modulation_starts <= self.epoch < self.modulation_ends
