"""Random sampling: the baseline every active-learning strategy must beat."""

from __future__ import annotations

from bmmal.strategies.base import Strategy
from bmmal.strategies.registry import register


@register
class RandomSampling(Strategy):
    """Uniformly random unlabelled rows. Uses no model output."""

    name = "random"
    needs = frozenset()
    summary = "uniformly random unlabelled samples (no model output)"

    def _select(self, outputs, candidates, budget, rng):
        return rng.choice(candidates, size=budget, replace=False)
