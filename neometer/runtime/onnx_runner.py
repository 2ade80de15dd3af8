from __future__ import annotations

import numpy as np

from neometer.runtime.base import Runner


class OnnxRunner(Runner):
    format = "onnx"

    def _load(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.artifact), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @property
    def fixed_batch(self):
        dim = self.session.get_inputs()[0].shape[0]
        return dim if isinstance(dim, int) else None

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]
