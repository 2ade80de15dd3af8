"""Core ML: an ML Program .mlpackage with fp16 compute, optionally int8 weights
(coremltools.optimize, per-channel symmetric), optionally an image input (ct.ImageType) so iOS
feeds a camera CVPixelBuffer directly. ImageType's single scale cannot hold ImageNet's
per-channel std, so the image variant takes pixels / 255 and the exact (x - mean) / std runs
inside the model. Converting and saving work on Linux; prediction only on macOS, so here the
export check reads the spec back (inputs, outputs, metadata, op histogram, weight types)."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path

from neometer.export.common import ConverterError, ExportJob, require, version

DETERMINISM_KEYS = ("com.github.apple.coremltools.conversion_date",)


def _normalizing(model, spec):
    import torch
    from torch import nn

    class ImageNormalize(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, x):  # x: RGB in [0, 1] (ImageType scale 1/255)
            return self.net((x - self.mean) / self.std)

    return ImageNormalize(model).eval()


def _describe(mlmodel, job: ExportJob, input_name: str, image: bool) -> None:
    import neometer

    cfg = job.config
    outputs = cfg.get("outputs") or []
    units = ", ".join(f"{o['name']} [{o.get('unit', '')}]" for o in outputs)
    what = "infant body-probability mask" if job.role == "segmenter" else "newborn body length and weight"
    mlmodel.short_description = (f"neometer {job.role}: {what} from one letterboxed {job.size}x{job.size} "
                                 f"photo ({cfg.get('backbone', '?')}, task {cfg.get('task', '?')})")
    mlmodel.author = "neometer"
    mlmodel.license = cfg.get("license", "Apache-2.0")
    mlmodel.version = str(cfg.get("version", getattr(neometer, "__version__", "0.1.0")))
    s = job.spec
    if image:
        mlmodel.input_description[input_name] = (f"RGB image {job.size}x{job.size}, letterboxed (long side, pad "
                                                 f"{s.pad_value}), background zeroed when background_removal=mask")
    else:
        mlmodel.input_description[input_name] = (f"float32 1x3x{job.size}x{job.size} NCHW, RGB/255 then "
                                                 f"(x - {list(s.mean)}) / {list(s.std)}")
    mlmodel.output_description["output"] = f"outputs in order: {units}" if units else "model output"
    meta = mlmodel.user_defined_metadata
    meta["neometer.role"] = job.role
    meta["neometer.outputs"] = json.dumps(outputs)
    meta["neometer.units"] = ",".join(o.get("unit", "") for o in outputs)
    meta["neometer.preprocessing"] = json.dumps(s.to_dict(), sort_keys=True)
    for key in DETERMINISM_KEYS:
        if key in meta:
            del meta[key]


def export_coreml(job: ExportJob, target, path: Path) -> dict:
    require("coremltools", "coremltools")
    import coremltools as ct
    import numpy as np
    import torch

    image = job.coreml_image_input
    model = _normalizing(job.model, job.spec) if image else job.model
    example = job.example()
    if image:
        example = example * torch.tensor(job.spec.std).view(1, 3, 1, 1) + torch.tensor(job.spec.mean).view(1, 3, 1, 1)
    shape = (1, 3, job.size, job.size)
    input_name = "image" if image else "input"
    ct_input = (ct.ImageType(name=input_name, shape=shape, scale=1.0 / 255.0, color_layout=ct.colorlayout.RGB)
                if image else ct.TensorType(name=input_name, shape=shape, dtype=np.float32))
    step = "torch.export"
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # coremltools' pass bars
            program = torch.export.export(model, (example,)).run_decompositions({})
            step = "coremltools convert (mlprogram, fp16)"
            mlmodel = ct.convert(program, inputs=[ct_input],
                                 outputs=[ct.TensorType(name="output", dtype=np.float32)],
                                 convert_to="mlprogram", compute_precision=ct.precision.FLOAT16,
                                 minimum_deployment_target=ct.target.iOS16)
            if target.precision == "int8":
                step = "coremltools.optimize int8 weight quantization"
                import coremltools.optimize.coreml as cto

                cfg = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
                    mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=0))
                mlmodel = cto.linear_quantize_weights(mlmodel, cfg)
            step = "metadata"
            _describe(mlmodel, job, input_name, image)
            step = "save"
            mlmodel.save(str(path))
    except Exception as exc:
        raise ConverterError(step, exc) from exc
    with torch.no_grad():
        out_shape = list(job.model(job.example()).shape)
    return {"converter": {"name": "coremltools", "version": version("coremltools")},
            "input": {"name": input_name, "shape": list(shape), "layout": "NCHW",
                      "dtype": "uint8" if image else "float32", "kind": "image" if image else "tensor"},
            "output_tensor": {"name": "output", "shape": out_shape, "layout": "NCHW" if len(out_shape) == 4 else "NC"},
            "versions": {"torch": version("torch"), "coremltools": version("coremltools")}}


def inspect_package(path: str | Path) -> dict:
    """What Linux can check of a .mlpackage: I/O, metadata, op histogram, weight types."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    desc = spec.description

    def feature(f):
        kind = f.type.WhichOneof("Type")
        if kind == "multiArrayType":
            arr = f.type.multiArrayType
            dtype = {65568: "float32", 65552: "float16", 131104: "int32"}.get(arr.dataType, str(arr.dataType))
            return {"name": f.name, "kind": "tensor", "shape": list(arr.shape), "dtype": dtype,
                    "description": f.shortDescription}
        if kind == "imageType":
            img = f.type.imageType
            return {"name": f.name, "kind": "image", "shape": [1, 3, img.height, img.width],
                    "description": f.shortDescription}
        return {"name": f.name, "kind": kind, "description": f.shortDescription}

    ops = Counter()
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                ops[op.type] += 1
    meta = desc.metadata
    return {
        "spec_version": spec.specificationVersion,
        "model_type": spec.WhichOneof("Type"),
        "inputs": [feature(f) for f in desc.input],
        "outputs": [feature(f) for f in desc.output],
        "metadata": {"description": meta.shortDescription, "author": meta.author, "license": meta.license,
                     "version": meta.versionString, "user_defined": dict(meta.userDefined)},
        "ops": dict(sorted(ops.items())),
        "int8_weight_ops": sum(v for k, v in ops.items() if k.startswith("constexpr_")),
    }
