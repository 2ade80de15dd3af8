"""What a task trains, and how its predictions become [height_cm, weight_kg].

The paper (Sec. 2.2) has three ways to get weight, height always from a MobileNetV2:
  (i)   height+regression: a 1-output height net, then W = alpha * H + beta fitted by least
        squares on the training fold's labels (scikit-learn), stored in the checkpoint;
  (ii)  two one-task nets: `height` and `weight` trained separately (paper.py combines them);
  (iii) multitask: one net with 2 outputs, loss = MSE_height + MSE_weight.
Targets are standardised inside training, so the two MSEs are on the same scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neometer.errors import NeometerError

TASKS = ("height", "weight", "multitask", "height+regression")
TARGET_NAMES = ("height_cm", "weight_kg")  # the columns of every target array, in this order
TARGET_UNITS = ("cm", "kg")


@dataclass(frozen=True)
class Strategy:
    task: str
    columns: tuple[int, ...]  # which target columns the network regresses
    weight_from_height: bool  # strategy (i): weight follows from predicted height

    @property
    def n_outputs(self) -> int:
        return len(self.columns)

    @property
    def outputs(self) -> list[dict]:
        """Names and units of what the *exported* model outputs."""
        cols = (0, 1) if self.weight_from_height else self.columns
        return [{"name": TARGET_NAMES[c], "unit": TARGET_UNITS[c]} for c in cols]


def strategy_for(task: str) -> Strategy:
    if task == "height":
        return Strategy(task, (0,), False)
    if task == "weight":
        return Strategy(task, (1,), False)
    if task == "multitask":
        return Strategy(task, (0, 1), False)
    if task == "height+regression":
        return Strategy(task, (0,), True)
    raise NeometerError(f"unknown task '{task}': choose one of {', '.join(TASKS)}")


def per_infant_labels(infant_ids, heights, weights) -> tuple[np.ndarray, np.ndarray]:
    """One (height, weight) per infant, so an infant with many frames does not weigh more in
    the fit than one with few. An infant has one reference pair (first one seen is used)."""
    seen: dict[str, tuple[float, float]] = {}
    for i, h, w in zip(infant_ids, heights, weights):
        seen.setdefault(str(i), (float(h), float(w)))
    pairs = np.array(list(seen.values()), np.float64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def fit_weight_from_height(heights, weights) -> tuple[float, float]:
    """Least-squares W = alpha * H + beta (the paper's eq. 1, scikit-learn as the paper)."""
    from sklearn.linear_model import LinearRegression

    h = np.asarray(heights, np.float64).reshape(-1, 1)
    w = np.asarray(weights, np.float64).ravel()
    if h.shape[0] < 2 or np.ptp(h) == 0:
        raise NeometerError("cannot fit W = alpha*H + beta: the training fold needs at least two "
                            "infants of different heights")
    reg = LinearRegression().fit(h, w)
    return float(reg.coef_[0]), float(reg.intercept_)


def to_height_weight(pred: np.ndarray, strategy: Strategy, alpha_beta: tuple[float, float] | None = None) -> np.ndarray:
    """Network outputs (N x n_outputs, in cm/kg) -> N x 2 [height_cm, weight_kg], NaN where the
    strategy does not predict a quantity."""
    pred = np.asarray(pred, np.float64).reshape(len(pred), -1)
    out = np.full((len(pred), 2), np.nan)
    for j, col in enumerate(strategy.columns):
        out[:, col] = pred[:, j]
    if strategy.weight_from_height:
        if alpha_beta is None:
            raise ValueError("height+regression needs alpha and beta")
        out[:, 1] = alpha_beta[0] * out[:, 0] + alpha_beta[1]
    return out
