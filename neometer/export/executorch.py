"""ExecuTorch: a .pte lowered to XNNPACK (fp32, or int8 through pt2e with the XNNPACK quantizer,
symmetric per-channel, calibrated on our frames), or to the Core ML delegate (Apple only)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from neometer.export.common import ConverterError, ExportJob, require, version


def _quantize_pt2e(model, example, calib):
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = torch.export.export(model, (example,)).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(calib.shape[0]):
            prepared(torch.from_numpy(calib[i:i + 1]))
    return convert_pt2e(prepared)


def _partitioner(route: str):
    if route == "coreml":
        require("coremltools", "coremltools")
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner

        return CoreMLPartitioner()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return XnnpackPartitioner()


def export_executorch(job: ExportJob, target, path: Path) -> dict:
    require("executorch", "executorch")
    import torch
    from executorch.exir import to_edge_transform_and_lower

    example = job.example()
    step = "torch.export"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = job.model
            if target.precision == "int8":
                step = "pt2e int8 quantization (XNNPACKQuantizer)"
                model = _quantize_pt2e(model, example, job.calib.x)
            step = "torch.export"
            program = torch.export.export(model, (example,))
            step = f"lowering to {target.route}"
            edge = to_edge_transform_and_lower(program, partitioner=[_partitioner(target.route)])
            step = "to_executorch"
            buffer = edge.to_executorch().buffer
    except Exception as exc:
        raise ConverterError(f"ExecuTorch {step}", exc) from exc
    path.write_bytes(buffer)
    with torch.no_grad():
        out_shape = list(job.model(example).shape)
    return {"converter": {"name": "executorch", "version": version("executorch"), "delegate": target.route},
            "input": {"name": "x", "shape": [1, 3, job.size, job.size], "layout": "NCHW", "dtype": "float32"},
            "output_tensor": {"name": "output", "shape": out_shape, "layout": "NCHW" if len(out_shape) == 4 else "NC"},
            "versions": {"torch": version("torch"), "torchao": version("torchao")}}
