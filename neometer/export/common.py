"""What every exporter function receives: the model, its config and preprocessing, a batch-1
example, the calibration set, options, and a scratch folder for intermediate files."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from neometer.data.preprocess import PreprocessSpec
from neometer.errors import NeometerError


@dataclass
class ExportJob:
    model: object  # torch.nn.Module, float32, eval
    config: dict
    spec: PreprocessSpec
    calib: object  # neometer.export.calibration.Calibration
    workdir: Path  # scratch (intermediate ONNX, onnx2tf's SavedModel)
    coreml_image_input: bool = False
    cache: dict = field(default_factory=dict)  # one converter run serving several rows (onnx2tf)

    @property
    def role(self) -> str:
        return self.config.get("role", "regressor")

    @property
    def size(self) -> int:
        return int(self.spec.target_size)

    def output_rank(self) -> int:
        import torch

        with torch.no_grad():
            y = self.model(self.example())
        if isinstance(y, (tuple, list)):
            raise NeometerError("the model returns several tensors; export takes one output tensor "
                                "(a regressor's [height_cm, weight_kg] or a segmenter's mask)")
        return y.dim()

    def example(self):
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.calib.x[:1]))


class ConverterError(NeometerError):
    """A converter failed: names the step and carries the converter's own message."""

    def __init__(self, step: str, exc: BaseException):
        msg = str(exc).strip().splitlines()
        tail = "\n".join(msg[-6:]) if msg else type(exc).__name__
        super().__init__(f"{step} failed: {type(exc).__name__}: {tail}")
        self.step = step


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def require(module: str, package: str, extra: str = "export") -> None:
    """A clear message, with the install command, when an optional converter is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise NeometerError(f"the converter package '{package}' is not installed; install it with "
                            f"`.venv/bin/pip install {package}` (or `pip install -e '.[{extra}]'`)")
