"""Tiny checkpoints for tests and smoke runs (random init; the regressor's head has a
de-standardisation folded in so outputs sit in cm / kg like a trained model's)."""

from __future__ import annotations

import warnings
from pathlib import Path


def make_tiny_regressor(path: str | Path, img_size: int = 64, width_mult: float = 0.35, seed: int = 0) -> Path:
    import torch

    from neometer.data.preprocess import PreprocessSpec
    from neometer.models.checkpoint import save_checkpoint
    from neometer.models.regressor import build_regressor, fold_destandardization

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_regressor("mobilenet_v2", 2, width_mult).eval()
    mean, std = [50.0, 3.3], [2.5, 0.45]
    fold_destandardization(model, "mobilenet_v2", mean, std)
    config = {"format": "neometer-checkpoint", "role": "regressor", "backbone": "mobilenet_v2",
              "width_mult": width_mult, "task": "multitask",
              "outputs": [{"name": "height_cm", "unit": "cm"}, {"name": "weight_kg", "unit": "kg"}],
              "img_size": img_size, "preprocessing": PreprocessSpec(target_size=img_size).to_dict(),
              "target_normalization": {"mean": mean, "std": std, "folded": True}, "seed": seed}
    return save_checkpoint(path, model, config)


def make_tiny_segmenter(path: str | Path, img_size: int = 64, width: float = 0.35, seed: int = 0) -> Path:
    import torch

    from neometer.data.preprocess import PreprocessSpec
    from neometer.models.checkpoint import save_checkpoint
    from neometer.models.segmenter import InfantSegmenter, segmenter_config

    torch.manual_seed(seed)
    arch = "lraspp_mobilenet_v3_small"
    model = InfantSegmenter(arch, width, img_size).eval()
    config = segmenter_config(arch, width, img_size, PreprocessSpec(target_size=img_size).to_dict())
    return save_checkpoint(path, model, config)
