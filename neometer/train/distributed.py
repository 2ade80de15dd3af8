"""Training on several processes with PyTorch's own engine: `torchrun` starts the processes and
sets WORLD_SIZE / RANK / LOCAL_RANK; this module joins them into a process group (NCCL on GPUs,
gloo on CPU) and wraps the model in DistributedDataParallel.

The rule that makes 1 process and N processes give the same model: every rank walks the SAME
seeded sequence of global batches (same permutation as a single process) and keeps the strided
slice `batch[rank::world]` of each. Everything that depends on the whole batch is computed over
the whole batch:
  - the loss: each rank's mean loss is re-weighted by its share of the global batch, so DDP's
    gradient average is exactly the gradient of the global batch mean;
  - BatchNorm: batch statistics over all ranks (torch.nn.SyncBatchNorm on GPUs; on CPU, where
    SyncBatchNorm refuses to run, `GlooSyncBatchNorm`: the same sums all-reduced with
    torch.distributed.nn's differentiable all_reduce);
  - randomness (flips, colour jitter, dropout): all ranks share one seed and draw the random
    numbers of the WHOLE global batch, then keep their slice, so their generators stay in step
    with the single-process run's.
Only rank 0 writes files and logs. Without WORLD_SIZE (a plain `python train.py`) none of this
is active and training is the single-process code path, unchanged."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job (world 1, rank 0 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_from_environ(environ=os.environ) -> DistEnv:
    """torchrun's variables; a missing WORLD_SIZE means a plain single-process run."""
    world = int(environ.get("WORLD_SIZE", "1"))
    return DistEnv(rank=int(environ.get("RANK", "0")), world=world, local_rank=int(environ.get("LOCAL_RANK", "0")),
                   local_world=int(environ.get("LOCAL_WORLD_SIZE", str(world))))


def restarted_by_torchrun(environ=os.environ) -> bool:
    """True in the workers of a torchrun restart (--max-restarts) after a rank died."""
    return int(environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def restart_warning(environ=os.environ) -> str | None:
    """torchrun --max-restarts with the agent's rendezvous store shared with the workers (torch's
    default) can restart into the dead attempt's gloo/NCCL addresses and hang until the process
    group timeout (pytorch#135712; measured here: 3 of 6 restarts failed). Only torchrun's own
    environment can turn the sharing off, so the workers can just say so."""
    if int(environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0 and \
            environ.get("TORCH_DISABLE_SHARE_RDZV_TCP_STORE") != "1":
        return ("torchrun --max-restarts without TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: a restart may hang until "
                "NEOMETER_DIST_TIMEOUT_MIN; start torchrun with that variable set (docs/distributed.md, Restarts)")
    return None


def setup(device: torch.device) -> tuple[DistEnv, torch.device]:
    """Join torchrun's process group (once per process); returns the env and this rank's device
    (cuda:LOCAL_RANK on GPUs). A single process gets DistEnv() and the device unchanged."""
    import torch.distributed as dist

    env = env_from_environ()
    if not env.active:
        return env, device
    if device.type == "cuda":
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # rank 0 may decode a whole dataset into the cache while the others wait at a barrier
        minutes = float(os.environ.get("NEOMETER_DIST_TIMEOUT_MIN", "120"))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=minutes))
    return env, device


def teardown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.active:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.active:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather_in_order(local: np.ndarray, positions: np.ndarray, n: int, env: DistEnv) -> np.ndarray:
    """Every rank's rows (`local[i]` belongs at `positions[i]`) assembled into one n-row array,
    on every rank."""
    if not env.active:
        return local
    import torch.distributed as dist

    parts = [None] * env.world
    dist.all_gather_object(parts, (np.asarray(positions), np.asarray(local)))
    width = next((p[1].shape[1] for p in parts if p[1].ndim == 2 and len(p[1])), 0)
    out = np.zeros((n, width), np.float64)
    for pos, vals in parts:
        if len(pos):
            out[pos] = vals
    return out


# --- the global batch, sliced ---------------------------------------------------------------

