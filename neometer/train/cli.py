"""`python train.py --data DIR --task T --backbone B ...` (= `neometer train`): grouped k-fold
cross-validation of the paper's models, then the evaluation report of the run."""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import fields
from pathlib import Path

from neometer.errors import NeometerError


def configure(p: argparse.ArgumentParser) -> None:
    from neometer.train.crossval import SAVE_DTYPES, TrainConfig
    from neometer.train.strategies import TASKS

    d = TrainConfig()
    p.add_argument("--data", required=True, help="dataset folder (manifest.csv + media), e.g. from `neometer synth`")
    p.add_argument("--task", default=d.task, choices=TASKS,
                   help="height | weight (one-task nets) | multitask (2 outputs, summed MSE) | "
                        "height+regression (height net + W = alpha*H + beta) (default %(default)s)")
    p.add_argument("--backbone", default=d.backbone, help="mobilenet_v2 | vgg16 | googlenet | alexnet (default %(default)s)")
    p.add_argument("--folds", type=int, default=d.folds, help="k of grouped k-fold CV, by infant (default %(default)s)")
    p.add_argument("--fold", type=int, default=None, help="train only fold K (fan folds out as separate jobs; "
                                                          "merge with `neometer eval RUN_A RUN_B --out DIR`)")
    p.add_argument("--background", default=d.background, help="remove (the paper) | keep (default %(default)s)")
    p.add_argument("--device", default=d.device, help="cuda | cpu | auto (default %(default)s)")
    p.add_argument("--weights", default=None, help="local torchvision ImageNet .pth to start from "
                                                   "(default: random initialisation; nothing is downloaded)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="(default %(default)s)")
    p.add_argument("--img", type=int, default=d.img, help="input size in pixels (default %(default)s, as the paper)")
    p.add_argument("--width-mult", type=float, default=d.width_mult, help="MobileNetV2 width (default %(default)s)")
    p.add_argument("--fps", type=float, default=d.fps, help="frames sampled per second of video (default %(default)s)")
    p.add_argument("--max-frames", type=int, default=None, help="at most this many frames per recording")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="(default %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 0 on CPU, most cores on a GPU)")
    p.add_argument("--seed", type=int, default=d.seed, help="(default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default %(default)s, the paper)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="(default %(default)s, the paper)")
    p.add_argument("--schedule", default=d.schedule, help="constant (the paper) | cosine (default %(default)s)")
    p.add_argument("--limit-infants", type=int, default=None, help="use only the first N infants (quick runs)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 mixed precision (default: on for CUDA, off on CPU)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=d.augment,
                   help="random left-right / up-down flips (default on)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=d.compile, help="torch.compile the model")
    p.add_argument("--save-dtype", default=d.save_dtype, choices=SAVE_DTYPES,
                   help="dtype of the shipped RUN/model.safetensors (float16 halves it) (default %(default)s)")
    p.add_argument("--cache-dir", default=None, help="frame cache folder (default: $NEOMETER_CACHE or ~/.cache/neometer)")
    p.add_argument("--out", default=None, help="run folder (default runs/<task>-<backbone>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch / fold")
    p.add_argument("--no-report", action="store_true", help="skip the evaluation report at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def config_from_args(args):
    from neometer.train.crossval import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["progress"] = not args.quiet
    return TrainConfig(**values)


def load_table(data_dir, cfg, cache_dir=None):
    """The dataset's frame table at cfg.img (decoded once, cached); raises NeometerError with
    every problem when the dataset would fail `neometer data check`."""
    from neometer.data.cache import build_frame_table
    from neometer.data.preprocess import PreprocessSpec

    data_dir = Path(data_dir)
    if not (data_dir / "manifest.csv").is_file():
        raise NeometerError(f"--data {data_dir}: no manifest.csv there; point it at a dataset folder "
                            f"(make one with `neometer synth --out DIR`)")
    return build_frame_table(data_dir, PreprocessSpec(target_size=cfg.img), fps=cfg.fps,
                             max_frames_per_recording=cfg.max_frames, cache_dir=cache_dir, progress=cfg.progress)


def dataset_info(table, data_dir) -> dict:
    import numpy as np

    return {"path": str(Path(data_dir).absolute()), "sha256": getattr(table, "dataset_sha256", ""),
            "infants": int(len(set(np.asarray(table.infant_id).tolist()))), "frames": int(len(table.infant_id)),
            "fps": getattr(table, "fps", None)}


def run(args) -> int:
    from neometer.train import distributed
    from neometer.train.crossval import resolve_device, run_crossval

    cfg = config_from_args(args)
    problems = cfg.problems()
    if problems:  # before decoding a whole dataset
        raise NeometerError("bad training arguments", problems=problems)
    if distributed.env_from_environ().active and not args.out:
        raise NeometerError("under torchrun pass --out RUN_DIR: every process must write to (and resume from) the same "
                            "run folder, and a default name with the time in it would differ between them")
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.task.replace('+', '_')}-{cfg.backbone}-{time.strftime('%Y%m%d-%H%M%S')}"
    env, _ = distributed.setup(resolve_device(cfg.device))  # torchrun: join the process group (else nothing)
    if env.is_main and distributed.restart_warning():
        print(f"warning: {distributed.restart_warning()}", flush=True)
    try:
        if env.active and not env.is_main:  # rank 0 decodes into the frame cache; the others then read it
            distributed.barrier(env)
        table = load_table(args.data, cfg if env.is_main else dataclasses.replace(cfg, progress=False), args.cache_dir)
        if env.active and env.is_main:
            distributed.barrier(env)
        # torchrun's elastic restart reruns the same command line: a restarted job continues its run
        resume = args.resume or distributed.restarted_by_torchrun()
        run_crossval(table, cfg, out, dataset_info(table, args.data), resume=resume, report=not args.no_report)
    finally:
        distributed.teardown()
    return 0
