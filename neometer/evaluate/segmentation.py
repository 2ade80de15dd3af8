"""Segmenter evaluation: IoU and boundary F-score (overall and on the hard slices: clutter near
the body, partial body), the paper's background-removal ablation redone with a deployable mask
(ground-truth masks vs the segmenter's masks vs no removal, height and weight MAE), and the
report files: report.json, report.md, overlays.png (a grid of predictions) and slices.png.

Masks are compared at the letterboxed resolution the regressor sees. A pixel is body when its
probability (or coverage) is >= 0.5: the threshold `apply_mask` uses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neometer.evaluate.report import pyplot, save_figure

BOUNDARY_TOLERANCE_PX = 2
HARD_SLICES = {"clutter": ("clutter",), "partial_body": ("partial",)}  # slice -> tag substrings


# --- per-frame metrics ------------------------------------------------------------------

def to_bool(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Probabilities / coverage in [0, 1], or uint8 0..255 masks -> bool body pixels."""
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        return m
    if m.dtype == np.uint8:
        # the frame cache stores round_half_up(coverage * 255): coverage >= 0.5 <=> byte >= 128
        return m >= int(np.floor(threshold * 255.0 + 0.5))
    return m >= threshold


def iou(pred: np.ndarray, ref: np.ndarray) -> float:
    """Intersection over union of two bool masks; two empty masks agree perfectly (1.0)."""
    pred, ref = to_bool(pred), to_bool(ref)
    union = np.logical_or(pred, ref).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, ref).sum() / union)


def boundary_of(mask: np.ndarray) -> np.ndarray:
    """The body's one-pixel inner contour (mask minus its 3x3 erosion). The image edge is not a
    contour: a body cut by the frame has no boundary there (border replicated)."""
    import cv2

    m = to_bool(mask).astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (m & (1 - eroded)).astype(bool)


