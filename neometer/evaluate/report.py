"""The evaluation report of one or several training runs, from their predictions.csv alone:
report.json (every number), report.md (the same for people) and PNG plots.

Per frame (what the network does on one image) and per recording (the median over a
recording's frames: what the app shows), per fold and pooled, each against the mean
predictor (the training fold's mean), whose MAE is the honest yardstick on data whose
birth-length SD is about 1.9 cm."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from neometer.errors import NeometerError
from neometer.evaluate.agreement import bland_altman, bland_altman_points
from neometer.evaluate.metrics import summarize

QUANTITIES = {"height": ("cm", "height_ref", "height_pred", "train_mean_height"),
              "weight": ("kg", "weight_ref", "weight_pred", "train_mean_weight")}
NUMERIC = ("height_ref", "weight_ref", "height_pred", "weight_pred", "train_mean_height", "train_mean_weight")
NO_TAG = "(no tag)"
N_BINS = 6
PLOTS = ("bland_altman_height.png", "bland_altman_weight.png", "pred_vs_ref.png", "error_by_bin.png",
         "temporal_stability.png")
NOTES = {
    "mape": "MAPE divides by the reference value (the paper's eq. 4 divides by the prediction).",
    "baseline": "The mean predictor predicts the training fold's mean (one vote per infant) for every test "
                "frame; skill = 1 - MAE / MAE_baseline (0 = no better than the mean, 1 = perfect).",
    "per_recording": "A recording's estimate is the median of its frames' predictions, as the app shows; "
                     "frame-to-frame SD is the paper's temporal stability (Fig. 5c-d), over recordings with 2+ frames.",
    "bias": "bias = mean(prediction - reference); Bland-Altman limits = bias +/- 1.96 SD of the differences.",
    "validation": "The per-epoch validation MAE shown during training is on the test fold and is for display only: "
                  "no model selection or early stopping uses it; each fold keeps its last epoch.",
}


# --- loading ------------------------------------------------------------------------------

class Predictions:
    """Column arrays of predictions.csv (one row per test frame), several runs concatenated."""

    def __init__(self, rows: list[dict]):
        self.n = len(rows)
        for col in NUMERIC:
            setattr(self, col, np.array([float(r[col]) if r.get(col) not in (None, "") else np.nan for r in rows]))
        self.fold = np.array([int(r["fold"]) for r in rows], int)
        self.infant_id = np.array([str(r["infant_id"]) for r in rows], dtype=object)
        self.media = np.array([str(r["media"]) for r in rows], dtype=object)
        self.frame_index = np.array([int(r["frame_index"]) for r in rows], int)
        self.tags = [[t for t in str(r.get("tags") or "").split(";") if t] for r in rows]

    def has(self, quantity: str) -> bool:
        return bool(np.isfinite(getattr(self, QUANTITIES[quantity][2])).any())


def _read_run(run_dir: Path) -> tuple[list[dict], dict]:
    path = run_dir / "predictions.csv" if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise NeometerError(f"{path}: no predictions.csv; is {run_dir} a training run folder (python train.py --out)? "
                            f"A run still training writes it when its first fold finishes")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in ("fold", "infant_id", "media", "frame_index", *NUMERIC) if rows and c not in rows[0]]
    if missing:
        raise NeometerError(f"{path}: missing columns {', '.join(missing)}; it was not written by neometer train")
    cfg_path = path.parent / "config.json"
    config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    return rows, config


def _model_key(config: dict) -> tuple:
    t = config.get("training", {})
    return (config.get("task"), config.get("backbone"), t.get("background"), config.get("dataset", {}).get("sha256"))


def load_runs(run_dirs) -> tuple[Predictions, list[dict]]:
    """Merge the predictions of several run folders (e.g. folds fanned out as separate jobs).
    They must be the same model setting on the same data, and no test frame may appear twice."""
    rows, runs, problems = [], [], []
    keys = set()
    seen: dict[tuple, str] = {}
    for rd in run_dirs:
        rd = Path(rd)
        r, config = _read_run(rd)
        if config:
            keys.add(_model_key(config))
        runs.append({"run_dir": str(rd), "task": config.get("task"), "backbone": config.get("backbone"),
                     "background": config.get("training", {}).get("background"),
                     "dataset_sha256": config.get("dataset", {}).get("sha256"),
                     "folds": sorted({int(x["fold"]) for x in r})})
        for x in r:
            key = (x["media"], x["frame_index"])
            if key in seen:
                problems.append(f"{rd}: frame {x['frame_index']} of {x['media']} (fold {x['fold']}) is also in {seen[key]}")
                break
            seen[key] = str(rd)
        rows.extend(r)
    if len(keys) > 1:
        problems.append("the runs are different models or datasets (task, backbone, background, dataset): "
                        + "; ".join(map(str, sorted(keys, key=str))))
    if problems:
        raise NeometerError("cannot merge these runs into one report; merge only the folds of one setting",
                            problems=problems)
    if not rows:
        raise NeometerError(f"{', '.join(map(str, run_dirs))}: predictions.csv has no rows")
    return Predictions(rows), runs


# --- numbers ------------------------------------------------------------------------------

def _quantity(p: Predictions, q: str, mask=None):
    _, ref, pred, base = QUANTITIES[q]
    m = np.ones(p.n, bool) if mask is None else mask
    return getattr(p, pred)[m], getattr(p, ref)[m], getattr(p, base)[m]


def frame_metrics(p: Predictions, quantities) -> dict:
    out = {"pooled": {q: summarize(*_quantity(p, q)) for q in quantities}, "per_fold": {}}
    for k in sorted(set(p.fold.tolist())):
        out["per_fold"][str(k)] = {q: summarize(*_quantity(p, q, p.fold == k)) for q in quantities}
    return out


def recording_table(p: Predictions, quantities) -> list[dict]:
    """One row per recording: reference, median over frames, frame-to-frame SD."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(p.media):
        groups[m].append(i)
    table = []
    for media, idx in groups.items():
        idx = np.asarray(idx)
        row = {"media": media, "infant_id": str(p.infant_id[idx[0]]), "fold": int(p.fold[idx[0]]),
               "n_frames": int(len(idx)), "tags": ";".join(sorted({t for i in idx for t in p.tags[i]}))}
        for q in quantities:
            pred, ref, base = _quantity(p, q)
            vals = pred[idx][np.isfinite(pred[idx])]
            row[f"{q}_ref"] = float(ref[idx[0]])
            row[f"{q}_median"] = float(np.median(vals)) if vals.size else float("nan")
            row[f"{q}_frame_sd"] = float(np.std(vals, ddof=1)) if vals.size > 1 else float("nan")
            row[f"{q}_train_mean"] = float(base[idx[0]])
        table.append(row)
    return sorted(table, key=lambda r: (r["fold"], r["infant_id"], r["media"]))


