"""Trainers by name."""

from bmmal.registry import Registry

TRAINERS = Registry("trainer")
register = TRAINERS.register
available = TRAINERS.available
trainer_class = TRAINERS.cls
get = TRAINERS.get
