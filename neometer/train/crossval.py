"""Grouped k-fold cross-validation of one task on one backbone: splits by infant, trains one
model per fold, folds the target de-standardisation into its last layer, saves it, predicts
the held-out infants, and writes the run directory:

  RUN/config.json            the run's settings (the checkpoint JSON keys, minus per-fold ones)
  RUN/splits.json            which infants each fold trains and tests on
  RUN/fold{k}/state.pt       model + optimizer + epoch + target norm, every epoch (--resume)
  RUN/fold{k}/model.safetensors (+ .json)   the fold's final model, outputs in cm / kg
  RUN/fold{k}/predictions.csv               its test frames
  RUN/predictions.csv        every finished fold's test frames (what `neometer eval` reads)
  RUN/model.safetensors (+ .json)           the shipped model: the single fold run, or fold 0
  RUN/report/                the evaluation report
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from neometer.errors import NeometerError
from neometer.train.strategies import TARGET_NAMES, TASKS, Strategy, fit_weight_from_height, per_infant_labels, strategy_for, to_height_weight

PREDICTION_COLUMNS = ("fold", "infant_id", "recording", "media", "frame_index", "tags", "height_ref", "weight_ref",
                      "height_pred", "weight_pred", "train_mean_height", "train_mean_weight")
# settings that must match when --resume continues a run (fold may differ: folds fan out)
RESUME_KEYS = ("task", "backbone", "folds", "background", "img", "width_mult", "seed", "fps", "max_frames",
               "limit_infants", "epochs", "lr", "weight_decay", "batch_size")
SAVE_DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class TrainConfig:
    task: str = "multitask"
    backbone: str = "mobilenet_v2"
    folds: int = 5
    fold: int | None = None  # run only this fold (fan folds out as separate jobs)
    background: str = "remove"  # "remove" (the paper) or "keep" (the ablation)
    device: str = "auto"
    weights: str | None = None  # a local torchvision ImageNet .pth
    epochs: int = 10
    img: int = 224
    width_mult: float = 1.0
    fps: float = 2.0
    max_frames: int | None = None
    batch_size: int = 64
    workers: int | None = None  # None: 0 on CPU, most cores on a GPU machine
    seed: int = 0
    lr: float = 1e-4
    weight_decay: float = 1e-3
    limit_infants: int | None = None
    amp: bool | None = None  # None: on for CUDA (bf16), off on CPU
    save_dtype: str = "float32"  # of the shipped RUN/model.safetensors
    augment: bool = True  # random flips (they keep length and weight)
    schedule: str = "constant"
    compile: bool = False
    progress: bool = True

    def problems(self) -> list[str]:
        from neometer.models.regressor import BACKBONES

        p = []
        if self.task not in TASKS:
            p.append(f"--task {self.task}: unknown; choose one of {', '.join(TASKS)}")
        if self.backbone not in BACKBONES:
            p.append(f"--backbone {self.backbone}: unknown; choose one of {', '.join(BACKBONES)}")
        if self.folds < 2:
            p.append(f"--folds {self.folds}: cross-validation needs at least 2 folds")
        if self.fold is not None and not 0 <= self.fold < self.folds:
            p.append(f"--fold {self.fold}: must be between 0 and {self.folds - 1} for --folds {self.folds}")
        if self.background not in ("remove", "keep"):
            p.append(f"--background {self.background}: choose remove or keep")
        if self.epochs < 1:
            p.append(f"--epochs {self.epochs}: must be at least 1")
        if self.img < 32:
            p.append(f"--img {self.img}: too small for these backbones; use at least 32 (the paper: 224)")
        if self.batch_size < 2:
            p.append(f"--batch-size {self.batch_size}: BatchNorm needs at least 2")
        if self.save_dtype not in SAVE_DTYPES:
            p.append(f"--save-dtype {self.save_dtype}: choose one of {', '.join(SAVE_DTYPES)}")
        if self.limit_infants is not None and self.limit_infants < self.folds:
            p.append(f"--limit-infants {self.limit_infants}: fewer infants than --folds {self.folds}")
        if self.fps <= 0:
            p.append(f"--fps {self.fps}: must be positive")
        if self.schedule not in ("constant", "cosine"):
            p.append(f"--schedule {self.schedule}: choose constant or cosine")
        if self.weights and not Path(self.weights).is_file():
            p.append(f"--weights {self.weights}: no such file; pass a torchvision ImageNet .pth saved locally "
                     f"(this tool never downloads)")
        return p


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NeometerError(f"--device {name}: no CUDA GPU is visible to PyTorch; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise NeometerError(f"--device {name}: choose cuda or cpu")
    return torch.device(name)


# --- infants and folds ------------------------------------------------------------------------

def select_frames(table, limit_infants: int | None) -> np.ndarray:
    """Rows of the table to use: all, or every frame of the first N infants (sorted ids)."""
    ids = np.asarray(table.infant_id).astype(str)
    rows = np.arange(len(ids))
    if limit_infants is None:
        return rows
    keep = set(sorted(set(ids))[:limit_infants])
    return rows[np.isin(ids, list(keep))]


def make_folds(table, rows: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) per fold, grouped by infant; raises if an infant would leak."""
    from neometer.data.splits import grouped_kfold

    ids = np.asarray(table.infant_id).astype(str)[rows]
    n_infants = len(set(ids))
    if k > n_infants:
        raise NeometerError(f"--folds {k} is larger than the number of infants ({n_infants}); "
                            f"each fold must test at least one infant: use --folds {n_infants} or fewer, or add infants")
    folds = []
    heights = np.asarray(table.height_cm, np.float64)[rows]  # folds balanced in birth length
    for train_pos, test_pos in grouped_kfold(ids, k, seed, stratify=heights):
        train, test = rows[np.asarray(train_pos)], rows[np.asarray(test_pos)]
        leaked = set(ids[np.asarray(train_pos)]) & set(ids[np.asarray(test_pos)])
        if leaked:  # the splitter is someone else's code: never trust a leak silently
            raise RuntimeError(f"infants {sorted(leaked)[:5]} are in both train and test of a fold")
        folds.append((train, test))
    return folds


