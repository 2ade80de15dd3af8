"""The paper's regressors: a torchvision backbone whose 1000-way classifier is replaced by
1 output (height or weight) or 2 outputs (height and weight, multi-task).

Targets are standardised during training; `fold_destandardization` then folds mean and std
into the last linear layer, so every saved and exported model outputs cm and kg directly."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

from neometer.errors import NeometerError

BACKBONES = ("mobilenet_v2", "vgg16", "googlenet", "alexnet")

# Output names (and units) by task; the model card and result JSON carry them.
TASK_OUTPUTS = {
    "height": [("height_cm", "cm")],
    "weight": [("weight_kg", "kg")],
    "multitask": [("height_cm", "cm"), ("weight_kg", "kg")],
}


def _backbone(name: str, width_mult: float) -> nn.Module:
    if name == "mobilenet_v2":
        return tvm.mobilenet_v2(weights=None, width_mult=width_mult)
    if name == "vgg16":
        return tvm.vgg16(weights=None)
    if name == "googlenet":
        return tvm.googlenet(weights=None, aux_logits=False, init_weights=True)
    if name == "alexnet":
        return tvm.alexnet(weights=None)
    raise NeometerError(f"unknown backbone '{name}': choose one of {', '.join(BACKBONES)}")


def _last_linear_path(name: str) -> str:
    return {"mobilenet_v2": "classifier.1", "vgg16": "classifier.6", "alexnet": "classifier.6", "googlenet": "fc"}[name]


def load_imagenet_weights(model: nn.Module, path: str | Path, what: str = "this backbone") -> None:
    """torchvision's own .pth state dict, loaded from a local file (never downloaded) into
    `model` (a regressor, or a segmenter's encoder, whose names keep torchvision's `features.`);
    tensors whose name or shape do not fit (the replaced 1000-way classifier) are skipped."""
    path = Path(path)
    if not path.is_file():
        raise NeometerError(f"--weights {path}: no such file; pass a torchvision ImageNet .pth saved locally")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise NeometerError(f"--weights {path}: not a torchvision state dict ({exc})") from None
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(usable) < len(own) // 2:
        raise NeometerError(f"--weights {path}: only {len(usable)} of {len(own)} tensors match {what}; "
                            "is it the right architecture?")
    model.load_state_dict(usable, strict=False)


def build_regressor(backbone: str = "mobilenet_v2", n_outputs: int = 2, width_mult: float = 1.0,
                    imagenet_weights: str | Path | None = None) -> nn.Module:
    """A torchvision backbone with its last layer replaced by `n_outputs` linear outputs."""
    model = _backbone(backbone, width_mult)
    if imagenet_weights:
        load_imagenet_weights(model, imagenet_weights)
    else:
        warnings.warn("no --weights given: the backbone starts from random initialisation, "
                      "not ImageNet; pass a local torchvision .pth to fine-tune as the paper does",
                      stacklevel=2)
    parent_path, _, attr = _last_linear_path(backbone).rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    old = getattr(parent, attr) if not attr.isdigit() else parent[int(attr)]
    head = nn.Linear(old.in_features, n_outputs)
    if attr.isdigit():
        parent[int(attr)] = head
    else:
        setattr(parent, attr, head)
    return model


def last_linear(model: nn.Module, backbone: str) -> nn.Linear:
    return model.get_submodule(_last_linear_path(backbone))


@torch.no_grad()
def fold_destandardization(model: nn.Module, backbone: str, mean, std) -> None:
    """y = std * (W x + b) + mean  ==>  W' = diag(std) W,  b' = std * b + mean."""
    head = last_linear(model, backbone)
    mean = torch.as_tensor(mean, dtype=head.weight.dtype)
    std = torch.as_tensor(std, dtype=head.weight.dtype)
    head.weight.mul_(std[:, None])
    head.bias.mul_(std).add_(mean)
