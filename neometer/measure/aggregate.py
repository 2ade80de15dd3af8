"""Aggregate the accepted frames of one recording into the number the nurse reads: the median
(robust to a few bad frames), its spread, and how many frames it stands on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from neometer.measure.gates import TOO_FEW_FRAMES, FrameCheck, QualityThresholds


@dataclass(frozen=True)
class Measurement:
    height_cm: float | None
    weight_kg: float | None
    height_spread_cm: float | None  # half the interquartile range of the accepted frames
    weight_spread_kg: float | None
    frames_used: int
    frames_seen: int
    message: str | None  # None when a number is shown; else the gate to fix first

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def half_iqr(values: np.ndarray) -> float:
    q1, q3 = np.percentile(values, [25, 75])  # linear interpolation, as every shell does
    return float(q3 - q1) / 2.0


def aggregate(predictions: np.ndarray, checks: list[FrameCheck],
              t: QualityThresholds = QualityThresholds()) -> Measurement:
    """predictions: F x 2 (height_cm, weight_kg), one row per frame, in the order of checks."""
    predictions = np.asarray(predictions, np.float64).reshape(len(checks), -1)
    keep = np.array([c.accepted for c in checks], bool)
    n = int(keep.sum())
    if n < t.min_good_frames:
        reasons = Counter(f for c in checks for f in c.failures)
        message = reasons.most_common(1)[0][0] if reasons else TOO_FEW_FRAMES
        return Measurement(None, None, None, None, n, len(checks), message)
    good = predictions[keep]
    return Measurement(float(np.median(good[:, 0])), float(np.median(good[:, 1])),
                       half_iqr(good[:, 0]), half_iqr(good[:, 1]), n, len(checks), None)
