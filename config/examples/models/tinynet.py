"""A small CNN, as a user writes it: a factory speedatlas calls as build(num_classes=..., **args).

Used by config/examples/custom-image.yaml:
    models:
      - name: tinynet
        factory: config/examples/models/tinynet.py:build
        args: {width: 32}
        input: {kind: image, size: 96}
"""

from torch import nn


def build(num_classes: int, width: int = 32) -> nn.Module:
    def stage(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.MaxPool2d(2))

    return nn.Sequential(
        stage(3, width), stage(width, 2 * width), stage(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes),
    )