def recording_metrics(recs: list[dict], quantities) -> dict:
    out = {"aggregate": "median over the recording's frames", "n_recordings": len(recs),
           "n_multi_frame": sum(r["n_frames"] > 1 for r in recs)}
    for q in quantities:
        med = np.array([r[f"{q}_median"] for r in recs])
        ref = np.array([r[f"{q}_ref"] for r in recs])
        base = np.array([r[f"{q}_train_mean"] for r in recs])
        sd = np.array([r[f"{q}_frame_sd"] for r in recs])
        sd = sd[np.isfinite(sd)]
        out[q] = summarize(med, ref, base)
        out[q]["frame_sd"] = ({"mean": float(sd.mean()), "median": float(np.median(sd)), "max": float(sd.max()),
                               "n_recordings": int(sd.size)} if sd.size else None)
    return out


def bins_of(ref: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Equal-width bins over the reference range: the extremes (where the paper saw the worst
    errors) get their own bins even when few infants fall there."""
    lo, hi = float(np.nanmin(ref)), float(np.nanmax(ref))
    if hi - lo < 1e-9:
        hi = lo + 1e-6
    return np.linspace(lo, hi, n_bins + 1)


def error_by_bin(p: Predictions, q: str, n_bins: int = N_BINS) -> list[dict]:
    pred, ref, base = _quantity(p, q)
    ok = np.isfinite(pred) & np.isfinite(ref)
    edges = bins_of(ref[ok], n_bins)
    which = np.clip(np.digitize(ref, edges[1:-1]), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        m = ok & (which == b)
        s = summarize(pred[m], ref[m], base[m]) if m.any() else {"n": 0}
        out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n_infants": int(len(set(p.infant_id[m]))), **s})
    return out


def by_tag(p: Predictions, quantities) -> dict:
    """Slices by the data engine's hard-case tags (tilt, diaper, partial body, clutter)."""
    names = sorted({t for tags in p.tags for t in tags})
    out = {}
    for name in names + [NO_TAG]:
        m = np.array([(name in t) if name != NO_TAG else not t for t in p.tags], bool)
        if not m.any():
            continue
        out[name] = {"n_frames": int(m.sum()), "n_recordings": int(len(set(p.media[m]))),
                     **{q: summarize(*_quantity(p, q, m)) for q in quantities}}
    return out


def compute_report(p: Predictions, runs: list[dict]) -> dict:
    quantities = [q for q in QUANTITIES if p.has(q)]
    recs = recording_table(p, quantities)
    return {
        "runs": runs, "quantities": quantities, "units": {q: QUANTITIES[q][0] for q in quantities},
        "n_frames": p.n, "n_recordings": len(recs), "n_infants": int(len(set(p.infant_id))),
        "folds": sorted(set(p.fold.tolist())), "notes": NOTES,
        "per_frame": frame_metrics(p, quantities),
        "bland_altman": {q: bland_altman(*_quantity(p, q)[:2]).to_dict() for q in quantities},
        "per_recording": recording_metrics(recs, quantities),
        "error_by_bin": {q: error_by_bin(p, q) for q in quantities},
        "by_tag": by_tag(p, quantities),
        "recordings": recs,
    }


# --- plots --------------------------------------------------------------------------------

def pyplot():
    """matplotlib without a display (Agg), imported only when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bland_altman(p: Predictions, q: str, ba: dict, path: Path) -> None:
    plt = pyplot()
    unit = QUANTITIES[q][0]
    x, y = bland_altman_points(*_quantity(p, q)[:2])
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(x, y, s=8, alpha=0.4)
    for v, style, label in ((ba["bias"], "-", f"bias {ba['bias']:+.3f}"), (ba["loa_low"], "--", f"-1.96 SD {ba['loa_low']:+.3f}"),
                            (ba["loa_high"], "--", f"+1.96 SD {ba['loa_high']:+.3f}")):
        ax.axhline(v, color="C3", linestyle=style, label=label)
    ax.set_xlabel(f"mean of prediction and reference ({unit})")
    ax.set_ylabel(f"prediction - reference ({unit})")
    ax.set_title(f"Bland-Altman, {q} (per frame, n={ba['n']})")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_pred_vs_ref(p: Predictions, quantities, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 4.5), squeeze=False)
    for ax, q in zip(axes[0], quantities):
        pred, ref, _ = _quantity(p, q)
        ax.scatter(ref, pred, s=8, alpha=0.4, c=p.fold, cmap="tab10")
        lo, hi = np.nanmin([ref.min(), np.nanmin(pred)]), np.nanmax([ref.max(), np.nanmax(pred)])
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="identity")
        ax.set_xlabel(f"reference {q} ({QUANTITIES[q][0]})")
        ax.set_ylabel(f"predicted {q} ({QUANTITIES[q][0]})")
        ax.set_title(f"{q}: predicted vs reference (colour = fold)")
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_error_by_bin(bins: dict, path: Path) -> None:
    plt = pyplot()
    qs = list(bins)
    fig, axes = plt.subplots(1, len(qs), figsize=(5 * len(qs), 4), squeeze=False)
    for ax, q in zip(axes[0], qs):
        rows = [b for b in bins[q] if b["n"]]
        labels = [f"{b['lo']:.1f}-{b['hi']:.1f}" if q == "height" else f"{b['lo']:.2f}-{b['hi']:.2f}" for b in rows]
        ax.bar(range(len(rows)), [b["mae"] for b in rows], label="model")
        ax.plot(range(len(rows)), [b["baseline_mae"] for b in rows], "ko--", label="mean predictor")
        for i, b in enumerate(rows):
            ax.annotate(f"n={b['n_infants']}", (i, b["mae"]), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(rows)), labels, rotation=30, fontsize=7)
        ax.set_xlabel(f"reference {q} bin ({QUANTITIES[q][0]})")
        ax.set_ylabel(f"MAE ({QUANTITIES[q][0]})")
        ax.set_title(f"{q}: error by reference bin (n = infants)")
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_temporal_stability(recs: list[dict], quantities, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 4), squeeze=False)
    for ax, q in zip(axes[0], quantities):
        sd = [(r[f"{q}_frame_sd"], r["infant_id"]) for r in recs if np.isfinite(r[f"{q}_frame_sd"])]
        ax.bar(range(len(sd)), [s for s, _ in sd])
        ax.set_xlabel("recording (multi-frame only)")
        ax.set_ylabel(f"frame-to-frame SD ({QUANTITIES[q][0]})")
        ax.set_title(f"{q}: temporal stability per recording" + ("" if sd else " (no videos)"))
    save_figure(fig, path)


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Tight layout, written atomically (a crash leaves no half PNG)."""
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
    tmp.replace(path)


# --- markdown -----------------------------------------------------------------------------

def _f(v, digits=3) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def to_markdown(rep: dict) -> str:
    qs = rep["quantities"]
    units = rep["units"]
    runs = ", ".join(f"{r['run_dir']} ({r['task']}, {r['backbone']}, background {r['background']})" for r in rep["runs"])
    lines = ["# Evaluation report", "", f"Runs: {runs}", "",
             f"{rep['n_frames']} test frames, {rep['n_recordings']} recordings, {rep['n_infants']} infants, "
             f"folds {rep['folds']}.", "", "## Per frame", "",
             "| fold | quantity | n | MAE | MAPE % | RMSE | bias | mean-predictor MAE | skill |",
             "|---|---|---|---|---|---|---|---|---|"]
    pf = rep["per_frame"]
    for fold, block in [*pf["per_fold"].items(), ("pooled", pf["pooled"])]:
        for q in qs:
            m = block[q]
            lines.append(f"| {fold} | {q} ({units[q]}) | {m['n']} | {_f(m['mae'])} | {_f(m['mape_pct'], 2)} | "
                         f"{_f(m['rmse'])} | {_f(m['bias'])} | {_f(m['baseline_mae'])} | {_f(m['skill'], 2)} |")
    pr = rep["per_recording"]
    lines += ["", f"## Per recording ({pr['aggregate']}, what the app shows)", "",
              "| quantity | recordings | MAE | MAPE % | bias | mean-predictor MAE | skill | frame-to-frame SD (mean / max) |",
              "|---|---|---|---|---|---|---|---|"]
    for q in qs:
        m = pr[q]
        sd = m["frame_sd"]
        lines.append(f"| {q} ({units[q]}) | {m['n']} | {_f(m['mae'])} | {_f(m['mape_pct'], 2)} | {_f(m['bias'])} | "
                     f"{_f(m['baseline_mae'])} | {_f(m['skill'], 2)} | "
                     f"{(_f(sd['mean']) + ' / ' + _f(sd['max'])) if sd else '- (no videos)'} |")
    lines += ["", "## Bland-Altman (per frame)", "", "| quantity | n | bias | SD | 95% limits of agreement |", "|---|---|---|---|---|"]
    for q in qs:
        b = rep["bland_altman"][q]
        lines.append(f"| {q} ({units[q]}) | {b['n']} | {_f(b['bias'])} | {_f(b['sd'])} | {_f(b['loa_low'])} to {_f(b['loa_high'])} |")
    lines += ["", "## Error by reference bin (per frame)", ""]
    for q in qs:
        lines += [f"| {q} bin ({units[q]}) | infants | frames | MAE | bias | mean-predictor MAE |", "|---|---|---|---|---|---|"]
        for b in rep["error_by_bin"][q]:
            lines.append(f"| {_f(b['lo'], 2)}-{_f(b['hi'], 2)} | {b['n_infants']} | {b['n']} | {_f(b.get('mae'))} | "
                         f"{_f(b.get('bias'))} | {_f(b.get('baseline_mae'))} |")
        lines.append("")
    lines += ["## Hard-case slices (data engine tags, per frame)", "",
              "| tag | frames | recordings | " + " | ".join(f"{q} MAE | {q} skill" for q in qs) + " |",
              "|---|---|---|" + "---|---|" * len(qs)]
    for tag, s in rep["by_tag"].items():
        lines.append(f"| {tag} | {s['n_frames']} | {s['n_recordings']} | "
                     + " | ".join(f"{_f(s[q]['mae'])} | {_f(s[q].get('skill'), 2)}" for q in qs) + " |")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in rep["plots"]]
    lines += ["", "## Notes", ""] + [f"- {v}" for v in rep["notes"].values()]
    return "\n".join(lines) + "\n"


