"""The networks `essop train --model NAME` can build: a name -> constructor registry. Every model is built
from plain PyTorch layers and converted with `essop.training.convert`, the way a user converts their own.

To add a network: write its nn.Module (plain nn.Conv2d / nn.Linear), then register a constructor here."""
from __future__ import annotations

from typing import Callable

from torch import nn

from essop.training.layers import convert
from essop.training.resnet import ResNetCifar

__all__ = ["MODELS", "build"]

#: name -> constructor(num_classes) of a plain (FP32) network for 32x32 RGB images.
MODELS: dict[str, Callable[[int], nn.Module]] = {
    f"resnet{6 * n + 2}": (lambda classes, n=n: ResNetCifar(n, classes)) for n in (1, 3, 5, 7, 9)
}


def build(name: str, num_classes: int = 10) -> nn.Module:
    """The named network with ESSOP layers (no update attached yet: it trains as FP32 until one is)."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(sorted(MODELS, key=lambda k: int(k[6:])))}, not {name!r}")
    return convert(MODELS[name](num_classes))
