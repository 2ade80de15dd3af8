"""`neometer eval RUN [RUN ...] [--out DIR]`: the evaluation report of a training run, or of
several runs merged (folds fanned out as separate jobs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from neometer.errors import NeometerError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="training run folder(s) holding predictions.csv; several are merged into one report")
    p.add_argument("--out", default=None, help="report folder (default: RUN_DIR/report for a single run)")


def run(args) -> int:
    from neometer.evaluate.report import write_report

    if args.out is None and len(args.runs) > 1:
        raise NeometerError("several runs are merged into one report: pass --out DIR for it")
    out = Path(args.out) if args.out else Path(args.runs[0]) / "report"
    write_report([Path(r) for r in args.runs], out)
    return 0
