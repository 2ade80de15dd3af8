"""Error metrics of a regressor against reference measurements.

MAPE follows the paper's eq. 4 in spirit but divides by the *reference* value, not by the
prediction as the paper's formula literally does: a percentage of the true length is what a
clinician means, and it cannot be gamed by predicting large values. The report says so."""

from __future__ import annotations

import numpy as np


def _pair(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, np.float64).ravel()
    ref = np.asarray(ref, np.float64).ravel()
    if pred.shape != ref.shape:
        raise ValueError(f"prediction and reference differ in length ({pred.size} vs {ref.size})")
    return pred, ref


def mae(pred, ref) -> float:
    pred, ref = _pair(pred, ref)
    return float(np.mean(np.abs(pred - ref))) if ref.size else float("nan")


def mape(pred, ref) -> float:
    """Mean absolute percentage error in %, relative to the reference (see module note)."""
    pred, ref = _pair(pred, ref)
    return float(100.0 * np.mean(np.abs(pred - ref) / np.abs(ref))) if ref.size else float("nan")


def rmse(pred, ref) -> float:
    pred, ref = _pair(pred, ref)
    return float(np.sqrt(np.mean((pred - ref) ** 2))) if ref.size else float("nan")


def bias(pred, ref) -> float:
    """Mean signed error, prediction minus reference (positive = overestimates)."""
    pred, ref = _pair(pred, ref)
    return float(np.mean(pred - ref)) if ref.size else float("nan")


def skill(model_mae: float, baseline_mae: float) -> float:
    """1 - MAE / MAE_baseline: 0 = no better than predicting the training mean, 1 = perfect,
    negative = worse than the mean. The yardstick the paper did not report."""
    if not np.isfinite(baseline_mae) or baseline_mae <= 0:
        return float("nan")
    return float(1.0 - model_mae / baseline_mae)


def summarize(pred, ref, baseline_pred=None) -> dict:
    """All metrics of one quantity; `baseline_pred` is the mean predictor's output per sample
    (the training fold's mean), giving baseline_mae and skill."""
    pred, ref = _pair(pred, ref)
    ok = np.isfinite(pred) & np.isfinite(ref)
    out = {"n": int(ok.sum()), "mae": mae(pred[ok], ref[ok]), "mape_pct": mape(pred[ok], ref[ok]),
           "rmse": rmse(pred[ok], ref[ok]), "bias": bias(pred[ok], ref[ok])}
    if baseline_pred is not None:
        base = np.asarray(baseline_pred, np.float64).ravel()[ok]
        out["baseline_mae"] = mae(base, ref[ok])
        out["skill"] = skill(out["mae"], out["baseline_mae"])
    return out
