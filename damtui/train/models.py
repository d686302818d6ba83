"""ResNet-18 for 28 px images, in 2D and 3D, with a width option.

Written once for both dimensions instead of patching torchvision's resnet18 / r3d_18 because those
hard-code the stage widths (64..512), and the tests need tiny widths to run on a CPU. At width 64
the 2D net has exactly the parameters of torchvision's resnet18 with a 3x3 stride-1 stem, no
max-pool and one input channel (a test checks this); the 3D net is the Hara et al. ResNet-18
(BasicBlock, [2, 2, 2, 2]) with a 3x3x3 stride-1 stem, like torchvision's r3d_18 adapted to 28^3.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, conv: type[nn.Module], bn: type[nn.Module], cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = bn(cout)
        self.conv2 = conv(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = bn(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(conv(cin, cout, 1, stride, bias=False), bn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (28): 3x3 stride-1 stem, no max-pool, global average pool, dropout, linear head."""

    def __init__(self, in_channels: int = 1, num_outputs: int = 2, is_3d: bool = False,
                 width: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        conv = nn.Conv3d if is_3d else nn.Conv2d
        bn = nn.BatchNorm3d if is_3d else nn.BatchNorm2d
        self.is_3d = is_3d
        widths = [width, width * 2, width * 4, width * 8]
        self.conv1 = conv(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = bn(width)
        self.relu = nn.ReLU(inplace=True)
        layers, cin = [], width
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(conv, bn, cin, w, stride), BasicBlock(conv, bn, w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool3d(1) if is_3d else nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(widths[-1], num_outputs)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


def build_model(in_channels: int, num_outputs: int, is_3d: bool, width: int, dropout: float) -> ResNet18:
    return ResNet18(in_channels, num_outputs, is_3d, width, dropout)


def transplant_binary_head(fc: nn.Linear) -> nn.Linear:
    """Single-score head equal to z1 - z0 of a 2-logit CE head: the fine-tune starts ranking
    exactly like the pretrained model instead of from a random ranking."""
    if fc.out_features != 2:
        raise ValueError(f"expected a 2-logit head, got {fc.out_features} outputs")
    new = nn.Linear(fc.in_features, 1).to(fc.weight.device)
    with torch.no_grad():
        new.weight.copy_(fc.weight[1:2] - fc.weight[0:1])
        new.bias.copy_(fc.bias[1:2] - fc.bias[0:1])
    return new
