"""One readable training loop (in the spirit of nanoGPT's): batches of uint8 frames from a
DataLoader, normalised on the device, Adam with L2 weight decay (as the paper: lr 1e-4, wd 1e-3),
MSE on standardised targets, a checkpoint of model + optimizer every epoch (resumable).

GPU path: uint8 batches (4x less to copy than float32) come from DataLoader workers into
pinned memory, are copied asynchronously, become channels_last float there, and the forward
and backward run under bf16 autocast. CPU path: the same code with no workers and no autocast,
so a tiny config runs in seconds in the tests."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from neometer.data.preprocess import PreprocessSpec


# --- targets -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TargetNorm:
    """Per-output mean and SD of the training targets; the network learns (y - mean) / std."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, targets: np.ndarray) -> "TargetNorm":
        t = np.asarray(targets, np.float64).reshape(len(targets), -1)
        std = t.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)  # a constant target (one infant) must not divide by 0
        return cls(tuple(float(v) for v in t.mean(axis=0)), tuple(float(v) for v in std))

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}


# --- data ----------------------------------------------------------------------------------

class FrameBatches(Dataset):
    """Whole batches from a frame table: `ds[positions]` -> (uint8 N x S x S x 3 letterboxed frames,
    uint8 N x S x S mask coverage * 255, float32 N x 2 targets [height_cm, weight_kg]).
    One numpy fancy-index per array instead of N Python calls; augmentation, background
    removal and normalisation happen on the device (`to_input`)."""

    def __init__(self, table, indices):
        self.table = table
        self.indices = np.asarray(indices, np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = self.indices[np.asarray(positions, np.int64)]
        images = np.asarray(self.table.images[rows])
        masks = np.asarray(self.table.masks[rows])
        targets = np.stack([self.table.height_cm[rows], self.table.weight_kg[rows]], axis=1).astype(np.float32)
        return torch.from_numpy(images), torch.from_numpy(masks), torch.from_numpy(targets)

    def table_targets(self) -> np.ndarray:
        """N x 2 [height_cm, weight_kg] of every sample, in order."""
        return np.stack([np.asarray(self.table.height_cm)[self.indices],
                         np.asarray(self.table.weight_kg)[self.indices]], axis=1).astype(np.float64)


class EpochBatches(Sampler):
    """Batches of dataset positions; shuffled with a seed that depends on the epoch only, so a
    resumed run sees the same batches as an uninterrupted one. With `world` > 1 (torchrun) every
    rank walks the same global batches and keeps the strided slice `batch[rank::world]`: the
    ranks see disjoint frames and together exactly the single-process batch."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0, drop_last: bool = False,
                 rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.rank, self.world = rank, world
        self.epoch = 0

    def __iter__(self):
        order = np.random.default_rng(self.seed + 7919 * self.epoch).permutation(self.n) if self.shuffle else np.arange(self.n)
        stop = self.n - (self.n % self.batch_size if self.drop_last else 0)
        for start in range(0, stop, self.batch_size):
            part = order[start:start + self.batch_size][self.rank::self.world].tolist()
            if part:  # a tiny last evaluation batch may leave a rank nothing (training never does)
                yield part

    def global_size(self, i: int) -> int:
        """Frames in global batch i (over all ranks)."""
        return min(self.batch_size, self.n - i * self.batch_size)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)


def make_loader(table, indices, batch_size: int, shuffle: bool, workers: int = 0, pin_memory: bool = False,
                seed: int = 0, rank: int = 0, world: int = 1) -> DataLoader:
    """`batch_size` is the global batch; with world > 1 each rank loads its slice of it."""
    ds = FrameBatches(table, indices)
    # drop a ragged last training batch only when it would be tiny (BatchNorm dislikes 1 sample;
    # with several ranks, every rank must get a slice: fewer than 2 per rank is dropped)
    drop_last = shuffle and 0 < len(ds) % batch_size < 2 * world
    sampler = EpochBatches(len(ds), batch_size, shuffle, seed, drop_last, rank, world)
    kwargs = dict(num_workers=workers, pin_memory=pin_memory)
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=4)
    return DataLoader(ds, batch_size=None, sampler=sampler, **kwargs)


def _rand(n: int, *tail: int, device, shard=None) -> torch.Tensor:
    """torch.rand(n, ...), or under torchrun this rank's rows of the global batch's draws."""
    return torch.rand(n, *tail, device=device) if shard is None else shard.rand(*tail, device=device)


def jitter(x: torch.Tensor, strength: float, shard=None) -> torch.Tensor:
    """neometer.data.dataset.photometric_jitter on a float N x 3 x S x S batch in [0, 255]:
    saturation, contrast (about the image's mean grey) and brightness, each 1 +/- strength."""
    n = x.shape[0]
    f = 1.0 + (_rand(n, 3, 1, 1, 1, device=x.device, shard=shard) * 2 - 1) * strength
    b, c, s = f[:, 0], f[:, 1], f[:, 2]
    grey = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = grey + (x - grey) * s
    g = grey.mean(dim=(2, 3), keepdim=True)
    x = (x - g) * c + g
    return (x * b).clamp_(0, 255).add_(0.5).floor_()


def to_input(images: torch.Tensor, masks: torch.Tensor, spec: PreprocessSpec, device: torch.device,
             remove_background: bool, channels_last: bool = False, augment: bool = False,
             jitter_strength: float = 0.1, shard=None) -> torch.Tensor:
    """uint8 frames + masks -> the model's normalised float N x 3 x S x S on `device`: the same
    arithmetic as FrameDataset (augment -> apply_mask -> normalize), done after the 4x smaller
    uint8 copy. NHWC permuted to NCHW is already channels_last in memory."""
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    keep = None
    if remove_background:
        keep = (masks.to(device, non_blocking=True).float() / 255.0 >= spec.mask_threshold).unsqueeze(1)
    if augment:  # a left-right flip keeps a body's length and weight; the mask flips with it
        n = x.shape[0]
        flip = (_rand(n, device=device, shard=shard) < 0.5).view(n, 1, 1, 1)
        x = torch.where(flip, x.flip(3), x)
        keep = torch.where(flip, keep.flip(3), keep) if keep is not None else None
        x = jitter(x, jitter_strength, shard)
    if keep is not None:
        x = torch.where(keep, x, torch.full_like(x, float(spec.pad_value)))
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    x = (x * spec.scale - mean) / std
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


# --- training -------------------------------------------------------------------------------

@dataclass
class FitOptions:
    epochs: int
    columns: tuple[int, ...]  # target columns the network regresses (0 height, 1 weight)
    norm: TargetNorm
    spec: PreprocessSpec
    remove_background: bool = True
    amp: bool = False
    channels_last: bool = False
    augment: bool = True
    schedule: str = "constant"  # the paper's constant learning rate, or "cosine"
    state_path: Path | None = None  # checkpoint every epoch; resume from it
    resume: bool = False
    progress: bool = True
    desc: str = "train"
    shard: object | None = None  # distributed.BatchShard under torchrun
    dist_env: object | None = None  # distributed.DistEnv under torchrun: reduce metrics, rank 0 saves


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)


def _lr_factor(schedule: str, step: int, total: int) -> float:
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    return 1.0


def _rng_state(device: torch.device) -> dict:
    """The generators the training steps draw from (augmentation, dropout, the DataLoader's base
    seed), so a resumed run continues their streams instead of replaying them from the seed."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    """Every rank restores rank 0's state: all ranks draw the whole global batch's numbers, so
    their generators are in step anyway (see distributed.BatchShard)."""
    torch.set_rng_state(state["torch"].cpu())  # a map_location=cuda load moved the byte tensors
    np.random.set_state(state["numpy"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _save_state(path: Path, model, optimizer, epoch: int, norm: TargetNorm, history: list,
                rng: dict | None = None) -> None:
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "target_norm": norm.to_dict(), "history": history, "rng": rng}, tmp)
    tmp.replace(path)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, spec: PreprocessSpec, device: torch.device,
            remove_background: bool = True, amp: bool = False, channels_last: bool = False) -> np.ndarray:
    """Raw model outputs for every sample of `loader`, in order (N x n_outputs, float64)."""
    model.eval()
    out = []
    for images, masks, _ in loader:
        with _autocast(device, amp):
            y = model(to_input(images, masks, spec, device, remove_background, channels_last))
        out.append(y.float().cpu())
    return torch.cat(out).double().numpy() if out else np.zeros((0, 0))


def loader_positions(loader: DataLoader) -> np.ndarray:
    """Dataset positions `loader` yields, in order (all of them in one process; this rank's slice
    under torchrun)."""
    batches = list(loader.sampler)
    return np.concatenate([np.asarray(b, np.int64) for b in batches]) if batches else np.zeros(0, np.int64)


def validation_mae(model, loader, opts: FitOptions, device) -> list[float]:
    """MAE in cm / kg of the (still standardised) model on `loader`, per output (over every
    rank's slice under torchrun)."""
    from neometer.train.distributed import all_reduce_sum, unwrap

    active = opts.dist_env is not None and opts.dist_env.active
    # the plain module: a DDP forward may start collectives that ranks with unequal slices miss
    z = predict(unwrap(model) if active else model, loader, opts.spec, device, opts.remove_background, opts.amp,
                opts.channels_last)
    if not active:
        pred = z * np.asarray(opts.norm.std) + np.asarray(opts.norm.mean)
        ref = loader.dataset.table_targets()[:, list(opts.columns)]
        return [float(v) for v in np.mean(np.abs(pred - ref), axis=0)]
    ref = loader.dataset.table_targets()[loader_positions(loader)][:, list(opts.columns)]
    err = np.abs(z.reshape(len(ref), -1) * np.asarray(opts.norm.std) + np.asarray(opts.norm.mean) - ref) if len(ref) \
        else np.zeros((0, len(opts.columns)))
    sums = torch.tensor([*err.sum(axis=0), len(ref)], dtype=torch.float64, device=device)
    sums = all_reduce_sum(sums, opts.dist_env).cpu().numpy()
    return [float(v) for v in sums[:-1] / max(sums[-1], 1)]


def fit(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None,
        optimizer: torch.optim.Optimizer, device: torch.device, opts: FitOptions, log=print) -> list[dict]:
    """Train for opts.epochs; returns one dict per epoch (loss, val MAE, images/s)."""
    from tqdm import tqdm

    from neometer.train.distributed import DistEnv, all_reduce_sum, unwrap

    env = opts.dist_env or DistEnv()
    history: list[dict] = []
    start_epoch = 0
    if opts.resume and opts.state_path and opts.state_path.is_file():  # every rank loads rank 0's state
        state = torch.load(opts.state_path, map_location=device, weights_only=False)
        unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = state["epoch"] + 1, state["history"]
        if state.get("rng"):  # (a state.pt from before the generators were saved resumes without them)
            _set_rng_state(state["rng"], device)
        log(f"{opts.desc}: resumed after epoch {start_epoch} from {opts.state_path}")

    mean = torch.tensor(opts.norm.mean, device=device)
    std = torch.tensor(opts.norm.std, device=device)
    cols = list(opts.columns)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    steps_per_epoch = max(len(train_loader), 1)
    total_steps = steps_per_epoch * opts.epochs
    last_val = history[-1]["val_mae"] if history else None

    for epoch in range(start_epoch, opts.epochs):
        train_loader.sampler.epoch = epoch
        model.train()
        bar = tqdm(train_loader, desc=f"{opts.desc} epoch {epoch + 1}/{opts.epochs}", disable=not opts.progress,
                   leave=False, dynamic_ncols=True)
        t0, seen, loss_sum = time.perf_counter(), 0, torch.zeros((), device=device)
        for i, (images, masks, targets) in enumerate(bar):
            for g, lr in zip(optimizer.param_groups, base_lrs):
                g["lr"] = lr * _lr_factor(opts.schedule, epoch * steps_per_epoch + i, total_steps)
            if opts.shard is not None:
                opts.shard.global_n = train_loader.sampler.global_size(i)
            x = to_input(images, masks, opts.spec, device, opts.remove_background, opts.channels_last, opts.augment,
                         shard=opts.shard)
            z = (targets.to(device, non_blocking=True)[:, cols] - mean) / std
            with _autocast(device, opts.amp):
                out = model(x)
            # the paper's loss: one MSE per task, summed (multitask), in fp32
            loss = ((out.float() - z) ** 2).mean(dim=0).sum()
            if opts.shard is not None:  # this rank's share of the global batch's mean loss
                loss = loss * opts.shard.loss_weight(len(images))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            seen += len(images)
            if opts.progress and i % 10 == 0:  # .item() syncs the GPU: not every step
                bar.set_postfix(loss=f"{loss.item():.3f}", val_mae=_fmt(last_val))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        if env.active:  # the weighted per-rank losses sum to world x the global batch loss
            sums = all_reduce_sum(torch.stack([loss_sum.double(), torch.tensor(float(seen), device=device,
                                                                               dtype=torch.float64)]), env)
            loss_sum, seen = sums[0] / env.world, int(sums[1].item())
        record = {"epoch": epoch + 1, "loss": float(loss_sum.item() / max(len(train_loader), 1)),
                  "images_per_s": seen / max(seconds, 1e-9), "seconds": seconds}
        if val_loader is not None and len(val_loader.dataset):
            record["val_mae"] = last_val = validation_mae(model, val_loader, opts, device)
        history.append(record)
        log(f"{opts.desc} epoch {epoch + 1}/{opts.epochs}: loss {record['loss']:.4f}, "
            f"val MAE {_fmt(record.get('val_mae'))}, {record['images_per_s']:.0f} images/s")
        if opts.state_path and env.is_main:  # one writer; atomic, so a killed job never leaves half a file
            _save_state(opts.state_path, unwrap(model), optimizer, epoch, opts.norm, history, _rng_state(device))
    return history


def _fmt(vals) -> str:
    return "-" if not vals else "/".join(f"{v:.3f}" for v in vals)
