"""ESSOP weight updates in PyTorch training: layers, `convert`, the counting kernels, the training loop."""
from essop.training.essop_update import EssopConv2d, EssopLinear, EssopUpdate, attach, convert, essop_layers

__all__ = ["EssopConv2d", "EssopLinear", "EssopUpdate", "attach", "convert", "essop_layers"]
