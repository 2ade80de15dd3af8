"""The PyTorch reference every artifact is compared against."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


class TorchRunner:
    format = "pytorch"

    def __init__(self, checkpoint_path: str | Path | None = None, threads: int = 1, model=None, config=None):
        import torch

        from neometer.models.checkpoint import load_checkpoint

        t0 = time.perf_counter()
        if model is None:
            model, config = load_checkpoint(checkpoint_path)
        self.model, self.config = model.eval(), config or {}
        self.threads = threads
        self.load_ms = (time.perf_counter() - t0) * 1000.0
        self._torch = torch

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self.config.get("outputs", [])]

    def predict(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        prev = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                y = self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        finally:
            torch.set_num_threads(prev)
        if isinstance(y, (tuple, list)):
            y = y[0]
        return y.float().numpy()
