"""R(2+1)D-18 (Tran et al., 2018) for video clips [3, T, H, W], in plain torch, torchvision key names.

Each 3x3x3 convolution is factored into a spatial 1x3x3 and a temporal 3x1x1 convolution with a
BatchNorm and ReLU between them; the middle width keeps the parameter count of the 3-D convolution.
Encoder kind "r2plus1d": options `width` (64 as published), `weights` (a local state dict file, e.g.
torchvision's r2plus1d_18 Kinetics-400 checkpoint), `pretrained` (default true: `weights` required) and
`allow_random_init`. The embedding is the average-pooled last stage (`out_dim` 512 at width 64).
"""

from __future__ import annotations

from torch import nn

from bmmal.errors import BmmalError
from bmmal.models.encoders import register_encoder
from bmmal.models.pretrained import load_weights, wants_weights
from bmmal.models.resnet import init_weights


def conv2plus1d(cin: int, cout: int, mid: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, cout, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
    )


class Block(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        mid = (cin * planes * 27) // (cin * 9 + 3 * planes)
        self.conv1 = nn.Sequential(conv2plus1d(cin, planes, mid, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv2plus1d(planes, planes, mid), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv3d(cin, planes, 1, stride, bias=False), nn.BatchNorm3d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class R2Plus1D18(nn.Module):
    def __init__(self, in_channels: int = 3, width: int = 64):
        super().__init__()
        stem_mid = max(1, 45 * width // 64)
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, stem_mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, width, (3, 1, 1), 1, (1, 0, 0), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
        cin = width
        for i in range(4):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, planes, stride), Block(planes, planes)))
            cin = planes
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.out_dim = cin
        init_weights(self)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.avgpool(x).flatten(1)


@register_encoder("r2plus1d")
def r2plus1d_encoder(input_shape: tuple[int, ...], width: int = 64, weights: str | None = None,
                     pretrained: bool = True, allow_random_init: bool = False) -> R2Plus1D18:
    if len(input_shape) != 4:
        raise BmmalError(f"r2plus1d expects clips of shape [channels, frames, height, width], got {list(input_shape)}")
    model = R2Plus1D18(in_channels=input_shape[0], width=width)
    path = wants_weights("r2plus1d", weights, pretrained, allow_random_init,
                         "e.g. torchvision's r2plus1d_18 Kinetics-400 checkpoint file")
    if path is not None:
        load_weights(model, path)
    return model
