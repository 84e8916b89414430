"""CIFAR ResNets (He et al. 2016, 6n + 2 layers): a 3x3 stem, three stages of 16/32/64 channels with n basic
blocks each, and 1x1 convolution + BN projection shortcuts at the two down-sampling blocks. For n = 5
(ResNet-32) that is 1 + 30 + 2 = 33 convolutions and one FC layer, as ../shared/ESSOP.md counts them.
Built from plain nn.Conv2d / nn.Linear; `essop.training.models` converts them to ESSOP layers."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

__all__ = ["ResNetCifar", "BasicBlock", "STAGE_CHANNELS"]

STAGE_CHANNELS = (16, 32, 64)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNetCifar(nn.Module):
    def __init__(self, blocks_per_stage: int = 5, num_classes: int = 10):
        if isinstance(blocks_per_stage, bool) or not isinstance(blocks_per_stage, int):
            raise TypeError(f"blocks_per_stage must be an int, not {blocks_per_stage!r}")
        if blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, not {blocks_per_stage!r}")
        super().__init__()
        self.conv1 = nn.Conv2d(3, STAGE_CHANNELS[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_CHANNELS[0])
        layers, cin = [], STAGE_CHANNELS[0]
        for s, cout in enumerate(STAGE_CHANNELS):
            blocks = []
            for b in range(blocks_per_stage):
                blocks.append(BasicBlock(cin, cout, 2 if (s > 0 and b == 0) else 1))
                cin = cout
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(cin, num_classes)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)
