"""ONNX: one self-contained file (weights inside), opset 17, dynamic batch."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from neometer.export.common import ExportJob, require, version

OPSET = 17


def onnx_bytes(model, example, dynamic_batch: bool = True) -> bytes:
    """The TorchScript-based exporter: deterministic and needs no onnxscript."""
    import torch

    buf = io.BytesIO()
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buf, input_names=["input"], output_names=["output"],
                          opset_version=OPSET, dynamic_axes=axes, dynamo=False, do_constant_folding=True)
    return buf.getvalue()


def export_onnx(job: ExportJob, target, path: Path) -> dict:
    require("onnx", "onnx")
    import onnx

    data = onnx_bytes(job.model, job.example(), dynamic_batch=True)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(data)
    out_shape = [d.dim_value or 1 for d in proto.graph.output[0].type.tensor_type.shape.dim]
    return {
        "converter": {"name": "torch.onnx", "version": version("torch"), "opset": OPSET},
        "input": {"name": "input", "shape": [1, 3, job.size, job.size], "layout": "NCHW", "dtype": "float32",
                  "dynamic_batch": True},
        "output_tensor": {"name": "output", "shape": out_shape, "layout": "NCHW" if len(out_shape) == 4 else "NC"},
        "versions": {"onnx": version("onnx"), "onnxruntime": version("onnxruntime")},
    }
