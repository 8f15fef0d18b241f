"""Per-modality encoders, by kind. An encoder maps one modality's input batch to a flat embedding.

Every encoder has an `out_dim` attribute. `build_encoder(kind, input_shape, **options)` makes one.
New kinds register with `@register_encoder("kind")` on a factory taking `input_shape` and options; other
packages add theirs through the `bmmal.encoders` entry-point group (docs/extending.md).
"""

from __future__ import annotations

import math

from torch import nn

from bmmal.registry import Registry

# the kinds defined in other modules, imported on first use (mlp and identity are defined below)
ENCODERS = Registry("encoder", "bmmal.encoders", {
    "resnet": "bmmal.models.resnet:resnet_encoder",
    "r2plus1d": "bmmal.models.r2plus1d:r2plus1d_encoder",
    "bert": "bmmal.models.text:bert_encoder",
})
register_encoder = ENCODERS.register  # @register_encoder("kind") on a class or factory
encoder_kinds = ENCODERS.available


def build_encoder(kind: str, input_shape: tuple[int, ...], **options) -> nn.Module:
    return ENCODERS.lookup(kind)(input_shape=input_shape, **options)


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
