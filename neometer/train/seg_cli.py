"""`neometer train-seg`: train and evaluate the on-device infant segmenter.

    neometer train-seg --data DATASET --out runs/seg
    neometer train-seg --data DATASET --out runs/seg --regressor-run runs/paper     # + the ablation
    neometer train-seg ... --multitask                                              # + the experiment

Heavy imports (torch) happen inside run()."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from neometer.errors import NeometerError


def configure(p: argparse.ArgumentParser) -> None:
    from neometer.train.segment import SegTrainConfig

    d = SegTrainConfig()
    p.add_argument("--data", required=True, help="dataset folder (manifest.csv + media + masks)")
    p.add_argument("--out", required=True, help="run folder to create (must be new or empty)")
    p.add_argument("--ship-to", default=None,
                   help="also save the trained model here, e.g. models/demo/segmenter.safetensors")
    p.add_argument("--arch", default=d.arch, help=f"segmenter architecture (default {d.arch})")
    p.add_argument("--width", type=float, default=d.width, help="encoder width multiplier")
    p.add_argument("--img", type=int, default=d.img, help="input size S (the regressor's, multiple of 32)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, one-cycle)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--folds", type=int, default=d.folds, help="k of the grouped split (as neometer train)")
    p.add_argument("--fold", type=int, default=d.fold, help="the held-out fold (default 0: the shipped regressor's)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--fps", type=float, default=d.fps, help="video frames sampled per second")
    p.add_argument("--max-frames", type=int, default=None, help="cap on frames per recording")
    p.add_argument("--limit-infants", type=int, default=None, help="use only the first N infants (quick runs)")
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 0 on CPU, most cores on GPU)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast (default: on CUDA)")
    p.add_argument("--weights", default=None, help="a local torchvision ImageNet .pth for the encoder (never downloaded)")
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--save-dtype", default=d.save_dtype, help="dtype of the saved weights (float16 keeps the app small)")
    p.add_argument("--cache-dir", default=None, help="frame cache folder (default: NEOMETER_CACHE or ~/.cache)")
    reg = p.add_argument_group("background-removal ablation (ground-truth vs segmenter masks vs none)")
    reg.add_argument("--regressor-run", default=None,
                     help="a `neometer train` run (background removed): its splits.json and fold model are used")
    reg.add_argument("--regressor-run-no-removal", default=None,
                     help="a `neometer train --background keep` run with the same split: the 'no removal' arm")
    reg.add_argument("--regressor", default=None, help="a regressor checkpoint instead of --regressor-run")
    reg.add_argument("--regressor-no-removal", default=None, help="a no-removal regressor checkpoint")
    exp = p.add_argument_group("experiment: one-pass multi-task model")
    exp.add_argument("--multitask", action="store_true",
                     help="also train one backbone with mask + regression heads and compare accuracy and latency")
    exp.add_argument("--multitask-arch", default=d.multitask_arch)
    exp.add_argument("--no-latency", dest="latency", action="store_false", help="skip host CPU timing in the report")
    p.add_argument("--quiet", dest="progress", action="store_false", help="no progress bars")


def config_from_args(args):
    from neometer.train.segment import SegTrainConfig

    names = {f.name for f in fields(SegTrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    return SegTrainConfig(**values)


def load_table(data_dir, img: int, fps: float, max_frames, cache_dir=None, progress=True):
    from neometer.data.cache import build_frame_table
    from neometer.data.preprocess import PreprocessSpec

    return build_frame_table(data_dir, spec=PreprocessSpec(target_size=img), fps=fps,
                             max_frames_per_recording=max_frames, cache_dir=cache_dir, progress=progress)


def run(args) -> int:
    from neometer.train.segment import train_segmenter

    cfg = config_from_args(args)
    problems = cfg.problems()
    if args.regressor and args.regressor_run:
        problems.append("--regressor and --regressor-run: pass one of them")
    if args.regressor_run and not (Path(args.regressor_run) / "splits.json").is_file():
        problems.append(f"--regressor-run {args.regressor_run}: no splits.json there; pass a `neometer train` run folder")
    if args.ship_to and Path(args.ship_to).suffix != ".safetensors":
        problems.append(f"--ship-to {args.ship_to}: must end in .safetensors")
    if not (Path(args.data) / "manifest.csv").is_file():
        problems.append(f"--data {args.data}: no manifest.csv there; write a dataset with `neometer synth` or see the dataset format")
    if problems:
        raise NeometerError("bad train-seg arguments", problems=problems)
    table = load_table(args.data, cfg.img, cfg.fps, cfg.max_frames, args.cache_dir, cfg.progress)
    info = {"path": str(Path(args.data)), "sha256": getattr(table, "dataset_sha256", "")}
    train_segmenter(table, cfg, args.out, info, regressor=args.regressor, regressor_no_removal=args.regressor_no_removal,
                    regressor_run=args.regressor_run, regressor_run_no_removal=args.regressor_run_no_removal,
                    ship_to=args.ship_to)
    return 0
