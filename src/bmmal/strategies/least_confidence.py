"""Least-confidence sampling (Lewis & Gale, "A Sequential Algorithm for Training Text Classifiers",
SIGIR 1994; Settles 2009, section 3.1).

Scores each unlabelled row by 1 - max_c p_c on the fused class probabilities and selects the
highest. Uses only `probs`.
"""

from __future__ import annotations

import torch

from bmmal.strategies.base import ScoreStrategy
from bmmal.strategies.registry import register


@register
class LeastConfidence(ScoreStrategy):
    name = "least_confidence"
    needs = frozenset({"probs"})
    summary = "lowest probability of the predicted class (fused probabilities)"

    def row_scores(self, outputs, rows):
        p = outputs.probs[torch.as_tensor(rows, dtype=torch.long)].double()
        return (1.0 - p.max(dim=1).values).cpu().numpy()
