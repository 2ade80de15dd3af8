"""Bland–Altman agreement between a method (the model) and the reference (the scale or the
ruler): the bias and the 95% limits of agreement, bias +/- 1.96 SD of the differences."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class BlandAltman:
    n: int
    bias: float  # mean of (prediction - reference)
    sd: float  # sample SD of the differences (ddof=1)
    loa_low: float
    loa_high: float

    def to_dict(self) -> dict:
        return asdict(self)


def bland_altman(pred, ref) -> BlandAltman:
    pred = np.asarray(pred, np.float64).ravel()
    ref = np.asarray(ref, np.float64).ravel()
    ok = np.isfinite(pred) & np.isfinite(ref)
    diff = pred[ok] - ref[ok]
    if diff.size == 0:
        nan = float("nan")
        return BlandAltman(0, nan, nan, nan, nan)
    mean = float(diff.mean())
    sd = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
    return BlandAltman(int(diff.size), mean, sd, mean - 1.96 * sd, mean + 1.96 * sd)


def bland_altman_points(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    """x = mean of the two methods, y = difference (prediction - reference)."""
    pred = np.asarray(pred, np.float64).ravel()
    ref = np.asarray(ref, np.float64).ravel()
    ok = np.isfinite(pred) & np.isfinite(ref)
    return (pred[ok] + ref[ok]) / 2.0, pred[ok] - ref[ok]
