"""K-fold cross-validation grouped by infant (paper Sec. 3: 5-fold, no infant in both train
and test), deterministic by seed, optionally stratified by height bins; saved as JSON that
lists the infant ids of each fold."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from neometer.errors import NeometerError

SPLITS_FORMAT = "neometer-splits"


def height_bins(values, groups, n_bins: int) -> np.ndarray:
    """Per-sample bin labels from per-infant quantiles of `values` (one value per infant: its first)."""
    values, groups = np.asarray(values, np.float64), np.asarray(groups)
    _, first = np.unique(groups, return_index=True)
    edges = np.quantile(values[first], np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.searchsorted(edges, values, side="right")


def grouped_kfold(groups, k: int, seed: int = 0, stratify=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(train_idx, test_idx)] over samples, no group (infant) on both sides, same seed -> same folds.

    `stratify`: optional per-sample values. Integer/string labels are used as classes; float
    values (e.g. height_cm) are cut into per-infant quantile bins, as many as keep at least
    k infants in every bin (no bins -> plain grouped folds)."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if k < 2:
        raise NeometerError(f"k={k}: cross-validation needs at least 2 folds — use --folds 2 or more")
    if k > n_groups:
        raise NeometerError(f"k={k} folds need at least {k} infants but the data has {n_groups} — "
                            f"use --folds {max(2, n_groups)} or fewer, or add infants")
    x = np.zeros(len(groups))
    if stratify is not None:
        labels = np.asarray(stratify)
        if len(labels) != len(groups):
            raise NeometerError(f"stratify has {len(labels)} values for {len(groups)} samples")
        if labels.dtype.kind == "f":
            n_bins = min(5, n_groups // k)
            labels = height_bins(labels, groups, n_bins) if n_bins >= 2 else None
        if labels is not None:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            with warnings.catch_warnings():  # "least populated class < n_splits": bins are best effort
                warnings.simplefilter("ignore", UserWarning)
                folds = list(splitter.split(x, labels, groups))
            return [(np.sort(tr), np.sort(te)) for tr, te in folds]
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in splitter.split(x, groups=groups)]


def save_splits(path: str | Path, folds, groups, **meta) -> None:
    """JSON with the infant ids of each fold (plus any metadata, e.g. seed), written atomically."""
    groups = np.asarray(groups)
    doc = {"format": SPLITS_FORMAT, "k": len(folds), **meta, "folds": [
        {"fold": i, "train_infants": sorted(map(str, np.unique(groups[tr]))),
         "test_infants": sorted(map(str, np.unique(groups[te])))}
        for i, (tr, te) in enumerate(folds)]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


def load_splits(path: str | Path) -> list[tuple[list[str], list[str]]]:
    """[(train_infant_ids, test_infant_ids)] per fold, as saved by save_splits."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != SPLITS_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, expected {SPLITS_FORMAT!r}")
        return [(list(f["train_infants"]), list(f["test_infants"])) for f in doc["folds"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NeometerError(f"{path}: not a readable splits file ({exc}) — write it with save_splits") from None


def folds_for_groups(infant_folds, groups) -> list[tuple[np.ndarray, np.ndarray]]:
    """Turn load_splits' infant ids back into sample indices for `groups`; samples of infants
    the file does not name are left out of both sides."""
    groups = np.asarray(groups).astype(str)
    out = []
    for train_ids, test_ids in infant_folds:
        out.append((np.flatnonzero(np.isin(groups, list(train_ids))), np.flatnonzero(np.isin(groups, list(test_ids)))))
    return out
