"""Active-learning strategies. `available()` lists them; `get(name, **params)` makes one.

Every strategy lives in its own module, imported when the strategy is first used: bmmal's own are listed
in `bmmal.strategies.registry.BUILTINS`; other packages add theirs through the `bmmal.strategies`
entry-point group, and a script can use `@register` (docs/extending.md).
"""

from bmmal.strategies.base import ScoreStrategy, Strategy
from bmmal.strategies.registry import available, get, register, strategy_class

__all__ = ["ScoreStrategy", "Strategy", "available", "get", "register", "strategy_class"]
