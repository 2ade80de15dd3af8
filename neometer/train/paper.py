"""`python benchmarks.py paper --data DIR`: the paper's experiments on a dataset, each table
printed beside the paper's numbers.

  Table 1  height MAE / MAPE of four backbones (MobileNetV2, VGG16, GoogLeNet, AlexNet)
  Table 2  the three ways to get weight, height from a MobileNetV2:
           (i) height net + W = alpha*H + beta, (ii) two one-task nets, (iii) one multi-task net
  Ablation background removed vs kept, for the three strategies

The MobileNetV2 height+regression run is both Table 1's MobileNet row and Table 2's row (i),
and its height net is row (ii)'s height net (the paper's Table 2 shows the same height MAE for
both rows, so it did the same). Every run is a normal run folder with its own report.

The default preset is sized to finish on a laptop CPU (64 px, 2 epochs, 20 infants, 3 frames
per recording, random init); `--preset full` is the paper's setting for a GPU (224 px)."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from neometer.errors import NeometerError

PAPER_TABLE1 = {  # height: MAE cm, MAPE %, parameters (M) as the paper counts them
    "vgg16": (1.008, 2.128, 14.74), "googlenet": (1.021, 2.418, 5.60),
    "alexnet": (1.063, 2.260, 2.48), "mobilenet_v2": (1.068, 2.440, 2.23)}
PAPER_TABLE2 = {  # height MAE, height MAPE, weight MAE, weight MAPE (None: illegible in our copy)
    "mobilenet+regression": (1.041, 2.086, None, 7.518),
    "two one-task nets": (1.041, 2.086, 0.252, 8.883),
    "multi-task": (1.086, 2.176, 0.233, 7.261)}
# Sec. 3.2: how much background removal reduced the error ("MSE", as the paper words it)
PAPER_BACKGROUND = {"mobilenet+regression": (1.1, 0.020), "two one-task nets": (1.1, 0.001), "multi-task": (2.3, 0.120)}

PRESETS = {
    "quick": dict(img=64, epochs=2, max_frames=3, fps=1.0, limit_infants=20, batch_size=16, width_mult=1.0),
    "full": dict(img=224, epochs=15, max_frames=None, fps=2.0, limit_infants=None, batch_size=64, width_mult=1.0),
}
TORCHVISION_FILES = {"mobilenet_v2": "mobilenet_v2-", "vgg16": "vgg16-", "googlenet": "googlenet-", "alexnet": "alexnet-"}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset folder (e.g. `neometer synth --preset bench --out DIR`)")
    p.add_argument("--out", default=None, help="folder for every run and the tables (default runs/paper-<time>)")
    p.add_argument("--preset", default="auto", choices=("auto", "quick", "full"),
                   help="quick: sized for a CPU; full: the paper's 224 px for a GPU; auto: full on CUDA (default)")
    for flag, kind in (("--epochs", int), ("--img", int), ("--max-frames", int), ("--fps", float),
                       ("--limit-infants", int), ("--batch-size", int), ("--width-mult", float), ("--workers", int)):
        p.add_argument(flag, type=kind, default=None, help="overrides the preset")
    p.add_argument("--folds", type=int, default=5, help="(default %(default)s, as the paper)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--weights-dir", default=None,
                   help="folder of local torchvision ImageNet files (mobilenet_v2-*.pth, vgg16-*.pth, ...); "
                        "default random init (nothing is downloaded)")
    p.add_argument("--backbones", default="mobilenet_v2,vgg16,googlenet,alexnet", help="Table 1 backbones")
    p.add_argument("--no-ablation", action="store_true", help="skip the background keep runs")
    p.add_argument("--segmenter", default=None,
                   help="a segmenter checkpoint at the runs' --img: adds the deployable-mask ablation (each fold's "
                        "multi-task model on its held-out frames with ground-truth masks, segmenter masks, none)")
    p.add_argument("--resume", action="store_true", help="skip runs (and folds) already finished in --out")
    p.add_argument("--quiet", action="store_true")


def _weights_for(backbone: str, weights_dir: str | None) -> str | None:
    if not weights_dir:
        return None
    found = sorted(Path(weights_dir).glob(TORCHVISION_FILES[backbone] + "*.pth"))
    if not found:
        raise NeometerError(f"--weights-dir {weights_dir}: no {TORCHVISION_FILES[backbone]}*.pth for {backbone}; "
                            f"copy torchvision's ImageNet file there or drop --weights-dir")
    return str(found[0])


def plan(args) -> list[tuple[str, dict]]:
    """(run name, TrainConfig overrides) of every run, in order."""
    from neometer.models.regressor import BACKBONES

    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    unknown = [b for b in backbones if b not in BACKBONES]
    if unknown:
        raise NeometerError(f"--backbones: unknown {', '.join(unknown)}; choose from {', '.join(BACKBONES)}")
    runs = [("mobilenet_v2-height+regression", dict(backbone="mobilenet_v2", task="height+regression"))]
    runs += [(f"{b}-height", dict(backbone=b, task="height")) for b in backbones if b != "mobilenet_v2"]
    runs += [("mobilenet_v2-weight", dict(backbone="mobilenet_v2", task="weight")),
             ("mobilenet_v2-multitask", dict(backbone="mobilenet_v2", task="multitask"))]
    if not args.no_ablation:
        runs += [(f"{name}-keep", dict(kw, background="keep")) for name, kw in list(runs)
                 if kw["backbone"] == "mobilenet_v2"]
    return runs


def base_config(args):
    import torch

    from neometer.train.crossval import TrainConfig

    preset = args.preset if args.preset != "auto" else ("full" if torch.cuda.is_available() and args.device != "cpu" else "quick")
    values = dict(PRESETS[preset])
    for key in values:
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    cfg = TrainConfig(folds=args.folds, seed=args.seed, device=args.device, progress=not args.quiet,
                      workers=args.workers, **values)
    return cfg, preset


def combine_two_nets(height_run: Path, weight_run: Path, out: Path) -> Path:
    """Row (ii): height from the height net, weight from the one-task weight net, frame by frame."""
    from neometer.train.crossval import read_csv, write_csv_atomic, write_json_atomic

    weights = {(r["media"], r["frame_index"]): r for r in read_csv(weight_run / "predictions.csv")}
    rows = []
    for r in read_csv(height_run / "predictions.csv"):
        w = weights.get((r["media"], r["frame_index"]))
        if w is None:
            raise NeometerError(f"{weight_run}: frame {r['frame_index']} of {r['media']} is missing; both nets must "
                                f"use the same folds (same --seed, --folds and data)")
        rows.append(dict(r, weight_pred=w["weight_pred"]))
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((height_run / "config.json").read_text())
    config.update(task="height+weight (two one-task nets)", combined_from=[str(height_run), str(weight_run)])
    write_json_atomic(out / "config.json", config)
    write_csv_atomic(out / "predictions.csv", rows)
    return out


def _pooled(run: Path) -> dict:
    rep = json.loads((run / "report" / "report.json").read_text())
    return rep["per_frame"]["pooled"]


def _param_millions(backbone: str, width_mult: float) -> float:
    import warnings

    from neometer.models.regressor import build_regressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = build_regressor(backbone, 1, width_mult if backbone == "mobilenet_v2" else 1.0)
    return sum(p.numel() for p in m.parameters()) / 1e6


def _f(v, d=3) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def tables(out: Path, names: dict, cfg) -> tuple[str, dict]:
    """The three tables as Markdown (ours beside the paper's) and as a dict."""
    data = {"table1": {}, "table2": {}, "background": {}}
    lines = ["## Table 1: height, four backbones (per-frame, pooled over folds)", "",
             "| backbone | MAE cm | paper | MAPE % | paper | skill | params M (ours, full net) | paper |", "|---|---|---|---|---|---|---|---|"]
    for b, (p_mae, p_mape, p_par) in PAPER_TABLE1.items():
        run = names.get(("table1", b))
        if run is None:
            continue
        h = _pooled(run)["height"]
        params = _param_millions(b, cfg.width_mult)
        data["table1"][b] = {"ours": h, "paper": {"mae": p_mae, "mape_pct": p_mape, "params_m": p_par}, "params_m": params}
        lines.append(f"| {b} | {_f(h['mae'])} | {p_mae} | {_f(h['mape_pct'], 2)} | {p_mape} | {_f(h['skill'], 2)} | "
                     f"{params:.2f} | {p_par} |")
    lines += ["", "## Table 2: three ways to get weight (MobileNetV2)", "",
              "| model | height MAE | paper | height MAPE % | paper | weight MAE | paper | weight MAPE % | paper | "
              "height skill | weight skill |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row, paper in PAPER_TABLE2.items():
        run = names.get(("table2", row))
        if run is None:
            continue
        m = _pooled(run)
        data["table2"][row] = {"ours": m, "paper": dict(zip(("height_mae", "height_mape_pct", "weight_mae", "weight_mape_pct"), paper))}
        lines.append(f"| {row} | {_f(m['height']['mae'])} | {_f(paper[0])} | {_f(m['height']['mape_pct'], 2)} | {_f(paper[1])} | "
                     f"{_f(m['weight']['mae'])} | {_f(paper[2])} | {_f(m['weight']['mape_pct'], 2)} | {_f(paper[3])} | "
                     f"{_f(m['height']['skill'], 2)} | {_f(m['weight']['skill'], 2)} |")
    if any(k[0] == "keep" for k in names):
        lines += ["", "## Background: removed vs kept (MAE; the paper reports its reduction by removal)", "",
                  "| model | height MAE removed | kept | weight MAE removed | kept | paper: removal reduced height / weight by |",
                  "|---|---|---|---|---|---|"]
        for row, paper in PAPER_BACKGROUND.items():
            rem, keep = names.get(("table2", row)), names.get(("keep", row))
            if rem is None or keep is None:
                continue
            a, b = _pooled(rem), _pooled(keep)
            data["background"][row] = {"removed": a, "kept": b, "paper_reduction": {"height": paper[0], "weight": paper[1]}}
            lines.append(f"| {row} | {_f(a['height']['mae'])} | {_f(b['height']['mae'])} | {_f(a['weight']['mae'])} | "
                         f"{_f(b['weight']['mae'])} | {paper[0]} cm / {paper[1]} kg |")
    lines += ["", "Ours: MAPE relative to the reference; skill = 1 - MAE / MAE of predicting the training-fold mean. "
              "The paper's parameter counts appear to exclude the classifier layers (VGG16 in full has 134 M).",
              "The paper's row (i) weight MAE is not legible in our copy of Table 2 (its text says < 0.28 kg)."]
    return "\n".join(lines) + "\n", data


def check_segmenter(path: str | Path, img: int) -> None:
    """Before hours of training: is --segmenter a segmenter at the runs' input size?"""
    from neometer.models.checkpoint import config_path, resolve_checkpoint

    config = json.loads(config_path(resolve_checkpoint(path)).read_text())
    if config.get("role") != "segmenter":
        raise NeometerError(f"--segmenter {path}: role is {config.get('role')!r}; pass a segmenter checkpoint")
    if config.get("img_size") != img:
        raise NeometerError(f"--segmenter {path}: takes {config.get('img_size')} px but the runs use {img} px; "
                            f"pass --img {config.get('img_size')} or a segmenter trained at {img} px")


def segmenter_ablation(table, run_dir: Path, segmenter: str | Path, img: int) -> list[dict]:
    """The paper's background ablation with a mask a phone can compute (issue 9): each fold's
    model of `run_dir` on that fold's held-out frames with ground-truth masks, the segmenter's
    masks, and no removal; MAEs are pooled over folds, weighted by frames."""
    import numpy as np

    from neometer.data.preprocess import PreprocessSpec
    from neometer.evaluate.segmentation import mask_ablation, predict_batched
    from neometer.measure.pipeline import TorchModelRunner
    from neometer.models.checkpoint import load_checkpoint
    from neometer.train.segment import load_regressor_runner

    check_segmenter(segmenter, img)
    seg_model, seg_config = load_checkpoint(segmenter)
    spec, seg = PreprocessSpec(target_size=img), TorchModelRunner(seg_model, seg_config)
    infant = np.asarray(table.infant_id)
    arms: dict[str, list[dict]] = {}
    for fold in json.loads((run_dir / "splits.json").read_text())["folds"]:
        weights = run_dir / f"fold{fold['fold']}" / "model.safetensors"
        rows = np.flatnonzero(np.isin(infant, fold["test_infants"]))
        if not weights.is_file() or not len(rows):
            continue
        images, masks = np.asarray(table.images[rows]), np.asarray(table.masks[rows])
        probs = predict_batched(seg, images, spec).reshape(len(rows), img, img)
        labels = np.stack([table.height_cm[rows], table.weight_kg[rows]], 1)
        regressor, _ = load_regressor_runner(weights)
        for row in mask_ablation(images, masks, probs, labels, np.asarray(table.recording)[rows], spec, regressor):
            arms.setdefault(row["input"], []).append(row)
    pooled = []
    for name, rows in arms.items():
        n = sum(r["frames"] for r in rows)
        pooled.append({"input": name, "frames": n, **{k: sum(r[k] * r["frames"] for r in rows) / n
                                                      for k in ("height_cm_mae_frame", "weight_kg_mae_frame")}})
    return pooled


def ablation_markdown(rows: list[dict]) -> str:
    lines = ["", "## Background removal with a deployable mask (multi-task MobileNetV2, held-out frames)", "",
             "| input | frames | height MAE cm | weight MAE kg |", "|---|---|---|---|"]
    lines += [f"| {r['input']} | {r['frames']} | {r['height_cm_mae_frame']:.3f} | {r['weight_kg_mae_frame']:.3f} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def plot_tables(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    t1 = data["table1"]
    xs = list(t1)
    axes[0].bar([i - 0.2 for i in range(len(xs))], [t1[b]["ours"]["mae"] for b in xs], 0.4, label="ours")
    axes[0].bar([i + 0.2 for i in range(len(xs))], [t1[b]["paper"]["mae"] for b in xs], 0.4, label="paper")
    axes[0].plot(range(len(xs)), [t1[b]["ours"]["baseline_mae"] for b in xs], "ko--", label="mean predictor (ours)")
    axes[0].set_xticks(range(len(xs)), xs)
    axes[0].set_ylabel("height MAE (cm)")
    axes[0].set_title("Table 1")
    axes[0].legend(fontsize=8)
    t2 = data["table2"]
    rows = list(t2)
    axes[1].bar([i - 0.2 for i in range(len(rows))], [t2[r]["ours"]["weight"]["mae"] for r in rows], 0.4, label="ours")
    axes[1].bar([i + 0.2 for i in range(len(rows))], [t2[r]["paper"]["weight_mae"] or 0 for r in rows], 0.4, label="paper")
    axes[1].plot(range(len(rows)), [t2[r]["ours"]["weight"]["baseline_mae"] for r in rows], "ko--", label="mean predictor (ours)")
    axes[1].set_xticks(range(len(rows)), rows, fontsize=8)
    axes[1].set_ylabel("weight MAE (kg)")
    axes[1].set_title("Table 2")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def run(args) -> int:
    from neometer.evaluate.report import write_report
    from neometer.train.cli import dataset_info, load_table
    from neometer.train.crossval import run_crossval, write_json_atomic

    cfg, preset = base_config(args)
    runs = plan(args)
    for _, kw in runs:
        problems = replace(cfg, **kw).problems()
        if problems:
            raise NeometerError("bad benchmark arguments", problems=problems)
    if args.segmenter:
        check_segmenter(args.segmenter, cfg.img)
    out = Path(args.out) if args.out else Path("runs") / f"paper-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise NeometerError(f"{out} exists and is not empty; pass --resume to finish it, or another --out")
    print(f"paper benchmark: preset {preset} ({cfg.img} px, {cfg.epochs} epochs, {cfg.folds} folds), "
          f"{len(runs)} runs into {out}")
    table = load_table(args.data, cfg)
    info = dataset_info(table, args.data)
    t0 = time.perf_counter()
    done: dict[str, Path] = {}
    for i, (name, kw) in enumerate(runs):
        run_cfg = replace(cfg, weights=_weights_for(kw["backbone"], args.weights_dir), **kw)
        run_dir = out / name
        if args.resume and (run_dir / "report" / "report.json").is_file():
            print(f"[{i + 1}/{len(runs)}] {name}: done, skipped")
        else:
            print(f"[{i + 1}/{len(runs)}] {name}")
            run_crossval(table, run_cfg, run_dir, info, resume=args.resume)
        done[name] = run_dir
    names = {("table1", "mobilenet_v2"): done["mobilenet_v2-height+regression"],
             ("table2", "mobilenet+regression"): done["mobilenet_v2-height+regression"],
             ("table2", "multi-task"): done["mobilenet_v2-multitask"]}
    names.update({("table1", n.split("-")[0]): p for n, p in done.items() if n.endswith("-height")})
    two = combine_two_nets(done["mobilenet_v2-height+regression"], done["mobilenet_v2-weight"], out / "two_one_task_nets")
    write_report([two], two / "report")
    names[("table2", "two one-task nets")] = two
    if not args.no_ablation:
        keep_two = combine_two_nets(done["mobilenet_v2-height+regression-keep"], done["mobilenet_v2-weight-keep"],
                                    out / "two_one_task_nets-keep")
        write_report([keep_two], keep_two / "report")
        names.update({("keep", "mobilenet+regression"): done["mobilenet_v2-height+regression-keep"],
                      ("keep", "two one-task nets"): keep_two, ("keep", "multi-task"): done["mobilenet_v2-multitask-keep"]})
    text, data = tables(out, names, cfg)
    if args.segmenter:
        data["segmenter_ablation"] = segmenter_ablation(table, done["mobilenet_v2-multitask"], args.segmenter, cfg.img)
        text += ablation_markdown(data["segmenter_ablation"])
    header = (f"# The paper's experiments on {info['path']}\n\npreset {preset}: {cfg.img} px, {cfg.epochs} epochs, "
              f"{cfg.folds}-fold CV grouped by infant, {info['infants']} infants"
              f"{f' (first {cfg.limit_infants} used)' if cfg.limit_infants else ''}, "
              f"{'ImageNet init' if args.weights_dir else 'random init'}, {time.perf_counter() - t0:.0f} s.\n\n"
              f"![tables](paper_tables.png)\n\n")
    (out / "paper_tables.md").write_text(header + text)
    write_json_atomic(out / "paper_tables.json", {"preset": preset, "config": {k: v for k, v in vars(cfg).items()}, **data})
    plot_tables(data, out / "paper_tables.png")
    print()
    print(text)
    print(f"tables: {out / 'paper_tables.md'}")
    return 0
