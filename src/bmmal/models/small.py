"""Small encoders trained end to end from scratch on raw inputs: a CNN for images and log-mel
spectrograms, and a character CNN for short texts. Sized for CPU benchmarks (seconds per round).

Encoder kind "cnn": input [channels, height, width] (an image, or a spectrogram with one channel).
`blocks` x (3x3 convolution, BatchNorm, ReLU, 2x2 max-pool), channels `width`, 2 x `width`, 4 x `width`,
...; global average pooling; a linear layer to `embed_dim` with ReLU.

Encoder kind "chars": input [length] of character ids (`char_ids`; 0 is padding). Embedding (`char_dim`),
two 1-D convolutions of `width` channels (kernel 3, ReLU), max-pooling over the non-padding positions,
a linear layer to `embed_dim` with ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from bmmal.errors import BmmalError
from bmmal.models.encoders import register_encoder

CHAR_VOCAB = 256  # ids 1..255: the code point, capped at 255; 0 pads


def char_ids(texts: Sequence[str], length: int) -> np.ndarray:
    """[N, length] uint8 character ids of the lower-cased texts, cut or padded with 0 at the end."""
    out = np.zeros((len(texts), length), dtype=np.uint8)
    for i, text in enumerate(texts):
        codes = [min(ord(c), CHAR_VOCAB - 1) or 1 for c in text.lower()[:length]]
        out[i, :len(codes)] = codes
    return out


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, width: int = 16, blocks: int = 3, embed_dim: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(blocks):
            cout = width * 2 ** i
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(cin, embed_dim), nn.ReLU(inplace=True))
        self.out_dim = embed_dim

    def forward(self, x):
        return self.project(self.features(x).mean(dim=(2, 3)))


class CharCNN(nn.Module):
    def __init__(self, char_dim: int = 32, width: int = 64, embed_dim: int = 64):
        super().__init__()
        self.embedding = nn.Embedding(CHAR_VOCAB, char_dim, padding_idx=0)
        self.convs = nn.Sequential(nn.Conv1d(char_dim, width, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv1d(width, width, 3, padding=1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(nn.Linear(width, embed_dim), nn.ReLU(inplace=True))
        self.out_dim = embed_dim

    def forward(self, x):
        ids = x.long()
        h = self.convs(self.embedding(ids).transpose(1, 2))  # [B, width, L]
        padding = (ids == 0).unsqueeze(1)
        h = h.masked_fill(padding, float("-inf")).amax(dim=2)
        return self.project(torch.nan_to_num(h, neginf=0.0))  # an empty text embeds as zeros


@register_encoder("cnn")
def cnn_encoder(input_shape: tuple[int, ...], width: int = 16, blocks: int = 3, embed_dim: int = 64) -> SmallCNN:
    if len(input_shape) != 3:
        raise BmmalError(f"cnn expects inputs of shape [channels, height, width], got {list(input_shape)}")
    if blocks < 1 or width < 1 or embed_dim < 1:
        raise BmmalError("cnn: blocks, width and embed_dim must be at least 1")
    return SmallCNN(input_shape[0], width, blocks, embed_dim)


@register_encoder("chars")
def char_encoder(input_shape: tuple[int, ...], char_dim: int = 32, width: int = 64, embed_dim: int = 64) -> CharCNN:
    if len(input_shape) != 1:
        raise BmmalError(f"chars expects character ids of shape [length], got {list(input_shape)}")
    return CharCNN(char_dim, width, embed_dim)
