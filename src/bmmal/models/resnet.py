"""ResNet (He et al., 2016) for images and 1-channel spectrograms, in plain torch, torchvision key names.

Encoder kind "resnet": options `depth` (18, 34, 50, 101, 152), `width` (channels of the first stage,
64 as published; smaller only for tests or from scratch), `weights` (a local state dict file),
`pretrained` (default true: `weights` is required) and `allow_random_init`. The number of input channels
comes from the modality's input shape (3 for images, 1 for spectrograms); a 3-channel checkpoint loads
into a 1-channel stem by summing its first convolution over the colour channels. The embedding is the
globally average-pooled output of the last stage (`out_dim` = 512 for depth 18/34, 2048 for 50+).
"""

from __future__ import annotations

from torch import nn

from bmmal.errors import BmmalError
from bmmal.models.encoders import register_encoder
from bmmal.models.pretrained import load_weights, wants_weights

# depth -> (block, blocks per stage)
CONFIGS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
           101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, planes, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, as torchvision's "v1.5") -> 1x1 with 4x expansion."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1, self.bn1 = conv1x1(cin, planes), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = conv1x1(planes, planes * 4), nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def init_weights(module: nn.Module) -> None:
    """He initialisation of convolutions, BatchNorm at identity (as torchvision)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet(nn.Module):
    def __init__(self, depth: int = 18, in_channels: int = 3, width: int = 64):
        super().__init__()
        if depth not in CONFIGS:
            raise BmmalError(f"resnet depth must be one of {', '.join(map(str, CONFIGS))}, got {depth}")
        block_name, counts = CONFIGS[depth]
        block = BasicBlock if block_name == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, count in enumerate(counts):
            planes = width * 2 ** i
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or cin != planes * block.expansion:
                downsample = nn.Sequential(conv1x1(cin, planes * block.expansion, stride),
                                           nn.BatchNorm2d(planes * block.expansion))
            layers = [block(cin, planes, stride, downsample)]
            cin = planes * block.expansion
            layers += [block(cin, planes) for _ in range(count - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = cin
        init_weights(self)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


def _stem_channels(in_channels: int):
    def adapt(state: dict) -> dict:
        w = state.get("conv1.weight")
        if w is not None and w.shape[1] != in_channels and in_channels == 1:
            state = {**state, "conv1.weight": w.sum(dim=1, keepdim=True)}
        return state

    return adapt


@register_encoder("resnet")
def resnet_encoder(input_shape: tuple[int, ...], depth: int = 18, width: int = 64, weights: str | None = None,
                   pretrained: bool = True, allow_random_init: bool = False) -> ResNet:
    if len(input_shape) != 3:
        raise BmmalError(f"resnet expects inputs of shape [channels, height, width], got {list(input_shape)}")
    model = ResNet(depth, in_channels=input_shape[0], width=width)
    path = wants_weights("resnet", weights, pretrained, allow_random_init,
                         f"e.g. torchvision's resnet{depth} ImageNet checkpoint file")
    if path is not None:
        load_weights(model, path, adapt=_stem_channels(input_shape[0]))
    return model
