"""torchvision's resnet18 and resnet50 in MLX, with torchvision's module names.

The architecture of torchvision/models/resnet.py (ResNet v1.5: a Bottleneck strides in its 3x3
convolution): a 7x7/2 stem, 3x3/2 max pooling, four stages of BasicBlocks ([2, 2, 2, 2]) or
Bottlenecks ([3, 4, 6, 3], expansion 4), a 1x1 convolution + BatchNorm shortcut where the shape
changes, global average pooling and a linear head. Parameter paths equal torchvision's
state_dict keys (`layer2.0.downsample.0.weight`), so the weights copy over by name
(speedatlas.measure.mlx.convert). Written for speedatlas after reading mlx-examples' cifar/resnet.py
(the pattern of Block and stage lists); the layers are torchvision's, not that CIFAR variant's.

Inputs are NHWC: MLX convolutions are channels-last.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv(cin, planes, 3, stride)
        self.bn1 = nn.BatchNorm(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm(planes)
        if stride != 1 or cin != planes:
            self.downsample = [_conv(cin, planes, 1, stride), nn.BatchNorm(planes)]

    def __call__(self, x: mx.array) -> mx.array:
        out = nn.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return nn.relu(out + _shortcut(self, x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        width = planes * self.expansion
        self.conv1 = _conv(cin, planes, 1)
        self.bn1 = nn.BatchNorm(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm(planes)
        self.conv3 = _conv(planes, width, 1)
        self.bn3 = nn.BatchNorm(width)
        if stride != 1 or cin != width:
            self.downsample = [_conv(cin, width, 1, stride), nn.BatchNorm(width)]

    def __call__(self, x: mx.array) -> mx.array:
        out = nn.relu(self.bn1(self.conv1(x)))
        out = nn.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return nn.relu(out + _shortcut(self, x))


def _shortcut(block: nn.Module, x: mx.array) -> mx.array:
    if "downsample" not in block:
        return x
    conv, norm = block.downsample
    return norm(conv(x))


class ResNet(nn.Module):
    def __init__(self, block: type, depths: list[int], num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = 64
        for index, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            blocks = []
            for position in range(depth):
                blocks.append(block(cin, planes, 2 if position == 0 and index > 0 else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{index + 1}", blocks)
        self.fc = nn.Linear(cin, num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        x = self.maxpool(nn.relu(self.bn1(self.conv1(x))))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                x = block(x)
        return self.fc(mx.mean(x, axis=(1, 2)))


def resnet18(num_classes: int) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet50(num_classes: int) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)
