"""Entropy sampling (Shannon 1948 as an acquisition function; see Settles, "Active Learning Literature
Survey", 2009, section 3.1).

Scores each unlabelled row by the entropy of the fused class probabilities, H(p) = -sum_c p_c log p_c,
and selects the highest. Uses only `probs`. 0 log 0 is taken as 0 (xlogy), so one-hot rows score 0.
"""

from __future__ import annotations

import torch

from bmmal.strategies.base import ScoreStrategy
from bmmal.strategies.registry import register


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) along the last axis, in float64; 0 log 0 = 0."""
    p = probs.double()
    return -torch.special.xlogy(p, p).sum(-1)


@register
class Entropy(ScoreStrategy):
    name = "entropy"
    needs = frozenset({"probs"})
    summary = "highest entropy of the fused class probabilities"

    def row_scores(self, outputs, rows):
        return entropy(outputs.probs[torch.as_tensor(rows, dtype=torch.long)]).cpu().numpy()
