"""When an fp16 artifact fails parity: the converter's fault, or fp16's?

A weight-only fp16 artifact (TFLite's float16 quantization: fp16 constants, fp32 compute) stores
the weights AFTER BatchNorm is folded into the convolutions, and rounding those products to fp16
changes the outputs by itself. This module rebuilds that model in PyTorch (BatchNorm folded with
torch.fx, every parameter rounded to fp16 and back) and compares the artifact with it under the
fp32 gate: within it, the conversion is exact and what remains is the precision of fp16 weights
for this model; outside it, the converter changed the numbers."""

from __future__ import annotations

import copy

import numpy as np

from neometer.bench.parity import Thresholds, raw_parity


def fp16_weight_model(model):
    """`model` with BatchNorm folded into its convolutions and every floating-point parameter and
    buffer rounded to fp16 (computation stays fp32), as a weight-only fp16 artifact holds it."""
    import torch
    from torch.fx.experimental.optimization import fuse

    folded = fuse(copy.deepcopy(model).float().eval())
    with torch.no_grad():
        for t in [*folded.parameters(), *folded.buffers()]:
            if t.dtype.is_floating_point:
                t.copy_(t.half().float())
    return folded


def fp16_weight_reference(model, x: np.ndarray, batch: int = 8) -> np.ndarray:
    """Outputs of fp16_weight_model(model) on x (N, 3, S, S)."""
    import torch

    sim = fp16_weight_model(model)
    with torch.inference_mode():
        out = [sim(torch.from_numpy(np.ascontiguousarray(x[i:i + batch], np.float32))) for i in range(0, len(x), batch)]
    return torch.cat([o[0] if isinstance(o, (tuple, list)) else o for o in out]).numpy()


def explain_fp16(sim: np.ndarray, pred: np.ndarray, outputs: list[dict], thresholds: Thresholds) -> dict:
    """Compare the artifact with the fp16-weight PyTorch model under the fp32 gate."""
    raw = raw_parity(sim, pred, outputs)
    exact = all(raw[f"max_abs_{u}"] is None or raw[f"max_abs_{u}"] <= getattr(thresholds, f"fp32_max_abs_{u}")
                for u in ("cm", "kg"))
    size = f"{_fmt(raw['max_abs_cm'])} cm / {_fmt(raw['max_abs_kg'])} kg"
    text = (f"the artifact matches PyTorch with BatchNorm-folded fp16 weights within {size} (the fp32 gate)"
            if exact else
            f"the artifact also differs from PyTorch with BatchNorm-folded fp16 weights ({size}, above the fp32 gate)")
    cause = ("so the deviation is fp16 weight precision on this model, not the converter" if exact
             else "so the converter changed the numbers beyond fp16 rounding")
    return {"max_abs_cm": raw["max_abs_cm"], "max_abs_kg": raw["max_abs_kg"], "converter_exact": exact,
            "text": f"{text}: {cause}"}


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.2g}"


__all__ = ["explain_fp16", "fp16_weight_model", "fp16_weight_reference"]
