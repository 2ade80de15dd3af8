"""The on-device infant segmenter: a light LR-ASPP head (Howard et al., MobileNetV3) on a
MobileNet encoder, replacing the paper's YOLOv7 + Detectron2, which no phone runs.

Export contract (every target of export.py reads it, the shells rely on it):
  input   1 x 3 x S x S float32 NCHW, normalised exactly like the regressor's input
          (PreprocessSpec: letterbox, ImageNet mean/std) but WITHOUT background removal;
  output  ONE tensor, 1 x 1 x S x S body probability in [0, 1] (the sigmoid is inside the model),
          so a shell thresholds it at the card's `mask_threshold` directly.
Only plain convolutions, ReLU/hardswish/hardsigmoid, a global average pool (to 1x1, which every
converter maps to a mean) and bilinear upsampling written as products with constant matrices
(exact and identical in every runtime) are used; the input size is fixed at build time.

`SegmentAndMeasure` is the multi-task alternative (one backbone, a mask head and the regression
head in one pass; NurtureNet-style auxiliary segmentation), kept as an experiment behind
`neometer train-seg --multitask`: see `neometer.train.segment`.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

from neometer.errors import NeometerError
from neometer.models.regressor import load_imagenet_weights

# Each arch taps its encoder twice: stride-8 features carry the boundary detail, the stride-16/32
# context features the "is this a baby" evidence.
SEGMENTER_ARCHS = ("lraspp_mobilenet_v3_small", "lraspp_mobilenet_v3_large", "lraspp_mobilenet_v2")
DEFAULT_ARCH = "lraspp_mobilenet_v3_small"
SEGMENTER_OUTPUTS = [{"name": "body_probability", "unit": "probability"}]


def _mobilenet_v3_encoder(large: bool, width: float) -> tuple[nn.Module, int, int]:
    """MobileNetV3 features, dilated last stage (output stride 16) as torchvision's LR-ASPP;
    -> (encoder returning {"low", "high"}, low channels, high channels)."""
    build = tvm.mobilenet_v3_large if large else tvm.mobilenet_v3_small
    features = build(weights=None, width_mult=width, dilated=True).features
    # The low-level tap is the last block of output stride 8, as torchvision's lraspp does.
    stage_ends = [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features) - 1]
    low_pos, high_pos = stage_ends[-4], stage_ends[-1]
    return _Taps(features, low_pos, high_pos), features[low_pos].out_channels, features[high_pos].out_channels


def _mobilenet_v2_encoder(width: float) -> tuple[nn.Module, int, int]:
    """MobileNetV2 (the paper's regression backbone) features: stride-8 taps after block 6,
    stride-32 context after block 17 (the 1x1 expansion to 1280 is dropped: weight, no gain)."""
    features = tvm.mobilenet_v2(weights=None, width_mult=width).features[:18]
    return _Taps(features, 6, 17), features[6].out_channels, features[17].out_channels


class _Taps(nn.Module):
    """Runs a Sequential once and returns two of its intermediate outputs (no hooks: export-safe)."""

    def __init__(self, features: nn.Sequential, low: int, high: int):
        super().__init__()
        self.features = features[: high + 1]
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        out = OrderedDict()
        for i, block in enumerate(self.features):
            x = block(x)
            if i == self.low:
                out["low"] = x
        out["high"] = x
        return out


def build_encoder(arch: str, width: float) -> tuple[nn.Module, int, int]:
    if arch == "lraspp_mobilenet_v3_small":
        return _mobilenet_v3_encoder(False, width)
    if arch == "lraspp_mobilenet_v3_large":
        return _mobilenet_v3_encoder(True, width)
    if arch == "lraspp_mobilenet_v2":
        return _mobilenet_v2_encoder(width)
    raise NeometerError(f"unknown segmenter arch '{arch}': choose one of {', '.join(SEGMENTER_ARCHS)}")


# Output stride of each encoder's context features (MobileNetV3 dilates its last stage).
HIGH_STRIDE = {"lraspp_mobilenet_v3_small": 16, "lraspp_mobilenet_v3_large": 16, "lraspp_mobilenet_v2": 32}
SIZE_MULTIPLE = 32  # every feature grid is then an exact fraction of S: integer, constant resize scales


def check_img_size(img_size: int) -> None:
    if img_size < SIZE_MULTIPLE or img_size % SIZE_MULTIPLE:
        raise NeometerError(f"segmenter img_size {img_size}: must be a multiple of {SIZE_MULTIPLE} (e.g. 64, 96, 224) "
                            "so every resize in the exported graph has a constant integer scale")


def upsample_matrix(n_in: int, factor: int) -> torch.Tensor:
    """(n_in * factor) x n_in bilinear weights aligned to how strided convolutions place
    features: with 'same' padding and odd kernels, feature i of a stride-s map is centred on
    input pixel s * i, so output pixel o samples feature position o / factor (the last feature
    row is repeated past the edge). torch's half-pixel bilinear would put feature i at
    s * i + (s - 1) / 2 and shift every mask (s - 1) / 2 pixels down and right."""
    pos = torch.arange(n_in * factor, dtype=torch.float64) / factor
    i0 = pos.floor().long()
    frac = pos - i0
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w = torch.zeros(n_in * factor, n_in, dtype=torch.float64)
    rows = torch.arange(n_in * factor)
    w.index_put_((rows, i0), 1 - frac, accumulate=True)
    w.index_put_((rows, i1), frac, accumulate=True)
    return w.float()


class BilinearUpsample(nn.Module):
    """Separable bilinear upsampling as two matrix products with constant matrices: exact,
    the same in every runtime (no Resize-op conventions to disagree on), and MatMul converts
    everywhere. The matrices are rebuilt from the config, not stored in checkpoints."""

    def __init__(self, n_in: int, factor: int):
        super().__init__()
        w = upsample_matrix(n_in, factor)
        self.register_buffer("rows", w, persistent=False)  # (n*f, n): applied on the left
        self.register_buffer("cols", w.t().contiguous(), persistent=False)  # (n, n*f): on the right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.rows, x), self.cols)


class LRASPPHead(nn.Module):
    """Lite R-ASPP (MobileNetV3 paper, torchvision's layout) with a constant upsample size:
    context features gated by their global average, upsampled to the stride-8 grid, plus a
    linear read-out of the stride-8 features."""

    def __init__(self, low_channels: int, high_channels: int, inter_channels: int, high_size: int, high_to_low: int):
        super().__init__()
        self.upsample = BilinearUpsample(high_size, high_to_low) if high_to_low > 1 else nn.Identity()
        self.cbr = nn.Sequential(nn.Conv2d(high_channels, inter_channels, 1, bias=False),
                                 nn.BatchNorm2d(inter_channels), nn.ReLU(inplace=True))
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(high_channels, inter_channels, 1, bias=False),
                                   nn.Sigmoid())
        self.low_classifier = nn.Conv2d(low_channels, 1, 1)
        self.high_classifier = nn.Conv2d(inter_channels, 1, 1)

    def forward(self, feats: "OrderedDict[str, torch.Tensor]") -> torch.Tensor:
        low, high = feats["low"], feats["high"]
        x = self.cbr(high) * self.scale(high)
        x = self.upsample(x)
        return self.low_classifier(low) + self.high_classifier(x)


class InfantSegmenter(nn.Module):
    """Encoder + LR-ASPP head + bilinear upsample to the input size + sigmoid.

    `forward` returns probabilities (what is exported); `logits` is what training uses, so the
    loss runs on logits (numerically safe under mixed precision)."""

    def __init__(self, arch: str = DEFAULT_ARCH, width: float = 1.0, img_size: int = 224, inter_channels: int = 64):
        super().__init__()
        check_img_size(img_size)
        self.arch, self.width, self.img_size = arch, width, img_size
        self.encoder, low_ch, high_ch = build_encoder(arch, width)
        high_stride = HIGH_STRIDE[arch]
        self.head = LRASPPHead(low_ch, high_ch, inter_channels, img_size // high_stride, high_stride // 8)
        self.upsample = BilinearUpsample(img_size // 8, 8)  # stride-8 logits -> S x S
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                # torchvision's MobileNetV3 uses 0.01 (long ImageNet schedules); with a few hundred
                # steps the running statistics would still be their initial values at eval time.
                m.momentum = 0.1

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        return self.upsample(self.head(feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class SegmentAndMeasure(nn.Module):
    """Multi-task experiment: one encoder, the mask head, and a regression head on the pooled
    context features (standardised height and weight) in one pass. `forward` returns
    (body probability N x 1 x S x S, measurements N x 2 in standardised units until folded)."""

    def __init__(self, arch: str = "lraspp_mobilenet_v2", width: float = 1.0, img_size: int = 224,
                 inter_channels: int = 64, n_outputs: int = 2):
        super().__init__()
        self.seg = InfantSegmenter(arch, width, img_size, inter_channels)
        high_ch = self.seg.head.cbr[0].in_channels
        self.regress = nn.Sequential(nn.Dropout(0.2), nn.Linear(high_ch, n_outputs))

    def both_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.seg.encoder(x)
        mask = self.seg.upsample(self.seg.head(feats))
        pooled = feats["high"].mean(dim=(2, 3))
        return mask, self.regress(pooled)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask, measures = self.both_logits(x)
        return torch.sigmoid(mask), measures


def build_segmenter(config: dict) -> nn.Module:
    """The architecture a checkpoint config describes (role "segmenter"), untrained."""
    arch = config.get("arch") or config.get("backbone") or DEFAULT_ARCH
    width = float(config.get("width", config.get("width_mult", 1.0)))
    img_size = int(config.get("img_size") or config.get("preprocessing", {}).get("target_size", 224))
    inter = int(config.get("inter_channels", 64))
    if config.get("task") == "segment_and_measure":
        return SegmentAndMeasure(arch, width, img_size, inter, int(config.get("n_regression_outputs", 2)))
    return InfantSegmenter(arch, width, img_size, inter)


def segmenter_config(arch: str, width: float, img_size: int, preprocessing: dict, inter_channels: int = 64) -> dict:
    """The checkpoint JSON fields that describe a segmenter (training adds data, split, metrics)."""
    return {
        "format": "neometer-checkpoint",
        "role": "segmenter",
        "arch": arch,
        "backbone": arch,  # the model card's model.backbone
        "task": "segmentation",
        "width": width,
        "width_mult": width,
        "inter_channels": inter_channels,
        "img_size": img_size,
        "preprocessing": dict(preprocessing, background_removal="none"),
        "outputs": [dict(o, shape=[1, 1, img_size, img_size]) for o in SEGMENTER_OUTPUTS],
    }


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def new_segmenter(arch: str = DEFAULT_ARCH, width: float = 1.0, img_size: int = 224,
                  weights: str | Path | None = None, inter_channels: int = 64) -> InfantSegmenter:
    model = InfantSegmenter(arch, width, img_size, inter_channels)
    if weights:
        load_imagenet_weights(model.encoder, weights, f"{model.arch} width {model.width}'s encoder")
    else:
        warnings.warn("segmenter encoder starts from random initialisation (no --weights); "
                      "fine for the synthetic benchmark, slower to converge on clinical photos", stacklevel=2)
    return model
