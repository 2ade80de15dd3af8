"""`python benchmarks.py ranks --data DIR`: what the frame table costs each torchrun rank.

Starts `torchrun --standalone --nproc_per_node N train.py ...` (gloo on the CPU by default) with
a small wrapper around each worker (neometer/bench/rank_worker.py) that records the rank's
resident memory (RSS) and unique memory (USS: pages no other process shares) just before and
just after the frame table is built, and the peak over the whole run. `--src CHECKOUT` runs
another neometer checkout with the same wrapper, so a change is measured against the code before
it (e.g. a `git worktree` of an older commit). Writes benchmarks/results/<id>-ranks/:
results.json, results.md and rank_memory.png."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from neometer.errors import NeometerError

WORKER = Path(__file__).with_name("rank_worker.py")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset folder (e.g. from `neometer synth`)")
    p.add_argument("--ranks", type=int, default=2, help="processes on this machine (default %(default)s)")
    p.add_argument("--src", action="append", default=[], metavar="LABEL=CHECKOUT",
                   help="also measure another neometer checkout (repeatable), e.g. before=/tmp/old")
    p.add_argument("--cache-dir", default=None, help="frame cache (default: $NEOMETER_CACHE or ~/.cache/neometer)")
    p.add_argument("--train-args", default="--img 224 --epochs 1 --folds 2 --fold 0 --limit-infants 6 "
                   "--batch-size 8 --device cpu --no-report --quiet",
                   help="the rest of the train command line (default: a short run, so the table dominates)")
    p.add_argument("--out", type=Path, default=None, help="results root (default benchmarks/results)")


def measure(label: str, src: Path, args, work: Path) -> list[dict]:
    """Run one torchrun job with the memory wrapper; one dict per rank."""
    stats = work / label
    stats.mkdir(parents=True)
    env = dict(os.environ, NEOMETER_RANK_STATS=str(stats), NEOMETER_SRC=str(src), OMP_NUM_THREADS="1")
    cache = ["--cache-dir", str(args.cache_dir)] if args.cache_dir else []
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.ranks),
           str(WORKER), "--data", str(args.data), "--out", str(work / f"run-{label}"), *cache, *args.train_args.split()]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NeometerError(f"{label}: torchrun exited {proc.returncode}", problems=(proc.stdout + proc.stderr)
                            .strip().splitlines()[-15:])
    ranks = [json.loads(p.read_text()) for p in sorted(stats.glob("rank*.json"))]
    for r in ranks:
        r.update(label=label, src=str(src), job_seconds=round(time.perf_counter() - t0, 1))
    return ranks


def write_results(rows: list[dict], out: Path, meta: dict) -> None:
    from neometer.evaluate.report import pyplot, save_figure

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({**meta, "ranks": rows}, indent=2) + "\n")
    head = "| code | rank | table build s | table RSS +MB | table USS +MB | peak RSS MB | peak USS MB |\n|---|---|---|---|---|---|---|\n"
    lines = [f"| {r['label']} | {r['rank']} | {r['table_seconds']:.1f} | {r['table_rss_mb']:.0f} | "
             f"{r['table_uss_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['peak_uss_mb']:.0f} |" for r in rows]
    (out / "results.md").write_text(
        f"# Frame table memory per torchrun rank\n\n{meta['ranks']} ranks, dataset {meta['data']} "
        f"({meta['frames']} frames, {meta['table_mb']:.0f} MB of pixels), commit {meta['run']['git_commit']}"
        f"{' (dirty)' if meta['run']['git_dirty'] else ''}, {meta['cpu']}.\n\n"
        "`table +MB`: growth of the rank's memory while it built the frame table; USS counts only pages "
        "no other process shares (the page cache is not in either).\n\n" + head + "\n".join(lines) + "\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = [f"{r['label']}\nrank {r['rank']}" for r in rows]
    ax.bar(names, [r["table_uss_mb"] for r in rows], color="tab:blue", label="frame table (USS growth)")
    ax.bar(names, [r["peak_uss_mb"] - r["table_uss_mb"] for r in rows], bottom=[r["table_uss_mb"] for r in rows],
           color="0.8", label="rest of the peak USS")
    ax.axhline(meta["table_mb"], color="tab:red", ls="--", lw=1, label=f"table pixels {meta['table_mb']:.0f} MB")
    ax.set(ylabel="MB", title=f"memory per rank, {meta['ranks']} ranks")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, out / "rank_memory.png")


def run(args) -> int:
    import tempfile

    from neometer.bench import sysinfo
    from neometer.bench.results import RESULTS_DIR

    sources = [("this", Path(__file__).resolve().parents[2])]
    problems = []
    for item in args.src:
        label, _, path = item.partition("=")
        if not path or not (Path(path) / "neometer" / "cli.py").is_file():
            problems.append(f"--src {item}: pass LABEL=PATH of a neometer checkout (PATH/neometer/cli.py)")
        sources.append((label, Path(path).resolve()))
    if not (Path(args.data) / "manifest.csv").is_file():
        problems.append(f"--data {args.data}: no manifest.csv there (make one with `neometer synth --out DIR`)")
    if args.ranks < 1:
        problems.append(f"--ranks {args.ranks}: must be at least 1")
    if problems:
        raise NeometerError("cannot run the rank benchmark", problems=problems)
    rows = []
    with tempfile.TemporaryDirectory(prefix="neometer-ranks-") as tmp:
        for label, src in sources:
            print(f"{label}: torchrun x{args.ranks} on {src} ...", flush=True)
            rows += measure(label, src, args, Path(tmp))
    if rows[0]["table_seconds"] > 5 * min(r["table_seconds"] for r in rows):
        print("note: the first job decoded into the frame cache; run again for a warm-cache comparison")
    run_id = sysinfo.new_run_id()
    meta = {"run": sysinfo.run_block(run_id), "ranks": args.ranks, "data": str(args.data),
            "train_args": args.train_args, "frames": rows[0]["frames"], "table_mb": rows[0]["table_pixels_mb"],
            "cpu": sysinfo.cpu_info()["cpu"]}
    out = (args.out or RESULTS_DIR) / f"{run_id}-ranks"
    write_results(rows, out, meta)
    print((out / "results.md").read_text())
    print(f"wrote {out}")
    return 0
