"""Strategies by name."""

from __future__ import annotations

from bmmal.errors import BmmalError

_STRATEGIES: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make the strategy available under `cls.name`."""
    _STRATEGIES[cls.name] = cls
    return cls


def available() -> list[str]:
    return sorted(_STRATEGIES)


def strategy_class(name: str) -> type:
    if name not in _STRATEGIES:
        raise BmmalError(f"unknown strategy {name!r}; available: {', '.join(available())}")
    return _STRATEGIES[name]


def get(name: str, **params):
    cls = strategy_class(name)
    try:
        return cls(**params)
    except TypeError as e:
        raise BmmalError(f"strategy {name!r}: bad parameters ({e})") from None
