"""Runners: one interface over every runtime; layout, int8 quantization and batch-1 looping
come from the artifact and its card; bad paths give clear errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from neometer.errors import NeometerError
from neometer.export.targets import find_target, select_targets

torch.set_num_threads(1)
IMG = 64


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny regressor exported to ONNX and (one onnx2tf run) TFLite fp32 + int8 with int8 I/O."""
    from neometer.data.preprocess import PreprocessSpec
    from neometer.export.calibration import synthetic_calibration
    from neometer.export.fixtures import make_tiny_regressor
    from neometer.export.pipeline import export_checkpoint

    root = tmp_path_factory.mktemp("rt")
    ckpt = make_tiny_regressor(root / "regressor.safetensors", img_size=IMG, seed=3)
    calib = synthetic_calibration(6, PreprocessSpec(target_size=IMG), progress=False)
    rows = [find_target("onnx", "fp32")] + select_targets(["tflite"], ["fp32", "int8"], "onnx2tf", int8_io="int8")
    results = export_checkpoint(ckpt, rows, root / "export", calib=calib, progress=False)
    assert all(r.ok for r in results), [r.error for r in results]
    return ckpt, root / "export", calib


def test_load_runner_by_card_or_artifact(exported):
    from neometer.runtime import TorchRunner, load_runner
    from neometer.runtime.onnx_runner import OnnxRunner

    ckpt, out, calib = exported
    a = load_runner(out / "regressor_fp32.onnx.json")
    b = load_runner(out / "regressor_fp32.onnx", threads=2)
    assert isinstance(a, OnnxRunner) and isinstance(b, OnnxRunner) and b.threads == 2
    assert a.output_names == ["height_cm", "weight_kg"]
    ref = TorchRunner(ckpt).predict(calib.x)
    np.testing.assert_allclose(a.predict(calib.x), ref, atol=1e-3)
    np.testing.assert_allclose(a.predict(calib.x[0]), ref[:1], atol=1e-3)  # a single CHW image
    assert 45 < ref[:, 0].mean() < 55  # cm, the folded de-standardisation


def test_tflite_nhwc_batch1_and_int8_io(exported):
    from neometer.runtime import TorchRunner, load_runner

    ckpt, out, calib = exported
    ref = TorchRunner(ckpt).predict(calib.x)
    fp32 = load_runner(out / "regressor_fp32_onnx2tf.tflite.json")
    assert fp32.layout == "NHWC" and fp32.fixed_batch == 1
    np.testing.assert_allclose(fp32.predict(calib.x), ref, atol=1e-3)  # 6 images through batch 1
    int8 = load_runner(out / "regressor_int8.tflite.json")
    assert int8.inp["dtype"] == np.int8 and int8.out["dtype"] == np.int8
    card_q = int8.card["input"]["quantization"]
    assert card_q == {"scale": pytest.approx(int8.inp["quantization"][0]), "zero_point": int8.inp["quantization"][1]}
    got = int8.predict(calib.x)
    assert np.abs(got - ref).max() < find_target("tflite", "int8").tolerance_for("cm")
    assert not np.array_equal(got, ref)  # really quantized


def test_wrong_input_size_and_missing_card(exported, tmp_path):
    from neometer.runtime import load_runner

    _, out, _ = exported
    runner = load_runner(out / "regressor_fp32.onnx.json")
    with pytest.raises(NeometerError, match="takes 64x64"):
        runner.predict(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(NeometerError, match="model card not found"):
        load_runner(tmp_path / "nothing.tflite")
    card = json.loads((out / "regressor_fp32.onnx.json").read_text())
    (tmp_path / "x.onnx.json").write_text(json.dumps(dict(card, format="tensorrt")))
    (tmp_path / card["artifact"]["file"]).write_bytes(b"x")
    with pytest.raises(NeometerError, match="no runtime for format 'tensorrt'"):
        load_runner(tmp_path / "x.onnx.json")


def test_quantize_roundtrip():
    from neometer.runtime.base import dequantize, quantize

    q = {"scale": 0.02, "zero_point": -5}
    x = np.array([-3.0, -0.01, 0.0, 0.5, 100.0], np.float32)
    i8 = quantize(x, q, np.int8)
    assert i8.dtype == np.int8 and i8[-1] == 127  # saturates
    np.testing.assert_allclose(dequantize(i8, q)[1:4], x[1:4], atol=0.011)
    assert dequantize(i8, q)[0] == pytest.approx((-128 + 5) * 0.02)  # saturates low too


@pytest.mark.skipif(sys.platform == "darwin", reason="Linux behaviour")
def test_coreml_runner_explains_linux(tmp_path):
    from neometer.runtime.coreml_runner import CoreMLRunner

    (tmp_path / "m.mlpackage").mkdir()
    (tmp_path / "m.mlpackage.json").write_text(json.dumps({"format": "coreml", "artifact": {"file": "m.mlpackage"},
                                                           "input": {"shape": [1, 3, 8, 8]}}))
    with pytest.raises(NeometerError, match="only on macOS"):
        CoreMLRunner(tmp_path / "m.mlpackage.json")
