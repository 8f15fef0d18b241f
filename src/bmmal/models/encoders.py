"""Per-modality encoders, by kind. An encoder maps one modality's input batch to a flat embedding.

Every encoder has an `out_dim` attribute. `build_encoder(kind, input_shape, **options)` makes one;
new kinds register with `register_encoder`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from bmmal.errors import BmmalError

EncoderFactory = Callable[..., nn.Module]
_ENCODERS: dict[str, EncoderFactory] = {}


def register_encoder(kind: str):
    def wrap(factory: EncoderFactory) -> EncoderFactory:
        _ENCODERS[kind] = factory
        return factory

    return wrap


def encoder_kinds() -> list[str]:
    return sorted(_ENCODERS)


def build_encoder(kind: str, input_shape: tuple[int, ...], **options) -> nn.Module:
    if kind not in _ENCODERS:
        raise BmmalError(f"unknown encoder {kind!r}; available: {', '.join(encoder_kinds())}")
    return _ENCODERS[kind](input_shape=input_shape, **options)


@register_encoder("mlp")
class MLPEncoder(nn.Module):
    """Feature vector -> hidden layers (ReLU, dropout) -> embedding (ReLU)."""

    def __init__(self, input_shape: tuple[int, ...], hidden_dims: tuple[int, ...] = (128,),
                 embed_dim: int = 64, dropout: float = 0.2):
        super().__init__()
        in_dim = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for h in (*hidden_dims, embed_dim):
            layers += [nn.Linear(in_dim, h), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = h
        self.net = nn.Sequential(*layers[:-1])  # no dropout on the embedding itself
        self.out_dim = embed_dim

    def forward(self, x):
        return self.net(x)


@register_encoder("identity")
class IdentityEncoder(nn.Module):
    """Uses the (already encoded) features as the embedding: for frozen pretrained features."""

    def __init__(self, input_shape: tuple[int, ...], **_):
        super().__init__()
        self.flatten = nn.Flatten()
        self.out_dim = math.prod(input_shape)

    def forward(self, x):
        return self.flatten(x)