def write_report(run_dirs, out_dir: str | Path, log=print) -> dict:
    """Compute, then write report.json, report.md and the plots into out_dir; returns the dict."""
    p, runs = load_runs(run_dirs)
    rep = compute_report(p, runs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    qs = rep["quantities"]
    plots = []
    for q in qs:
        plot_bland_altman(p, q, rep["bland_altman"][q], out_dir / f"bland_altman_{q}.png")
        plots.append(f"bland_altman_{q}.png")
    plot_pred_vs_ref(p, qs, out_dir / "pred_vs_ref.png")
    plot_error_by_bin(rep["error_by_bin"], out_dir / "error_by_bin.png")
    plot_temporal_stability(rep["recordings"], qs, out_dir / "temporal_stability.png")
    rep["plots"] = plots + ["pred_vs_ref.png", "error_by_bin.png", "temporal_stability.png"]
    _write_text(out_dir / "report.json", json.dumps(_jsonable(rep), indent=2, allow_nan=False) + "\n")
    _write_text(out_dir / "report.md", to_markdown(rep))
    pooled = rep["per_frame"]["pooled"]
    log(f"report: {out_dir / 'report.md'}  " + ", ".join(
        f"{q} MAE {pooled[q]['mae']:.3f} {rep['units'][q]} (skill {pooled[q]['skill']:.2f})" for q in qs))
    return rep


def _jsonable(obj):
    """NaN is not JSON: write null."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
