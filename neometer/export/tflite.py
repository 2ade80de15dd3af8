"""TFLite / LiteRT. Two converters, both NHWC input (what a camera buffer is):

- litert-torch (torch.export -> TFLite): fp32; matched PyTorch to 1e-6 on MobileNetV2.
- onnx2tf (ONNX -> TF -> TFLite): fp32, fp16 (weights) and full-integer int8 with int8 or
  float I/O, calibrated on our own preprocessed frames. (litert-torch's PT2E int8 route lost
  accuracy on MobileNetV2, 0.35 against 0.07 for the fake-quantized graph, so int8 ships from
  onnx2tf, which stayed at the fake-quant level.)
One onnx2tf run writes every precision; `job.cache` keeps it for the other rows."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np

from neometer.export.common import ConverterError, ExportJob, require, version


def _tensor_info(path: Path) -> tuple[dict, dict]:
    """(input, output_tensor) card blocks read back from the flatbuffer itself."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    i, o = it.get_input_details()[0], it.get_output_details()[0]

    def q(d):
        scale, zero = d["quantization"]
        return {"scale": float(scale), "zero_point": int(zero)} if scale else None

    inp = {"name": i["name"], "shape": [int(v) for v in i["shape"]], "layout": "NHWC",
           "dtype": np.dtype(i["dtype"]).name, "quantization": q(i)}
    out_shape = [int(v) for v in o["shape"]]
    out = {"name": o["name"], "shape": out_shape, "layout": "NHWC" if len(out_shape) == 4 else "NC",
           "dtype": np.dtype(o["dtype"]).name, "quantization": q(o)}
    return inp, out


def export_litert_torch(job: ExportJob, target, path: Path) -> dict:
    require("litert_torch", "litert-torch")
    import litert_torch

    example = job.example()
    wrapped = litert_torch.to_channel_last_io(job.model, args=[0], outputs=[0] if job.output_rank() == 4 else None).eval()
    nhwc = example.permute(0, 2, 3, 1).contiguous()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            edge = litert_torch.convert(wrapped, (nhwc,))
            edge.export(str(path))
    except Exception as exc:  # the converter raises many kinds
        raise ConverterError("litert-torch convert", exc) from exc
    inp, out = _tensor_info(path)
    return {"converter": {"name": "litert-torch", "version": version("litert-torch")},
            "input": inp, "output_tensor": out,
            "versions": {"ai-edge-litert": version("ai-edge-litert"), "torch": version("torch")}}


def _run_onnx2tf(job: ExportJob) -> Path:
    """One onnx2tf run -> folder with model_float32/float16/integer_quant/full_integer_quant."""
    if "onnx2tf" in job.cache:
        return job.cache["onnx2tf"]
    require("onnx2tf", "onnx2tf")
    from neometer.export.onnx import onnx_bytes

    folder = job.workdir / "onnx2tf"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    onnx_path = job.workdir / "model.onnx"
    onnx_path.write_bytes(onnx_bytes(job.model, job.example(), dynamic_batch=False))
    calib = job.calib.unnormalized_nhwc(job.spec)
    calib_path = job.workdir / "calib_nhwc.npy"
    np.save(calib_path, calib)
    mean = np.asarray(job.spec.mean, np.float32).reshape(1, 1, 1, 3).tolist()
    std = np.asarray(job.spec.std, np.float32).reshape(1, 1, 1, 3).tolist()
    try:
        import onnx2tf
        import onnx2tf.onnx2tf as o2t_main

        # onnx2tf downloads a sample image set for its self-check when the input has a fixed
        # batch; give it our calibration frames instead so it never touches the network.
        o2t_main.download_test_image_data = lambda: calib.copy()
        with contextlib.redirect_stdout(io.StringIO()):
            onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(folder),
                            output_integer_quantized_tflite=True, quant_type="per-channel",
                            custom_input_op_name_np_data_path=[["input", str(calib_path), mean, std]],
                            input_quant_dtype="int8", output_quant_dtype="int8", non_verbose=True)
    except SystemExit as exc:  # onnx2tf exits on some errors
        raise ConverterError("onnx2tf convert", RuntimeError(f"onnx2tf exited with {exc.code}")) from None
    except Exception as exc:
        raise ConverterError("onnx2tf convert", exc) from exc
    job.cache["onnx2tf"] = folder
    return folder


_ONNX2TF_FILE = {("fp32", "float"): "model_float32.tflite", ("fp16", "float"): "model_float16.tflite",
                 ("int8", "float"): "model_integer_quant.tflite", ("int8", "int8"): "model_full_integer_quant.tflite"}


def export_onnx2tf(job: ExportJob, target, path: Path) -> dict:
    folder = _run_onnx2tf(job)
    io_kind = target.io if target.precision == "int8" else "float"
    src = folder / _ONNX2TF_FILE[(target.precision, io_kind)]
    if not src.is_file():
        raise ConverterError("onnx2tf convert", FileNotFoundError(f"onnx2tf did not write {src.name}"))
    shutil.copyfile(src, path)
    inp, out = _tensor_info(path)
    return {"converter": {"name": "onnx2tf", "version": version("onnx2tf")},
            "input": inp, "output_tensor": out,
            "versions": {"tensorflow": version("tensorflow"), "ai-edge-litert": version("ai-edge-litert"),
                         "torch": version("torch"), "onnx": version("onnx")}}
