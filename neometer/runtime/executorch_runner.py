from __future__ import annotations

import numpy as np

from neometer.errors import NeometerError
from neometer.runtime.base import Runner


class ExecuTorchRunner(Runner):
    format = "executorch"

    def _load(self) -> None:
        import torch
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime

        if self.card.get("converter", {}).get("route") == "coreml":
            import sys
            if sys.platform != "darwin":
                raise NeometerError(f"{self.artifact.name}: the ExecuTorch Core ML delegate runs only on macOS/iOS")
        # Thread count only takes effect for programs loaded after the pool is reset.
        _unsafe_reset_threadpool(self.threads)
        self.program = Runtime.get().load_program(self.artifact)
        self.method = self.program.load_method("forward")
        self._torch = torch

    @property
    def fixed_batch(self):
        return int(self.card["input"]["shape"][0])

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = self.method.execute([self._torch.from_numpy(x)])
        return out[0].float().numpy()