def splits_record(table, folds, k: int, seed: int) -> dict:
    ids = np.asarray(table.infant_id).astype(str)
    return {"k": k, "seed": seed, "grouped_by": "infant_id", "stratified_by": "height_cm",
            "folds": [{"fold": i, "train_infants": sorted(set(ids[tr])), "test_infants": sorted(set(ids[te])),
                       "train_frames": int(len(tr)), "test_frames": int(len(te))} for i, (tr, te) in enumerate(folds)]}


# --- one fold -------------------------------------------------------------------------------

def _targets(table, rows) -> np.ndarray:
    return np.stack([np.asarray(table.height_cm)[rows], np.asarray(table.weight_kg)[rows]], axis=1).astype(np.float64)


def _tags(table, row: int) -> str:
    tags = table.tags_of(row) if hasattr(table, "tags_of") else ()
    return tags if isinstance(tags, str) else ";".join(sorted(tags))


def _media(table, row: int) -> str:
    """The recording's media path, relative to the dataset folder (stable across machines)."""
    rec = table.recordings[int(np.asarray(table.recording)[row])]
    media = Path(str(getattr(rec, "media", rec)))
    root = getattr(table, "dataset_dir", None)
    if root is not None and media.is_absolute() and media.is_relative_to(root):
        return media.relative_to(root).as_posix()
    return media.as_posix()


def prediction_rows(table, fold: int, test_rows, pred_hw: np.ndarray, train_mean: tuple[float, float]) -> list[dict]:
    ids = np.asarray(table.infant_id).astype(str)
    rec = np.asarray(table.recording)
    frame = np.asarray(table.frame_index)
    ref = _targets(table, test_rows)
    out = []
    for j, r in enumerate(test_rows):
        out.append({"fold": fold, "infant_id": ids[r], "recording": int(rec[r]), "media": _media(table, r),
                    "frame_index": int(frame[r]), "tags": _tags(table, r),
                    "height_ref": ref[j, 0], "weight_ref": ref[j, 1],
                    "height_pred": pred_hw[j, 0], "weight_pred": pred_hw[j, 1],
                    "train_mean_height": train_mean[0], "train_mean_weight": train_mean[1]})
    return out


