"""Trainers: how one batch of a multimodal model becomes gradients (loss, backward, modulation).

The training loop (`bmmal.models.TrainingLoop`) is one piece of code for all of them; it asks the trainer
chosen by `train.trainer` for the loss of a batch and for its backward pass. `available()` lists them;
`get(name, **params)` makes one. Every trainer lives in its own module and registers itself on import.
"""

from bmmal.trainers import joint, mmpareto, ogm_ge, pmr  # noqa: F401  (registration)
from bmmal.trainers.base import LossTerms, TrainingMethod, imbalance_ratios, loss_terms
from bmmal.trainers.registry import available, get, register, trainer_class

__all__ = ["LossTerms", "TrainingMethod", "available", "get", "imbalance_ratios", "loss_terms", "register",
           "trainer_class"]
