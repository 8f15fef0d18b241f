"""Joint training: the weighted sum of the fused and the unimodal cross-entropies (the reference)."""

from __future__ import annotations

from dataclasses import dataclass

from bmmal.trainers.base import TrainingMethod
from bmmal.trainers.registry import register


@register
@dataclass
class Joint(TrainingMethod):
    """One backward pass of (w_f CE(fused) + w_u sum_m CE(unimodal_m)) / (w_f + M w_u).

    The weights are `train.fused_loss_weight` and `train.unimodal_loss_weight` (1 and 1 by default);
    with w_u = 0 this is plain late-fusion training, with 1 it is the "uniform baseline" of MMPareto.
    No parameters of its own.
    """

    name = "joint"
    summary = "fused + unimodal cross-entropies, one backward pass (the reference)"
