"""Strategies by name."""

from bmmal.registry import Registry

STRATEGIES = Registry("strategy")
register = STRATEGIES.register
available = STRATEGIES.available
strategy_class = STRATEGIES.cls
get = STRATEGIES.get
