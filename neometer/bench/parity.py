"""Parity of an exported artifact against the PyTorch reference, at two of three levels
(the third, localisation, is `neometer.bench.localize`):

1. raw outputs on the held-out images: max and mean |artifact - PyTorch| in cm and kg, and SNR;
2. task level: height and weight MAE against the labels, and its change against PyTorch's MAE.

fp32 and fp16 are judged on the raw difference (a converter must not change the numbers);
int8 is judged on the task (quantisation changes the numbers; it must not change the answer)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from neometer.errors import NeometerError


@dataclass(frozen=True)
class Thresholds:
    fp32_max_abs_cm: float = 0.01
    fp32_max_abs_kg: float = 0.001
    fp16_max_abs_cm: float = 0.1
    fp16_max_abs_kg: float = 0.01
    int8_delta_mae_cm: float = 0.15
    int8_delta_mae_kg: float = 0.03

    def for_precision(self, precision: str) -> dict:
        """The rule an artifact of this precision is judged by, as written into results."""
        if precision in ("fp32", "fp16"):
            return {"metric": "max_abs", "cm": getattr(self, f"{precision}_max_abs_cm"),
                    "kg": getattr(self, f"{precision}_max_abs_kg")}
        if precision == "int8":
            return {"metric": "delta_mae", "cm": self.int8_delta_mae_cm, "kg": self.int8_delta_mae_kg}
        raise NeometerError(f"unknown precision '{precision}': choose fp32, fp16 or int8")

    def to_dict(self) -> dict:
        return asdict(self)


def parse_thresholds(items: list[str] | None, base: Thresholds = Thresholds()) -> Thresholds:
    """`--threshold fp32_max_abs_cm=0.02 --threshold int8_delta_mae_kg=0.05` -> Thresholds."""
    known = {f.name for f in fields(Thresholds)}
    values, problems = {}, []
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in known:
            problems.append(f"--threshold {item}: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}")
            continue
        try:
            values[key] = float(value)
        except ValueError:
            problems.append(f"--threshold {item}: '{value}' is not a number")
    if problems:
        raise NeometerError("bad parity thresholds", problems=problems)
    return Thresholds(**{**asdict(base), **values})


def unit_columns(outputs: list[dict]) -> dict[str, int]:
    """Card outputs [{name, unit, index}] -> {"cm": column, "kg": column} (those present)."""
    cols = {}
    for i, out in enumerate(outputs):
        unit = out.get("unit")
        if unit in ("cm", "kg") and unit not in cols:
            cols[unit] = int(out.get("index", i))
    return cols


def snr_db(ref: np.ndarray, pred: np.ndarray) -> float | None:
    """10 log10(signal power / error power), the quantisation-noise convention; None when the
    outputs are identical (infinite SNR, which JSON cannot hold)."""
    noise = float(np.sum((ref.astype(np.float64) - pred) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    if noise == 0.0:
        return None
    return 10.0 * math.log10(max(signal, 1e-30) / noise)


def raw_parity(ref: np.ndarray, pred: np.ndarray, outputs: list[dict]) -> dict:
    """Level 1: |artifact - PyTorch| per unit over N images."""
    ref, pred = np.asarray(ref, np.float64), np.asarray(pred, np.float64)
    if ref.shape != pred.shape:
        raise NeometerError(f"artifact outputs have shape {pred.shape} but PyTorch gives {ref.shape}; "
                            "the model card's outputs do not match the model")
    result = {"n": int(ref.shape[0])}
    cols = unit_columns(outputs)
    for unit in ("cm", "kg"):
        if unit in cols:
            d = np.abs(pred[:, cols[unit]] - ref[:, cols[unit]])
            result[f"max_abs_{unit}"], result[f"mean_abs_{unit}"] = float(d.max()), float(d.mean())
        else:
            result[f"max_abs_{unit}"] = result[f"mean_abs_{unit}"] = None
    result["snr_db"] = snr_db(ref, pred)
    return result


def task_metrics(pred: np.ndarray, labels: np.ndarray, outputs: list[dict]) -> dict:
    """MAE of height (cm) and weight (kg) against labels (N, 2) = [height_cm, weight_kg]."""
    cols = unit_columns(outputs)
    out = {}
    for unit, label_col, key in (("cm", 0, "mae_height_cm"), ("kg", 1, "mae_weight_kg")):
        out[key] = float(np.mean(np.abs(pred[:, cols[unit]] - labels[:, label_col]))) if unit in cols else None
    return out


def task_parity(ref: np.ndarray, pred: np.ndarray, labels: np.ndarray, outputs: list[dict]) -> dict:
    """Level 2: the artifact's MAE and its change against PyTorch's MAE on the same images."""
    mine, theirs = task_metrics(pred, labels, outputs), task_metrics(ref, labels, outputs)
    result = dict(mine)
    for key in ("mae_height_cm", "mae_weight_kg"):
        result[f"delta_{key}"] = None if mine[key] is None else mine[key] - theirs[key]
        result[f"reference_{key}"] = theirs[key]
    return result


def verdict(precision: str, raw: dict, task: dict, thresholds: Thresholds) -> tuple[bool, list[str]]:
    """-> (passed, reasons it failed)."""
    rule = thresholds.for_precision(precision)
    reasons = []
    for unit, label in (("cm", "height"), ("kg", "weight")):
        limit = rule[unit]
        if rule["metric"] == "max_abs":
            value = raw.get(f"max_abs_{unit}")
            if value is not None and not value <= limit:  # `not <=` also catches NaN
                reasons.append(f"max |Δ| {label} {value:.4g} {unit} > {limit:g} {unit}")
        else:
            value = task.get(f"delta_mae_{label}_{unit}")
            if value is not None and not value <= limit:
                reasons.append(f"{label} MAE change {value:+.4g} {unit} > {limit:g} {unit}")
    return not reasons, reasons


def parity_block(precision: str, ref: np.ndarray, pred: np.ndarray, labels: np.ndarray | None,
                 outputs: list[dict], thresholds: Thresholds) -> dict:
    """The `parity` block of a result (schema contract 2), without localisation."""
    raw = raw_parity(ref, pred, outputs)
    task = task_parity(ref, pred, labels, outputs) if labels is not None else {}
    passed, reasons = verdict(precision, raw, task, thresholds)
    return {"raw": raw, "task": task, "passed": passed, "threshold": thresholds.for_precision(precision),
            "reasons": reasons, "divergence": None}
