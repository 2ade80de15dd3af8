"""Latency measured as the field does (TFLite's benchmark_model conventions):

- each runtime in its own process (`python -m neometer.bench.latency ...`), so one runtime's
  thread pools, allocator and JIT caches cannot slow down or speed up the next;
- the thread count really applied: thread environment variables set before the runtime is
  imported, the runner built with `threads=T`, ExecuTorch's global threadpool reset before
  loading, and the count the runtime reports recorded beside the one asked for;
- load (and compile) time measured apart from inference;
- warm-up runs, then at least `runs` timed runs (more if `min_secs` is not yet spent, fewer if
  `max_secs` runs out first, as benchmark_model's --num_runs/--min_secs/--max_secs);
- p50/p90/min/max of model-only time, and beside it end-to-end time (preprocessing from the
  source camera frame + predict);
- peak resident memory of the worker process.

The worker also predicts the held-out inputs, so parity uses the same loaded artifact the
latency was measured on."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                   "TF_NUM_INTEROP_THREADS", "XNNPACK_NUM_THREADS")


@dataclass
class Timing:
    warmup: int
    times_ms: list[float]

    @property
    def runs(self) -> int:
        return len(self.times_ms)


def time_runs(fn, warmup: int = 5, runs: int = 50, min_secs: float = 0.0, max_secs: float = math.inf,
              clock=time.perf_counter) -> Timing:
    """Call `fn()` `warmup` times untimed, then time it: at least `runs` calls and until `min_secs`
    have passed, but stop once `max_secs` have passed (after at least one timed call)."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    for _ in range(warmup):
        fn()
    times, start = [], clock()
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        times.append((t1 - t0) * 1000.0)
        elapsed = t1 - start
        if elapsed >= max_secs:
            break
        if len(times) >= runs and elapsed >= min_secs:
            break
    return Timing(warmup, times)


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summarize(times_ms: list[float]) -> dict:
    return {"p50_ms": percentile(times_ms, 50), "p90_ms": percentile(times_ms, 90), "min_ms": float(min(times_ms)),
            "max_ms": float(max(times_ms)), "mean_ms": float(sum(times_ms) / len(times_ms))}


def thread_env(threads: int, base: dict | None = None) -> dict:
    """The environment of a worker: every thread-count variable the runtimes read, set to T."""
    env = dict(os.environ if base is None else base)
    for var in THREAD_ENV_VARS:
        env[var] = str(threads)
    return env


def peak_rss_mb() -> float:
    """Peak resident memory of this process. On Linux VmHWM, because getrusage's ru_maxrss
    survives fork+exec: a worker started by a 2 GB parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0  # bytes on macOS, KiB on Linux


# --- inside the worker ------------------------------------------------------------------

def reset_executorch_threadpool(threads: int) -> bool:
    """ExecuTorch's CPU threadpool is process-global and sized once; reset it before loading."""
    try:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    except ImportError:
        return False
    _unsafe_reset_threadpool(int(threads))
    return True


def threads_reported(runner, fmt: str) -> int | None:
    """The thread count the runtime says it uses, so a result can show it was really applied."""
    for attr in ("threads_applied", "num_threads", "threads"):
        value = getattr(runner, attr, None)
        if isinstance(value, int):
            reported = value
            break
    else:
        reported = None
    try:
        if fmt == "executorch":
            from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count
            return int(_threadpool_get_thread_count())
        if fmt == "onnx":
            sess = getattr(runner, "session", None) or getattr(runner, "sess", None)
            if sess is not None:
                return int(sess.get_session_options().intra_op_num_threads) or reported
        if fmt == "pytorch":
            import torch
            return torch.get_num_threads()
    except Exception:  # a diagnostic only: never fail the measurement over it
        pass
    return reported


# Imported before the load timer starts: a phone app pays for loading the model, not for
# Python importing the runtime's bindings.
RUNTIME_MODULES = {"onnx": ("onnxruntime",), "tflite": ("ai_edge_litert.interpreter",),
                   "executorch": ("torch", "executorch.extension.pybindings.portable_lib", "executorch.runtime"),
                   "coreml": ("coremltools",), "pytorch": ("torch", "torchvision")}


def preimport(fmt: str) -> None:
    import importlib

    for name in RUNTIME_MODULES.get(fmt, ()):
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the runner will raise the real error with its install hint


def load_for_worker(card: str | None, checkpoint: str | None, threads: int):
    """-> (runner, format, preprocessing spec dict, load ms)."""
    if checkpoint:
        preimport("pytorch")
        import torch

        torch.set_num_threads(threads)
        from neometer.runtime import TorchRunner

        t0 = time.perf_counter()
        runner = TorchRunner(checkpoint, threads=threads)
        load_ms = (time.perf_counter() - t0) * 1000.0
        return runner, "pytorch", _checkpoint_spec(checkpoint), load_ms
    card_json = json.loads(Path(card).read_text())
    fmt = card_json.get("format", "")
    preimport(fmt)
    from neometer.runtime import load_runner

    t0 = time.perf_counter()
    if fmt == "executorch":
        reset_executorch_threadpool(threads)  # process-global pool, sized before the program loads
    runner = load_runner(card, threads=threads)
    load_ms = (time.perf_counter() - t0) * 1000.0
    return runner, fmt, card_json.get("preprocessing"), load_ms


