"""ESSOP weight updates in PyTorch training: layers, `convert`, the counting kernels, the training loop."""
from essop.training.layers import EssopConv2d, EssopLinear, EssopUpdate, attach, convert, essop_layers

__all__ = ["EssopConv2d", "EssopLinear", "EssopUpdate", "attach", "convert", "essop_layers",
           "layers", "counts", "models", "resnet", "train", "fidelity", "data"]
