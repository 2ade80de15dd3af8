"""The `neometer` command. Each subcommand lives in its stage's module, which provides
`configure(parser)` and `run(args) -> int`; only the chosen one is imported, so
`neometer data check` does not pay for TensorFlow."""

from __future__ import annotations

import argparse
import importlib
import sys

from neometer.errors import NeometerError

COMMANDS = {
    "synth": ("neometer.synth.cli", "write a synthetic newborn dataset (videos, stills, masks, labels)"),
    "data": ("neometer.data.cli", "check a dataset folder (manifest.csv + media) and report every problem"),
    "train": ("neometer.train.cli", "train the paper's models with grouped k-fold cross-validation"),
    "train-seg": ("neometer.train.seg_cli", "train the on-device infant segmenter"),
    "eval": ("neometer.evaluate.cli", "write the evaluation report of a training run"),
    "export": ("neometer.export.cli", "export a checkpoint to TFLite, Core ML, ExecuTorch and ONNX"),
    "bench": ("neometer.bench.cli", "parity and latency of every exported artifact"),
    "golden": ("neometer.golden", "regenerate the golden vectors the app shells test against"),
}


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neometer", description="Newborn length and weight from a phone camera.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"neometer {name}", description=COMMANDS[name][1])
    module.configure(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except NeometerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run_script(command: str) -> None:
    """Entry for the thin root scripts (train.py, export.py, benchmarks.py)."""
    raise SystemExit(main([command, *sys.argv[1:]]))