def _checkpoint_spec(checkpoint: str) -> dict | None:
    from neometer.models.checkpoint import config_path, resolve_checkpoint

    return json.loads(config_path(resolve_checkpoint(checkpoint)).read_text()).get("preprocessing")


def predict_each(runner, x):
    """Predict one image at a time: fixed-batch artifacts (TFLite, Core ML) take batch 1."""
    import numpy as np

    return np.concatenate([np.asarray(runner.predict(x[i:i + 1]), dtype=np.float32).reshape(1, -1)
                           for i in range(len(x))], axis=0)


def worker_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m neometer.bench.latency")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--card", help="model card of the artifact")
    src.add_argument("--checkpoint", help="PyTorch checkpoint (the reference)")
    p.add_argument("--inputs", required=True, help=".npz with x (N,3,S,S) float32, frame (H,W,3) u8, mask (H,W) u8")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--e2e-runs", type=int, default=20)
    p.add_argument("--min-secs", type=float, default=0.0)
    p.add_argument("--max-secs", type=float, default=math.inf)
    p.add_argument("--out", required=True, help="result JSON; predictions go beside it as .npy")
    args = p.parse_args(argv)

    import numpy as np

    rss_before_mb = peak_rss_mb()
    data = np.load(args.inputs)
    x = data["x"].astype(np.float32)
    runner, fmt, spec_dict, load_ms = load_for_worker(args.card, args.checkpoint, args.threads)

    one = x[:1]
    model = time_runs(lambda: runner.predict(one), args.warmup, args.runs, args.min_secs, args.max_secs)
    e2e = _end_to_end(runner, data, spec_dict, args)
    predictions = predict_each(runner, x)

    out = Path(args.out)
    np.save(out.with_suffix(".npy"), predictions)
    result = {"format": fmt, "threads": args.threads, "threads_reported": threads_reported(runner, fmt),
              "warmup": model.warmup, "runs": model.runs, "load_ms": load_ms, **summarize(model.times_ms),
              "end_to_end_p50_ms": percentile(e2e.times_ms, 50) if e2e else None,
              "end_to_end_runs": e2e.runs if e2e else 0,
              "peak_memory_mb": peak_rss_mb(), "rss_before_load_mb": rss_before_mb,
              "predictions": out.with_suffix(".npy").name, "times_ms": model.times_ms}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)
    return 0


def _end_to_end(runner, data, spec_dict, args) -> Timing | None:
    """Source frame -> THE preprocessing (letterbox, mask, normalise) -> predict."""
    if "frame" not in data.files or spec_dict is None or args.e2e_runs < 1:
        return None
    from neometer.data.preprocess import PreprocessSpec, preprocess

    spec = PreprocessSpec.from_dict(spec_dict)
    frame, mask = data["frame"], (data["mask"] if "mask" in data.files else None)
    return time_runs(lambda: runner.predict(preprocess(frame, mask, spec)[None]), min(args.warmup, 2), args.e2e_runs,
                     0.0, args.max_secs)


# --- in the parent ----------------------------------------------------------------------

@dataclass
class WorkerResult:
    ok: bool
    stats: dict = field(default_factory=dict)
    predictions: object = None
    error: str | None = None


def run_worker(inputs: Path, out: Path, threads: int, card: Path | None = None, checkpoint: Path | None = None,
               warmup: int = 5, runs: int = 50, e2e_runs: int = 20, min_secs: float = 0.0,
               max_secs: float = 60.0, timeout_s: float = 900.0) -> WorkerResult:
    """Measure one artifact (or the PyTorch reference) in a fresh Python process."""
    import numpy as np

    cmd = [sys.executable, "-m", "neometer.bench.latency", "--inputs", str(inputs), "--out", str(out),
           "--threads", str(threads), "--warmup", str(warmup), "--runs", str(runs), "--e2e-runs", str(e2e_runs),
           "--min-secs", str(min_secs), "--max-secs", str(max_secs)]
    cmd += ["--card", str(card)] if card else ["--checkpoint", str(checkpoint)]
    env = thread_env(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return WorkerResult(False, error=f"runtime timed out after {timeout_s:.0f} s")
    if proc.returncode != 0 or not out.is_file():
        return WorkerResult(False, error=last_error_line(proc.stderr) or f"worker exited {proc.returncode}")
    stats = json.loads(out.read_text())
    return WorkerResult(True, stats, np.load(out.with_suffix(".npy")))


def last_error_line(stderr: str) -> str:
    """The exception line of a traceback (the reason a row failed), not the whole traceback."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "Exception" in ln or ln.startswith("error"):
            return ln[:300]
    return lines[-1][:300] if lines else ""


if __name__ == "__main__":
    raise SystemExit(worker_main())
