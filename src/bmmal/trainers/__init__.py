"""Trainers: how one batch of a multimodal model becomes gradients (loss, backward, modulation).

The training loop (`bmmal.models.TrainingLoop`) is one piece of code for all of them; it asks the trainer
chosen by `train.trainer` for the loss of a batch and for its backward pass. `available()` lists them;
`get(name, **params)` makes one. Every trainer lives in its own module, imported when the trainer is first
used: bmmal's own are listed in `bmmal.trainers.registry.BUILTINS`; other packages add theirs through the
`bmmal.trainers` entry-point group (docs/extending.md).
"""

from bmmal.trainers.base import LossTerms, TrainingMethod, imbalance_ratios, loss_terms
from bmmal.trainers.registry import available, get, register, trainer_class

__all__ = ["LossTerms", "TrainingMethod", "available", "get", "imbalance_ratios", "loss_terms", "register",
           "trainer_class"]
