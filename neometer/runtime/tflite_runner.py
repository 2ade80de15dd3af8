"""LiteRT (TFLite) through ai-edge-litert. Quantization parameters are read from the
interpreter's own tensor details (authoritative); the card carries the same numbers for the
app shells."""

from __future__ import annotations

import numpy as np

from neometer.runtime.base import Runner, dequantize, quantize


class TFLiteRunner(Runner):
    format = "tflite"

    def _load(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(self.artifact), num_threads=self.threads)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]
        self.out = self.interpreter.get_output_details()[0]

    @property
    def fixed_batch(self):
        return int(self.inp["shape"][0])

    @staticmethod
    def _q(detail) -> dict:
        scale, zero = detail["quantization"]
        return {"scale": float(scale), "zero_point": int(zero)}

    def _run(self, x: np.ndarray) -> np.ndarray:
        dtype = self.inp["dtype"]
        if dtype in (np.int8, np.uint8):
            x = quantize(x, self._q(self.inp), dtype)
        self.interpreter.set_tensor(self.inp["index"], x.astype(dtype, copy=False))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.out["index"])
        if self.out["dtype"] in (np.int8, np.uint8):
            y = dequantize(y, self._q(self.out))
        return y
