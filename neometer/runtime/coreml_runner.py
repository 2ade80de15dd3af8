"""Core ML: prediction exists only on macOS; on Linux the package's spec is what can be checked
(see neometer.export.coreml.inspect_package)."""

from __future__ import annotations

import sys

import numpy as np

from neometer.errors import NeometerError
from neometer.runtime.base import Runner


class CoreMLRunner(Runner):
    format = "coreml"

    def _load(self) -> None:
        if sys.platform != "darwin":
            raise NeometerError(f"{self.artifact.name}: Core ML prediction exists only on macOS; on Linux the "
                                "export checks the package's spec instead (neometer.export.coreml.inspect_package)")
        import coremltools as ct

        self.model = ct.models.MLModel(str(self.artifact), compute_units=ct.ComputeUnit.CPU_ONLY)
        self.input_name = self.card["input"]["name"]
        self.output_tensor = self.card.get("output_tensor", {}).get("name") or self.card["outputs"][0]["tensor"]

    @property
    def fixed_batch(self):
        return 1

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.card["input"].get("kind") == "image":
            from PIL import Image

            pre = self.card["preprocessing"]
            mean, std = np.asarray(pre["mean"], np.float32), np.asarray(pre["std"], np.float32)
            u8 = np.clip(np.round((x[0].transpose(1, 2, 0) * std + mean) / pre["scale"]), 0, 255).astype(np.uint8)
            feed = Image.fromarray(u8)
        else:
            feed = x
        return np.asarray(self.model.predict({self.input_name: feed})[self.output_tensor], np.float32)
