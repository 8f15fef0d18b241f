"""Trainers by name."""

from __future__ import annotations

from bmmal.errors import BmmalError

_TRAINERS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make the trainer available under `cls.name`."""
    _TRAINERS[cls.name] = cls
    return cls


def available() -> list[str]:
    return sorted(_TRAINERS)


def trainer_class(name: str) -> type:
    if name not in _TRAINERS:
        raise BmmalError(f"unknown trainer {name!r}; available: {', '.join(available())}")
    return _TRAINERS[name]


def get(name: str, **params):
    cls = trainer_class(name)
    try:
        return cls(**params)
    except TypeError as e:
        raise BmmalError(f"trainer {name!r}: bad parameters ({e})") from None