@dataclass
class BatchShard:
    """This rank's slice of the current global batch; `global_n` is set before every step."""

    rank: int
    world: int
    global_n: int = 0

    def rand(self, *tail: int, device=None) -> torch.Tensor:
        """torch.rand(global_n, *tail)[this rank's rows]: the same draws as one process makes."""
        return torch.rand(self.global_n, *tail, device=device)[self.rank::self.world]

    def loss_weight(self, local_n: int) -> float:
        """DDP averages gradients over ranks; weighting each rank's mean loss by local_n * world /
        global_n makes that average the gradient of the mean over the whole global batch."""
        return local_n * self.world / self.global_n


class ShardedDropout(nn.Module):
    """nn.Dropout whose mask is drawn for the whole global batch (then sliced), so every rank's
    generator advances exactly as a single process's does (F.dropout draws bernoulli_(1-p) on
    the input's shape, the same stream)."""

    def __init__(self, p: float, shard: BatchShard):
        super().__init__()
        self.p, self.shard = p, shard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty((self.shard.global_n, *x.shape[1:]), device=x.device, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * keep[self.shard.rank::self.shard.world] / (1 - self.p)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is again a sum over ranks (each rank's statistics feed
    every rank's loss), as torch.distributed.nn.functional.all_reduce (deprecated) does."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """SyncBatchNorm for CPU tensors (PyTorch's SyncBatchNorm is GPU-only): per-channel sums and
    sums of squares all-reduced (differentiably) across ranks, then normalised as BatchNorm2d
    does with the whole batch. Statistics in float64 so the sum-of-squares variance is exact
    enough to match the single-process BatchNorm to float32 precision."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        x64 = x.double()
        count = torch.tensor([float(x.numel() // c)], dtype=torch.float64, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([x64.sum((0, 2, 3)), (x64 * x64).sum((0, 2, 3)), count]))
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
                unbiased = var * total / (total - 1).clamp_min(1)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        inv = torch.rsqrt(var + self.eps).to(x.dtype)
        y = (x - mean.to(x.dtype).view(1, c, 1, 1)) * inv.view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y


def _swap_modules(root: nn.Module, convert) -> nn.Module:
    """Replace, in place, every submodule for which convert(module) returns a new module."""
    for name, child in list(root.named_children()):
        new = convert(child)
        if new is not None:
            setattr(root, name, new)
        else:
            _swap_modules(child, convert)
    return root


def _bn_like(cls, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias  # the same Parameters: the optimizer keeps them
    if bn.track_running_stats:
        new.running_mean, new.running_var, new.num_batches_tracked = bn.running_mean, bn.running_var, bn.num_batches_tracked
    new.train(bn.training)
    return new.to(bn.weight.device if bn.affine else "cpu")


def shard_model(model: nn.Module, device: torch.device, shard: BatchShard) -> nn.Module:
    """Whole-batch BatchNorm and dropout (see the module docstring), then DDP. Call after the
    model is on its device; the returned DDP module trains the same Parameters as `model`."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    def to_sharded(m):
        if isinstance(m, nn.Dropout):
            return ShardedDropout(m.p, shard)
        if device.type != "cuda" and isinstance(m, nn.BatchNorm2d) and not isinstance(m, GlooSyncBatchNorm):
            return _bn_like(GlooSyncBatchNorm, m)
        return None

    _swap_modules(model, to_sharded)
    if device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # no buffer broadcast each forward: whole-batch BatchNorm keeps the running statistics equal
    # on every rank (buffers are still synced once, at construction)
    import inspect

    sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters \
        else {"broadcast_buffers": False}
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None, **sync)


def unshard_model(model: nn.Module) -> nn.Module:
    """Back to plain BatchNorm2d / Dropout (same Parameters), so what is saved, folded and
    exported is the ordinary torchvision network."""

    def to_plain(m):
        if isinstance(m, (GlooSyncBatchNorm, nn.SyncBatchNorm)):
            return _bn_like(nn.BatchNorm2d, m)
        if isinstance(m, ShardedDropout):
            return nn.Dropout(m.p)
        return None

    return _swap_modules(model, to_plain)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile and/or DDP (whose state_dict has no prefixes)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


__all__ = ["BatchShard", "DistEnv", "GlooSyncBatchNorm", "ShardedDropout", "all_reduce_sum", "barrier",
           "env_from_environ", "restart_warning", "gather_in_order", "setup", "shard_model", "teardown", "unshard_model", "unwrap"]
