"""Margin sampling (Scheffer, Decomain & Wrobel, "Active Hidden Markov Models for Information
Extraction", IDA 2001).

Scores each unlabelled row by minus the gap between its two largest fused class probabilities,
so the rows whose top two classes are closest come first. Uses only `probs`. With a single class
the margin is taken as 1 (no competing class), so every row ties.
"""

from __future__ import annotations

import numpy as np
import torch

from bmmal.strategies.base import ScoreStrategy
from bmmal.strategies.registry import register


@register
class Margin(ScoreStrategy):
    name = "margin"
    needs = frozenset({"probs"})
    summary = "smallest gap between the two most probable classes (fused probabilities)"

    def row_scores(self, outputs, rows):
        p = outputs.probs[torch.as_tensor(rows, dtype=torch.long)].double()
        if p.shape[1] < 2:
            return -np.ones(len(p))
        top2 = p.topk(2, dim=1).values
        return -(top2[:, 0] - top2[:, 1]).cpu().numpy()
