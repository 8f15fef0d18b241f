"""PoolOutputs: what strategies consume, one row per pool sample. `bmmal.pool_outputs` computes it from a model;
it can also be built by hand from arrays (embeddings computed elsewhere)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from bmmal.errors import BmmalError

FIELDS = ("probs", "embeddings", "unimodal_probs", "shapley", "mc_probs", "fuse")


def _values(x) -> torch.Tensor:
    """A tensor of `x`, detached from autograd (a view, no copy)."""
    return torch.as_tensor(x).detach()


@dataclass
class PoolOutputs:
    """One row per pool sample (labeled and unlabeled rows); strategies read it and never change it.

    `labeled` bool [N]; `probs` [N, C] fused class probabilities; `embeddings` modality -> [N, d_m], the
    inputs of the fusion head in modality order; `unimodal_probs` modality -> [N, C]; `shapley` [N, M, C]
    exact Shapley values of each modality on the fused probabilities; `mc_probs` [T, N, C] fused
    probabilities under T dropout passes; `fuse` maps a dict of embeddings (absent modality = zeros) to
    fused logits; `present` bool [N, M] which modality of which row is there (None: all; an absent
    modality's embedding is zero and its Shapley value exactly 0). Arrays are converted to tensors, and
    tensors that require gradients are detached (a model's outputs taken outside `torch.no_grad()`).
    """

    labeled: torch.Tensor  # bool [N]
    probs: torch.Tensor  # [N, C] fused class probabilities
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [N, d_m]
    unimodal_probs: dict[str, torch.Tensor] | None = None
    shapley: torch.Tensor | None = None  # [N, M, C]
    mc_probs: torch.Tensor | None = None  # [T, N, C]
    fuse: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None
    present: torch.Tensor | None = None  # bool [N, M]; None: every modality of every row

    def __post_init__(self) -> None:
        for name in ("embeddings", "unimodal_probs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise BmmalError(f"PoolOutputs.{name} must be a dict modality -> tensor, got {type(value).__name__}")
        self.labeled = torch.as_tensor(self.labeled)
        if self.labeled.numel() == 0:  # an empty list has no dtype to check
            self.labeled = self.labeled.bool()
        if self.labeled.dtype != torch.bool or self.labeled.dim() != 1:
            raise BmmalError(f"PoolOutputs.labeled must be a bool vector [N], got {self.labeled.dtype} "
                             f"{tuple(self.labeled.shape)}")
        self.probs = _values(self.probs)
        self.embeddings = {m: _values(z) for m, z in (self.embeddings or {}).items()}
        if self.unimodal_probs is not None:
            self.unimodal_probs = {m: _values(p) for m, p in self.unimodal_probs.items()}
        if self.shapley is not None:
            self.shapley = _values(self.shapley)
        if self.mc_probs is not None:
            self.mc_probs = _values(self.mc_probs)
        if self.present is not None:
            self.present = torch.as_tensor(self.present)
            if self.present.dtype != torch.bool or self.present.dim() != 2 or len(self.present) != len(self.labeled):
                raise BmmalError(f"PoolOutputs.present must be bool [N, M] with N = {len(self.labeled)}, got "
                                 f"{self.present.dtype} {tuple(self.present.shape)}")
        self._check_shapes()

    def _check_shapes(self) -> None:
        """Bad arrays built by hand fail here, naming the field, not later inside a strategy."""
        n = len(self.labeled)
        _check_probabilities("probs", self.probs, (n, None))
        n_classes = self.probs.shape[1]
        for m, z in self.embeddings.items():
            if z.dim() != 2 or len(z) != n:
                raise BmmalError(f"PoolOutputs.embeddings[{m!r}] must be [N, d] with N = {n}, got {tuple(z.shape)}")
        for m, p in (self.unimodal_probs or {}).items():
            _check_probabilities(f"unimodal_probs[{m!r}]", p, (n, n_classes))
        n_modalities = len(self.embeddings) or None
        if self.shapley is not None:
            _check_shape("shapley", self.shapley, (n, n_modalities, n_classes), "[N, M, C]")
            n_modalities = self.shapley.shape[1]
        if self.present is not None and n_modalities is not None and self.present.shape[1] != n_modalities:
            raise BmmalError(f"PoolOutputs.present has {self.present.shape[1]} modality columns, the other "
                             f"outputs {n_modalities}")
        if self.mc_probs is not None:
            _check_probabilities("mc_probs", self.mc_probs, (None, n, n_classes), "[T, N, C]")

    def __repr__(self) -> str:
        def shape(value) -> str:
            if isinstance(value, dict):
                return "{" + ", ".join(f"{k}: {list(v.shape)}" for k, v in value.items()) + "}"
            return str(list(value.shape)) if torch.is_tensor(value) else "<function>" if callable(value) else repr(value)

        fields = [f"{name}={shape(getattr(self, name))}" for name in ("labeled", *FIELDS, "present")
                  if getattr(self, name) is not None and getattr(self, name) != {}]
        return f"PoolOutputs({', '.join(fields)}; {int(self.labeled.sum())} of {len(self)} rows labeled)"

    def __len__(self) -> int:
        return len(self.labeled)

    @property
    def unlabeled_rows(self) -> np.ndarray:
        """The row indices (int64, ascending) of the rows not yet labelled: the candidates of a selection."""
        return np.flatnonzero(~self.labeled.cpu().numpy())

    def presence(self) -> torch.Tensor:
        """bool [N, M]: `present`, or all true (M from the embeddings, else from the Shapley values)."""
        if self.present is not None:
            return self.present
        n_modalities = len(self.embeddings) or (self.shapley.shape[1] if self.shapley is not None else 1)
        return torch.ones(len(self.labeled), n_modalities, dtype=torch.bool)

    @property
    def complete(self) -> bool:
        """Whether every row has every modality."""
        return self.present is None or bool(self.present.all())

    def fused_embedding(self) -> torch.Tensor:
        """[N, sum d_m]: the concatenated modality embeddings, as fed to the fused head."""
        return torch.cat(list(self.embeddings.values()), dim=1)


PROBABILITY_TOLERANCE = 1e-2  # rows of half-precision probabilities sum to 1 within about this


def _check_shape(name: str, value: torch.Tensor, shape: tuple, layout: str) -> None:
    """`value` has `shape` (None: any size on that axis) and a floating dtype; else an error naming `name`."""
    fits = value.dim() == len(shape) and all(want is None or got == want for got, want in zip(value.shape, shape))
    if not fits or not value.is_floating_point():
        want = ", ".join("*" if w is None else str(w) for w in shape)
        raise BmmalError(f"PoolOutputs.{name} must be float {layout} = [{want}], got {value.dtype} {tuple(value.shape)}")


def _check_probabilities(name: str, value: torch.Tensor, shape: tuple, layout: str = "[N, C]") -> None:
    """Finite, non-negative class probabilities whose last axis sums to 1."""
    _check_shape(name, value, shape, layout)
    if value.numel() == 0:
        return
    if not torch.isfinite(value).all():
        raise BmmalError(f"PoolOutputs.{name} holds NaN or infinite values")
    if value.min() < -PROBABILITY_TOLERANCE:
        raise BmmalError(f"PoolOutputs.{name} holds negative probabilities (min {float(value.min()):.3g})")
    worst = float((value.float().sum(-1) - 1).abs().max())
    if worst > PROBABILITY_TOLERANCE:
        raise BmmalError(f"PoolOutputs.{name} rows must sum to 1 (class probabilities, not logits); one is off by "
                         f"{worst:.3g}")