def write_csv_atomic(path: Path, rows: list[dict], columns=PREDICTION_COLUMNS) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) and np.isfinite(v) else ("" if isinstance(v, float) else v))
                        for k, v in row.items()})
    tmp.replace(path)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def base_checkpoint_config(cfg: TrainConfig, strategy: Strategy, spec, dataset_info: dict) -> dict:
    return {"format": "neometer-checkpoint", "role": "regressor", "backbone": cfg.backbone, "width_mult": cfg.width_mult,
            "task": cfg.task, "outputs": strategy.outputs, "img_size": cfg.img, "preprocessing": spec.to_dict(),
            "dataset": dataset_info, "seed": cfg.seed,
            "training": {"optimizer": "Adam", "loss": "sum of per-output MSE on standardised targets",
                         "imagenet_weights": cfg.weights, **{k: v for k, v in asdict(cfg).items()
                                                           if k not in ("weights", "progress", "device")}}}


def train_fold(table, cfg: TrainConfig, strategy: Strategy, spec, fold: int, train_rows, test_rows, run_dir: Path,
               device, base_config: dict, split: dict, resume: bool, log=print, env=None) -> list[dict]:
    """Train, fold, save and predict one fold; returns its prediction rows. Under torchrun
    (`env` active) every rank trains its slice of each global batch and predicts its slice of
    the test frames; rank 0 alone writes."""
    import torch

    from neometer.train import distributed

    from neometer.evaluate.metrics import summarize
    from neometer.models.checkpoint import WeightFromHeight, save_checkpoint
    from neometer.models.regressor import build_regressor, fold_destandardization
    from neometer.train.loop import FitOptions, TargetNorm, fit, make_loader, predict

    fold_dir = run_dir / f"fold{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed * 1000 + fold)
    cuda = device.type == "cuda"
    amp = cuda if cfg.amp is None else cfg.amp
    env = env or distributed.DistEnv()
    workers = cfg.workers if cfg.workers is not None else \
        (min(12, max(((os.cpu_count() or 2) - 2) // env.local_world, 1)) if cuda else 0)  # cores shared by the node's ranks

    train_targets = _targets(table, train_rows)
    norm = TargetNorm.fit(train_targets[:, list(strategy.columns)])
    ids = np.asarray(table.infant_id).astype(str)
    h_inf, w_inf = per_infant_labels(ids[train_rows], train_targets[:, 0], train_targets[:, 1])
    train_mean = (float(h_inf.mean()), float(w_inf.mean()))  # the mean predictor, one vote per infant

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_regressor(cfg.backbone, strategy.n_outputs, cfg.width_mult, cfg.weights)
    for w in caught:  # e.g. random initialisation: said once per fold, in the run's log
        log(f"warning: {w.message}")
    model = model.to(device, memory_format=torch.channels_last if cuda else torch.contiguous_format)
    shard = distributed.BatchShard(env.rank, env.world) if env.active else None
    trained = distributed.shard_model(model, device, shard) if shard else model  # DDP under torchrun
    if cfg.compile:
        # inductor draws dropout from its own generator unless told otherwise: with eager's, a
        # compiled run repeats an eager run and 1 and N processes still agree (docs/distributed.md)
        import torch._inductor.config

        torch._inductor.config.fallback_random = True
        trained = torch.compile(trained)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_loader = make_loader(table, train_rows, cfg.batch_size, True, workers, cuda, cfg.seed * 1000 + fold,
                               env.rank, env.world)
    test_loader = make_loader(table, test_rows, max(cfg.batch_size, 64), False, workers, cuda, 0, env.rank, env.world)
    remove = cfg.background == "remove"
    opts = FitOptions(epochs=cfg.epochs, columns=strategy.columns, norm=norm, spec=spec, remove_background=remove,
                      amp=amp, channels_last=cuda,
                      augment=cfg.augment, schedule=cfg.schedule, state_path=fold_dir / "state.pt", resume=resume,
                      progress=cfg.progress, desc=f"fold {fold}", shard=shard, dist_env=env if env.active else None)
    log(f"fold {fold}: {len(set(ids[train_rows]))} train infants ({len(train_rows)} frames), "
        f"{len(set(ids[test_rows]))} test infants ({len(test_rows)} frames), device {device}, "
        f"amp {'bf16' if amp else 'off'}, {workers} loader workers" +
        (f" per rank, {env.world} ranks (global batch {cfg.batch_size})" if env.active else ""))
    history = fit(trained, train_loader, test_loader, optimizer, device, opts, log=log)
    if shard:
        distributed.unshard_model(model)  # plain BatchNorm/Dropout again (same weights) for saving and export

    # cm and kg straight out of the last layer, for export and for every prediction below
    fold_destandardization(model.cpu(), cfg.backbone, norm.mean, norm.std)  # its mean/std tensors live on the CPU
    model = model.float().eval().to(device)
    config = dict(base_config, fold=fold, split=split,
                  target_normalization={"mean": list(norm.mean), "std": list(norm.std), "folded": True,
                                        "outputs": [TARGET_NAMES[c] for c in strategy.columns]})
    config["training"] = dict(config["training"], history=history, amp=amp, workers=workers, device=str(device))
    alpha_beta = None
    if strategy.weight_from_height:
        alpha_beta = fit_weight_from_height(h_inf, w_inf)
        log(f"fold {fold}: W = {alpha_beta[0]:.4f} * H {'-' if alpha_beta[1] < 0 else '+'} {abs(alpha_beta[1]):.4f}  (alpha, beta by least squares "
            f"on {len(h_inf)} training infants)")
        config["weight_from_height"] = {"alpha": alpha_beta[0], "beta": alpha_beta[1], "fitted_on": "training-fold infants"}
        model = WeightFromHeight(model, *alpha_beta).eval().to(device)

    # exported == evaluated: the test predictions come from the folded fp32 model, no autocast
    raw = predict(model, test_loader, spec, device, remove, amp=False, channels_last=cuda)
    if env.active:  # each rank predicted its slice of the test frames
        from neometer.train.loop import loader_positions

        raw = distributed.gather_in_order(raw, loader_positions(test_loader), len(test_rows), env)
    pred_hw = raw if strategy.weight_from_height else to_height_weight(raw, strategy)
    rows = prediction_rows(table, fold, test_rows, np.asarray(pred_hw, np.float64), train_mean)
    ref = _targets(table, test_rows)
    config["metrics"] = {name: summarize(pred_hw[:, c], ref[:, c], np.full(len(ref), train_mean[c]))
                         for c, name in enumerate(("height", "weight")) if np.isfinite(pred_hw[:, c]).any()}
    if env.is_main:
        save_checkpoint(fold_dir / "model.safetensors", model.cpu(), config)
        write_csv_atomic(fold_dir / "predictions.csv", rows)  # written last: it marks the fold as done
    distributed.barrier(env)  # no rank moves on (or checks 'fold done') before the files exist
    log(f"fold {fold}: test " + ", ".join(f"{k} MAE {v['mae']:.3f} (mean baseline {v['baseline_mae']:.3f}, "
                                            f"skill {v['skill']:.2f})" for k, v in config["metrics"].items()))
    return rows


# --- the whole run --------------------------------------------------------------------------

def _check_run_dir(run_dir: Path, cfg: TrainConfig, dataset_info: dict, resume: bool) -> None:
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            raise NeometerError(f"{run_dir} exists and is not empty; pass another --out (nothing is overwritten)")
        return
    if not resume:
        raise NeometerError(f"{run_dir} already holds a run ({cfg_path}); pass --resume to continue it, "
                            f"or another --out for a new run (nothing is overwritten)")
    old = json.loads(cfg_path.read_text())
    old_train = old.get("training", {})
    now = asdict(cfg)
    diffs = [f"{k}: run has {old_train.get(k)!r}, now {now[k]!r}" for k in RESUME_KEYS if old_train.get(k) != now[k]]
    if old.get("dataset", {}).get("sha256") != dataset_info.get("sha256"):
        diffs.append(f"dataset: run was trained on {old.get('dataset', {}).get('sha256')}, --data hashes to {dataset_info.get('sha256')}")
    if diffs:
        raise NeometerError(f"--resume {run_dir}: the settings differ from the run's config.json; pass the same ones "
                            f"or another --out", problems=diffs)


def run_crossval(table, cfg: TrainConfig, run_dir: str | Path, dataset_info: dict, resume: bool = False,
                 log=print, report: bool = True) -> dict:
    """Train and evaluate `cfg` on an in-memory frame table (see module docstring for outputs)."""
    import torch

    problems = cfg.problems()
    if problems:
        raise NeometerError("bad training arguments", problems=problems)
    from neometer.data.preprocess import PreprocessSpec
    from neometer.models.checkpoint import load_checkpoint, save_checkpoint

    from neometer.train import distributed

    run_dir = Path(run_dir)
    env, device = distributed.setup(resolve_device(cfg.device))  # torchrun: join the process group
    if env.active:
        if cfg.batch_size < 2 * env.world:
            raise NeometerError(f"--batch-size {cfg.batch_size} is the global batch: with {env.world} processes it must be "
                                f"at least {2 * env.world} (2 frames per process for BatchNorm)")
        if not env.is_main:  # rank 0 alone logs and writes
            log, cfg = (lambda *_a, **_k: None), replace(cfg, progress=False)
    strategy = strategy_for(cfg.task)
    size = int(table.images.shape[1])
    if size != cfg.img:
        raise NeometerError(f"the frame table holds {size}px frames but --img is {cfg.img}; rebuild it at --img")
    spec = replace(PreprocessSpec(target_size=cfg.img), background_removal="mask" if cfg.background == "remove" else "none")
    rows = select_frames(table, cfg.limit_infants)
    folds = make_folds(table, rows, cfg.folds, cfg.seed)
    _check_run_dir(run_dir, cfg, dataset_info, resume)
    distributed.barrier(env)  # every rank has checked the run dir before rank 0 writes into it
    # no cudnn.benchmark: on an H200 it spent ~25 s autotuning each new batch shape (train, ragged
    # last batch, test, fp32 prediction), more than a whole epoch; the default heuristics are fast

    base = base_checkpoint_config(cfg, strategy, spec, dataset_info)
    splits = splits_record(table, folds, cfg.folds, cfg.seed)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", dict(base, fold=cfg.fold))
        write_json_atomic(run_dir / "splits.json", splits)
    distributed.barrier(env)

    wanted = [cfg.fold] if cfg.fold is not None else list(range(cfg.folds))
    for k in wanted:
        if resume and (run_dir / f"fold{k}" / "predictions.csv").is_file():
            log(f"fold {k}: already done, skipped (--resume)")
            continue
        split = dict(k=cfg.folds, seed=cfg.seed, fold=k, grouped_by="infant_id",
                     train_infants=splits["folds"][k]["train_infants"], test_infants=splits["folds"][k]["test_infants"])
        train_fold(table, cfg, strategy, spec, k, folds[k][0], folds[k][1], run_dir, device, base, split, resume, log, env)
    if not env.is_main:  # the merge, the shipped model and the report are rank 0's
        return {"run_dir": str(run_dir), "rank": env.rank}

    # every finished fold of this run dir (a --fold run adds to what earlier --fold runs left)
    done = [k for k in range(cfg.folds) if (run_dir / f"fold{k}" / "predictions.csv").is_file()]
    all_rows = [r for k in done for r in read_csv(run_dir / f"fold{k}" / "predictions.csv")]
    write_csv_atomic(run_dir / "predictions.csv", all_rows)
    ship = cfg.fold if cfg.fold is not None else (0 if 0 in done else done[0])
    model, config = load_checkpoint(run_dir / f"fold{ship}" / "model.safetensors")
    for key in ("checkpoint_path", "checkpoint_sha256", "weights_sha256", "weights_dtype"):
        config.pop(key, None)
    config["shipped_fold"] = ship
    save_checkpoint(run_dir / "model.safetensors", model, config, dtype=getattr(torch, cfg.save_dtype))
    log(f"shipped model: {run_dir / 'model.safetensors'} (fold {ship}, {cfg.save_dtype})")
    summary = {"run_dir": str(run_dir), "folds_done": done}
    if report:
        from neometer.evaluate.report import write_report

        rep = write_report([run_dir], run_dir / "report", log=log)
        summary["report"] = rep
    return summary
