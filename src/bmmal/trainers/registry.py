"""Trainers by name: bmmal's own (imported on first use), `@register`ed classes, and third-party
trainers from the `bmmal.trainers` entry-point group."""

from bmmal.registry import Registry

BUILTINS = {
    "joint": "bmmal.trainers.joint:Joint",
    "mmpareto": "bmmal.trainers.mmpareto:MMPareto",
    "ogm_ge": "bmmal.trainers.ogm_ge:OGMGE",
    "pmr": "bmmal.trainers.pmr:PMR",
}

TRAINERS = Registry("trainer", "bmmal.trainers", BUILTINS, named=True)
register = TRAINERS.register
available = TRAINERS.available
trainer_class = TRAINERS.lookup
get = TRAINERS.get
