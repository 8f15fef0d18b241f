"""Active-learning strategies. `available()` lists them; `get(name, **params)` makes one.

Every strategy lives in its own module and registers itself on import.
"""

from bmmal.strategies import (  # noqa: F401
    badge,
    bald,
    bmmal,
    coreset,
    deepfool,
    entropy,
    gcn,
    kmeans,
    least_confidence,
    margin,
    random,
)
from bmmal.strategies.base import ScoreStrategy, Strategy
from bmmal.strategies.registry import available, get, register, strategy_class

__all__ = ["ScoreStrategy", "Strategy", "available", "get", "register", "strategy_class"]
