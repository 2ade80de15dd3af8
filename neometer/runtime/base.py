"""One interface for every runtime: `Runner.predict(x)` takes the float32 NCHW normalised batch
PyTorch takes and returns float32 outputs in the model's units. Layout (NHWC), int8 input/output
quantization and batch-1 models are the runner's business, read from the model card."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from neometer.errors import NeometerError


def read_card(path: str | Path) -> tuple[dict, Path, Path]:
    """A card path or its artifact path -> (card, card path, artifact path)."""
    path = Path(path)
    card_path = path if path.name.endswith(".json") else Path(str(path) + ".json")  # artifacts never end in .json
    if not card_path.is_file():
        raise NeometerError(f"{card_path}: model card not found; export the model with `neometer export` "
                            "(every artifact has <artifact>.json beside it)")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as exc:
        raise NeometerError(f"{card_path}: not valid JSON ({exc})") from None
    artifact = card_path.parent / card.get("artifact", {}).get("file", card_path.name[:-5])
    if not artifact.exists():
        raise NeometerError(f"{artifact}: the artifact named by {card_path.name} is missing; re-run the export")
    return card, card_path, artifact


class Runner:
    """Base class. Subclasses implement `_load()` and `_run(x)` for the model's own batch."""

    format = "?"

    def __init__(self, card_path: str | Path, threads: int = 1):
        self.card, self.card_path, self.artifact = read_card(card_path)
        self.threads = int(threads)
        t0 = time.perf_counter()
        self._load()
        self.load_ms = (time.perf_counter() - t0) * 1000.0

    # --- the card's description of the I/O -------------------------------------------------
    @property
    def layout(self) -> str:
        return self.card["input"].get("layout", "NCHW")

    @property
    def fixed_batch(self) -> int | None:
        shape = self.card["input"].get("shape") or []
        return int(shape[0]) if shape and shape[0] and shape[0] > 0 else None

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in sorted(self.card["outputs"], key=lambda o: o["index"])]

    def _to_model_input(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        if self.layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        return x

    def _from_model_output(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, np.float32)
        if y.ndim == 4 and self.card.get("output_tensor", {}).get("layout") == "NHWC":
            y = y.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y)

    # --- the interface -----------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 NCHW normalised batch -> float32 (N, n_outputs) (or N x C x H x W for a mask)."""
        x = np.asarray(x, np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != 3:
            raise NeometerError(f"{self.artifact.name}: predict expects an N x 3 x H x W batch, got {x.shape}")
        expected = self.card["input"]["shape"]
        hw = expected[1:3] if self.layout == "NHWC" else expected[2:4]
        if list(x.shape[2:]) != list(hw):
            raise NeometerError(f"{self.artifact.name}: input is {x.shape[2]}x{x.shape[3]} but the model takes "
                                f"{hw[0]}x{hw[1]}; preprocess with the card's target_size")
        batch = self.fixed_batch
        if batch and x.shape[0] != batch:  # batch-1 models: loop
            outs = [self._from_model_output(self._run(self._to_model_input(x[i:i + batch])))
                    for i in range(0, x.shape[0], batch)]
            return np.concatenate(outs, 0)
        return self._from_model_output(self._run(self._to_model_input(x)))

    def _load(self) -> None:
        raise NotImplementedError

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def quantize(x: np.ndarray, q: dict | None, dtype) -> np.ndarray:
    """float -> int with the tensor's (scale, zero point): round half to even, as TFLite does."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / q["scale"] + q["zero_point"]), info.min, info.max).astype(dtype)


def dequantize(x: np.ndarray, q: dict | None) -> np.ndarray:
    return (x.astype(np.float32) - np.float32(q["zero_point"])) * np.float32(q["scale"])
