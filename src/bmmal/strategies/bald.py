"""BALD with Monte-Carlo dropout (Houlsby et al., "Bayesian Active Learning for Classification and
Preference Learning", 2011; Gal, Islam & Ghahramani, "Deep Bayesian Active Learning with Image
Data", ICML 2017).

Scores each unlabelled row by the mutual information between its label and the model weights,
estimated from T stochastic passes with dropout active (`mc_probs`, [T, N, C]):
    I = H[mean_t p_t] - mean_t H[p_t].
Uses only `mc_probs`. Unlike the reference code, inference really enables dropout in every dropout
layer of the model (`bmmal.inference.mc_dropout_probs`), so the passes differ and the scores are informative.
"""

from __future__ import annotations

import torch

from bmmal.errors import BmmalError
from bmmal.strategies.base import ScoreStrategy
from bmmal.strategies.entropy import entropy
from bmmal.strategies.registry import register


def mutual_information(mc_probs: torch.Tensor) -> torch.Tensor:
    """[N] BALD scores from [T, N, C] probabilities; >= 0 (rounding below 0 is clipped)."""
    p = mc_probs.double()
    return (entropy(p.mean(0)) - entropy(p).mean(0)).clamp_min(0.0)


@register
class Bald(ScoreStrategy):
    name = "bald"
    needs = frozenset({"mc_probs"})
    summary = "mutual information over MC-dropout passes (Gal et al., ICML 2017)"

    def row_scores(self, outputs, rows):
        mc = outputs.mc_probs
        if mc.dim() != 3 or mc.shape[1] != len(outputs):
            raise BmmalError(f"bald needs mc_probs of shape [T, {len(outputs)}, C], got {list(mc.shape)}")
        return mutual_information(mc[:, torch.as_tensor(rows, dtype=torch.long)]).cpu().numpy()