def _distance_to(boundary: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest pixel of `boundary`."""
    import cv2

    if not boundary.any():
        return np.full(boundary.shape, np.inf, np.float32)
    return cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def boundary_f(pred: np.ndarray, ref: np.ndarray, tolerance_px: float = BOUNDARY_TOLERANCE_PX) -> float:
    """Boundary F-score (Perazzi et al., DAVIS): contour precision and recall, a contour pixel
    counting as matched within `tolerance_px` of the other contour."""
    bp, br = boundary_of(pred), boundary_of(ref)
    if not bp.any() and not br.any():
        return 1.0
    if not bp.any() or not br.any():
        return 0.0
    precision = float((_distance_to(br)[bp] <= tolerance_px).mean())
    recall = float((_distance_to(bp)[br] <= tolerance_px).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def frame_scores(probs: np.ndarray, refs: np.ndarray, tolerance_px: float = BOUNDARY_TOLERANCE_PX) -> dict[str, np.ndarray]:
    """Per-frame IoU and boundary F of N predicted masks against N reference masks."""
    ious = np.array([iou(p, r) for p, r in zip(probs, refs)], np.float64)
    bfs = np.array([boundary_f(p, r, tolerance_px) for p, r in zip(probs, refs)], np.float64)
    return {"iou": ious, "boundary_f": bfs}


# --- slices ----------------------------------------------------------------------------------

def slice_members(tags: list[tuple[str, ...]]) -> dict[str, np.ndarray]:
    """Frame index sets: "all", each hard slice (by tag substring), "easy" (no hard tag), and
    every tag present."""
    n = len(tags)
    out = {"all": np.arange(n)}
    hard_any = np.zeros(n, bool)
    for name, needles in HARD_SLICES.items():
        member = np.array([any(nd in t for t in ts for nd in needles) for ts in tags], bool)
        hard_any |= member
        out[name] = np.flatnonzero(member)
    out["easy"] = np.flatnonzero(~hard_any)
    for tag in sorted({t for ts in tags for t in ts}):
        out.setdefault(f"tag:{tag}", np.flatnonzero([tag in ts for ts in tags]))
    return out


def summarize_scores(scores: dict[str, np.ndarray], members: dict[str, np.ndarray]) -> dict:
    out = {}
    for name, idx in members.items():
        row = {"frames": int(len(idx))}
        for key, values in scores.items():
            v = values[idx]
            row[f"{key}_mean"] = float(v.mean()) if len(v) else None
            row[f"{key}_median"] = float(np.median(v)) if len(v) else None
        out[name] = row
    return out


# --- the background-removal ablation ------------------------------------------------------

def mae_rows(pred: np.ndarray, ref: np.ndarray, recording: np.ndarray) -> dict:
    """Height and weight MAE per frame and per recording (median of its frames, as the app shows)."""
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    out = {"frames": int(len(pred)), "recordings": int(len(np.unique(recording)))}
    for j, q in enumerate(("height_cm", "weight_kg")):
        out[f"{q}_mae_frame"] = float(np.mean(np.abs(pred[:, j] - ref[:, j])))
        per_rec = [abs(np.median(pred[recording == r, j]) - ref[recording == r, j][0]) for r in np.unique(recording)]
        out[f"{q}_mae_recording"] = float(np.mean(per_rec))
    return out


def remove_background_u8(images: np.ndarray, masks: np.ndarray, spec) -> np.ndarray:
    """apply_mask on a batch: (N,S,S,3) uint8 images, (N,S,S) probabilities or uint8 coverage."""
    keep = to_bool(masks, spec.mask_threshold)
    out = images.copy()
    out[~keep] = spec.pad_value
    return out


def predict_batched(runner, images_u8: np.ndarray, spec, batch_size: int = 64) -> np.ndarray:
    """Any runner with `.predict(x NCHW float32)` over letterboxed uint8 images, batch by batch."""
    from neometer.data.preprocess import normalize

    outs = [np.asarray(runner.predict(normalize(images_u8[i:i + batch_size], spec)), np.float32)
            for i in range(0, len(images_u8), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def mask_ablation(images: np.ndarray, gt_masks: np.ndarray, seg_probs: np.ndarray, labels: np.ndarray,
                  recording: np.ndarray, spec, regressor, regressor_no_removal=None) -> list[dict]:
    """The paper's ablation (Sec. 4, Fig. 7) with a deployable mask: the same frames measured
    with ground-truth masks, the segmenter's masks, and no removal. `regressor` was trained on
    background-removed images; `regressor_no_removal` (if given) on full images, which is the
    paper's "with background" arm; without it the no-removal row feeds full images to the
    removal-trained regressor (what skipping the segmenter on the phone would do)."""
    rows = []
    arms = [("ground-truth mask", remove_background_u8(images, gt_masks, spec), regressor, "regressor trained with removal"),
            ("segmenter mask", remove_background_u8(images, seg_probs, spec), regressor, "regressor trained with removal")]
    if regressor_no_removal is not None:
        arms.append(("no removal", images, regressor_no_removal, "regressor trained without removal"))
    arms.append(("no removal, removal-trained regressor", images, regressor, "regressor trained with removal"))
    for name, u8, model, note in arms:
        pred = predict_batched(model, u8, spec).reshape(len(u8), -1)[:, :2]
        rows.append({"input": name, "regressor": note, **mae_rows(pred, labels, recording)})
    return rows


# --- report files ------------------------------------------------------------------------------

def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def overlay(image: np.ndarray, prob: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """RGB uint8: predicted body tinted red, the reference contour drawn green."""
    out = image.astype(np.float32)
    pred = to_bool(prob)
    out[pred] = 0.55 * out[pred] + 0.45 * np.array([255, 40, 40], np.float32)
    contour = boundary_of(ref)
    out[contour] = (40, 255, 40)
    return out.astype(np.uint8)


def plot_overlays(images, probs, refs, scores: dict, tags, path: Path, n: int = 16, seed: int = 0) -> None:
    """The worst frames by IoU (half the grid) and a random sample (the other half)."""
    plt = pyplot()
    order = np.argsort(scores["iou"])
    worst = list(order[: n // 2])
    rest = [i for i in np.random.default_rng(seed).permutation(len(images)) if i not in worst][: n - len(worst)]
    chosen = worst + rest
    cols = 4
    rows = max(1, int(np.ceil(len(chosen) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen):
        ax.imshow(overlay(images[i], probs[i], refs[i]))
        label = "worst" if i in worst else "random"
        tag = ",".join(tags[i])[:24]
        ax.set_title(f"{label} IoU {scores['iou'][i]:.2f} BF {scores['boundary_f'][i]:.2f}\n{tag}", fontsize=8)
    fig.suptitle("red: segmenter mask (p>=0.5), green: ground-truth contour", fontsize=10)
    save_figure(fig, path, dpi=100)


def plot_slices(summary: dict, path: Path) -> None:
    plt = pyplot()
    names = [k for k, v in summary.items() if v["frames"]]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names)), 3.5))
    for k, (key, label) in enumerate((("iou_mean", "IoU"), ("boundary_f_mean", f"boundary F ({BOUNDARY_TOLERANCE_PX} px)"))):
        ax.bar(x + (k - 0.5) * 0.4, [summary[n][key] for n in names], width=0.4, label=label)
    ax.set_xticks(x, [f"{n}\n(n={summary[n]['frames']})" for n in names], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean per frame")
    ax.legend(fontsize=8)
    ax.set_title("segmenter on held-out infants, by slice")
    save_figure(fig, path, dpi=100)


def _f(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def to_markdown(rep: dict) -> str:
    lines = ["# Segmenter evaluation", "",
             f"Model: `{rep['model']['arch']}` width {rep['model']['width']}, {rep['model']['img_size']} px, "
             f"{rep['model']['parameters']:,} parameters"
             + (f", {rep['model']['size_bytes_fp16'] / 1e6:.2f} MB as fp16" if rep['model'].get('size_bytes_fp16') else "")
             + (f", host CPU latency {rep['model']['cpu_latency_ms']:.1f} ms (1 thread, batch 1)" if rep['model'].get('cpu_latency_ms') else "")
             + ".",
             f"Held-out: {rep['split']['test_infants']} infants, {rep['split']['test_frames']} frames "
             f"(fold {rep['split']['fold']} of {rep['split']['k']}, grouped by infant).", "",
             f"A pixel is body when p >= 0.5. Boundary F uses a {rep['boundary_tolerance_px']} px tolerance.", "",
             "| slice | frames | IoU mean | IoU median | boundary F mean | boundary F median |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in rep["slices"].items():
        lines.append(f"| {name} | {r['frames']} | {_f(r['iou_mean'])} | {_f(r['iou_median'])} | "
                     f"{_f(r['boundary_f_mean'])} | {_f(r['boundary_f_median'])} |")
    if rep.get("ablation"):
        lines += ["", "## Background removal: ground truth vs segmenter vs none", "",
                  "Same held-out frames (infants neither model saw when the regressor comes from the same split); the "
                  "paper's ablation (Sec. 4, Fig. 7) with a deployable mask. Recording = median of its frames.", "",
                  "| input | regressor | height MAE frame (cm) | height MAE recording (cm) | weight MAE frame (kg) | weight MAE recording (kg) |",
                  "|---|---|---:|---:|---:|---:|"]
        for r in rep["ablation"]:
            lines.append(f"| {r['input']} | {r['regressor']} | {_f(r['height_cm_mae_frame'], 2)} | {_f(r['height_cm_mae_recording'], 2)} | "
                         f"{_f(r['weight_kg_mae_frame'], 3)} | {_f(r['weight_kg_mae_recording'], 3)} |")
    if rep.get("multitask"):
        m = rep["multitask"]
        lines += ["", "## Experiment: multi-task (one backbone, mask + regression heads, one pass)", "",
                  "| model | parameters | host CPU ms | IoU mean | height MAE frame (cm) | weight MAE frame (kg) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in m["rows"]:
            lines.append(f"| {r['model']} | {r['parameters']:,} | {_f(r.get('cpu_latency_ms'), 1)} | {_f(r.get('iou_mean'))} | "
                         f"{_f(r.get('height_cm_mae_frame'), 2)} | {_f(r.get('weight_kg_mae_frame'), 3)} |")
        lines += ["", m.get("verdict", "")]
    lines += ["", "![overlays](overlays.png)", "", "![slices](slices.png)", ""]
    return "\n".join(lines)


def write_report(out_dir: str | Path, images, probs, refs, tags, meta: dict, ablation=None, multitask=None) -> dict:
    """report.json + report.md + overlays.png + slices.png under out_dir; returns the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = frame_scores(probs, refs)
    summary = summarize_scores(scores, slice_members(tags))
    rep = {**meta, "boundary_tolerance_px": BOUNDARY_TOLERANCE_PX, "threshold": 0.5, "slices": summary,
           "ablation": ablation, "multitask": multitask}
    _write_text(out_dir / "report.json", json.dumps(rep, indent=2) + "\n")
    _write_text(out_dir / "report.md", to_markdown(rep))
    if len(images):
        plot_overlays(images, probs, refs, scores, tags, out_dir / "overlays.png")
        plot_slices(summary, out_dir / "slices.png")
    return rep


def load_report(run_dir: str | Path) -> dict:
    """A train-seg run's report.json (for `benchmarks.py paper`)."""
    return json.loads((Path(run_dir) / "report" / "report.json").read_text())
