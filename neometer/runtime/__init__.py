"""Runtimes behind one interface: `load_runner(card_path, threads) -> Runner` with
`.predict(x float32 NCHW normalised batch) -> float32 (N, n_outputs)`, `.card`, `.load_ms`;
`TorchRunner(checkpoint)` is the PyTorch reference."""

from __future__ import annotations

from pathlib import Path

from neometer.errors import NeometerError
from neometer.runtime.base import Runner, read_card
from neometer.runtime.torch_runner import TorchRunner

RUNNERS = {
    "onnx": "neometer.runtime.onnx_runner:OnnxRunner",
    "tflite": "neometer.runtime.tflite_runner:TFLiteRunner",
    "executorch": "neometer.runtime.executorch_runner:ExecuTorchRunner",
    "coreml": "neometer.runtime.coreml_runner:CoreMLRunner",
}


def runner_class(fmt: str):
    import importlib

    if fmt not in RUNNERS:
        raise NeometerError(f"no runtime for format '{fmt}': known formats are {', '.join(RUNNERS)}")
    module, _, name = RUNNERS[fmt].partition(":")
    return getattr(importlib.import_module(module), name)


def load_runner(card_path: str | Path, threads: int = 1) -> Runner:
    """A model card (or its artifact) -> the runner of its format, loaded and ready."""
    card, card_path, _ = read_card(card_path)
    return runner_class(card.get("format", "?"))(card_path, threads=threads)


__all__ = ["Runner", "TorchRunner", "load_runner", "runner_class", "read_card", "RUNNERS"]
