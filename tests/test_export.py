"""Export: every target of the table exports a tiny MobileNetV2 (width 0.35, 64 px) and the
artifact runs in its own runtime within its tolerance on frames it was not checked on; bad
input gives clear errors; a failed export leaves nothing that looks complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neometer.errors import NeometerError
from neometer.export.targets import TARGETS, find_target, select_targets

torch.set_num_threads(1)
IMG = 64


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from neometer.export.fixtures import make_tiny_regressor

    return make_tiny_regressor(tmp_path_factory.mktemp("ckpt") / "regressor.safetensors", img_size=IMG)


@pytest.fixture(scope="module")
def calib():
    from neometer.data.preprocess import PreprocessSpec
    from neometer.export.calibration import synthetic_calibration

    return synthetic_calibration(8, PreprocessSpec(target_size=IMG), progress=False)


@pytest.fixture(scope="module")
def fresh_frames():
    """Frames the export check did not see (other synthetic seeds, the real preprocessing)."""
    from neometer.data.preprocess import PreprocessSpec, preprocess
    from neometer.synth.render import sample_frame

    spec = PreprocessSpec(target_size=IMG)
    return np.stack([preprocess(*sample_frame(seed=500 + s, width=240, height=180)[:2], spec) for s in range(3)])


def _export(ckpt, calib, out, targets, **kw):
    from neometer.export.pipeline import export_checkpoint

    results = export_checkpoint(ckpt, targets, out, calib=calib, progress=False, **kw)
    for r in results:
        assert r.ok, r.error
    return results


def _assert_parity(card_path, ckpt, x, target):
    from neometer.runtime import TorchRunner, load_runner

    runner = load_runner(card_path)
    ref = TorchRunner(ckpt).predict(x)
    got = runner.predict(x)
    assert got.shape == ref.shape == (len(x), 2) and got.dtype == np.float32
    for i, unit in enumerate(("cm", "kg")):
        assert np.abs(got[:, i] - ref[:, i]).max() <= target.tolerance_for(unit), (card_path.name, unit)
    return runner


def _card(path):
    return json.loads((path.parent / f"{path.name}.json").read_text())


# --- the table and the selection ------------------------------------------------------------

def test_select_targets_defaults_and_errors():
    every = select_targets(["all"])
    assert {t.format for t in every} == {"onnx", "tflite", "executorch", "coreml"}
    assert all(t.default for t in every)
    assert [t.route for t in select_targets(["tflite"], ["fp32"], "onnx2tf")] == ["onnx2tf"]
    assert {t.io for t in select_targets(["tflite"], ["int8"], int8_io="both")} == {"int8", "float"}
    with pytest.raises(NeometerError) as e:
        select_targets(["tflight", "onnx"], ["int4"])
    text = str(e.value)
    assert "tflight" in text and "int4" in text  # both problems reported at once
    with pytest.raises(NeometerError, match="onnx cannot export int8: it supports fp32"):
        select_targets(["onnx"], ["int8"], explicit_precision=True)
    assert select_targets(["onnx"], ["fp32", "int8"]) == [find_target("onnx", "fp32")]


def test_every_row_resolves_and_names_are_unique():
    names = [t.artifact_name("regressor") for t in TARGETS]
    assert len(set(names)) == len(names)
    for t in TARGETS:
        assert callable(t.exporter_fn()) and t.runner_cls().format == t.format
        assert t.tolerance["cm"] > 0 and t.tolerance["kg"] > 0


def test_cli_list_and_user_errors(tmp_path, capsys):
    from neometer.cli import main

    assert main(["export", "--list"]) == 0
    assert "regressor_int8.tflite" in capsys.readouterr().out
    assert main(["export", "--weights", str(tmp_path / "nope.safetensors"), "--target", "onnx"]) == 2
    assert "nope.safetensors not found" in capsys.readouterr().err
    assert main(["export", "--target", "onnx", "--precision", "int8"]) == 2
    assert "cannot export int8" in capsys.readouterr().err


# --- each target, in its own runtime ---------------------------------------------------------

def test_onnx_single_file_parity_and_deterministic(ckpt, calib, fresh_frames, tmp_path):
    import onnx

    t = find_target("onnx", "fp32")
    (r,) = _export(ckpt, calib, tmp_path / "a", [t])
    proto = onnx.load(str(r.path))
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in proto.graph.initializer)
    assert list(tmp_path.joinpath("a").glob("*.data")) == []
    _assert_parity(r.path.parent / f"{r.path.name}.json", ckpt, fresh_frames, t)
    card = _card(r.path)
    assert card["export_check"]["passed"] and card["export_check"]["n_images"] == 8
    assert card["calibration"] is None  # only int8 records its calibration set
    (r2,) = _export(ckpt, calib, tmp_path / "b", [t])
    assert r.path.read_bytes() == r2.path.read_bytes()


def test_tflite_litert_torch_fp32(ckpt, calib, fresh_frames, tmp_path):
    t = find_target("tflite", "fp32", "litert-torch")
    (r,) = _export(ckpt, calib, tmp_path, [t])
    card = _card(r.path)
    assert card["input"]["layout"] == "NHWC" and card["input"]["shape"] == [1, IMG, IMG, 3]
    runner = _assert_parity(r.path, ckpt, fresh_frames, t)  # 3 images through a batch-1 model
    assert runner.load_ms > 0


def test_tflite_onnx2tf_every_precision(ckpt, calib, fresh_frames, tmp_path):
    rows = select_targets(["tflite"], ["fp32", "fp16", "int8"], "onnx2tf", int8_io="both")
    results = _export(ckpt, calib, tmp_path, rows)
    names = sorted(r.path.name for r in results)
    assert names == ["regressor_fp16.tflite", "regressor_fp32_onnx2tf.tflite", "regressor_int8.tflite",
                     "regressor_int8_floatio.tflite"]
    for r in results:
        _assert_parity(r.path, ckpt, fresh_frames, r.target)
        card = _card(r.path)
        if r.target.precision == "int8":
            assert card["calibration"]["count"] == 8 and card["calibration"]["sha256"] == calib.sha256
    int8 = _card(tmp_path / "regressor_int8.tflite")
    assert int8["input"]["dtype"] == "int8" and int8["input"]["quantization"]["scale"] > 0
    assert int8["outputs"][0]["quantization"]["scale"] > 0
    assert _card(tmp_path / "regressor_int8_floatio.tflite")["input"]["dtype"] == "float32"
    fp16, fp32 = (tmp_path / "regressor_fp16.tflite").stat().st_size, (tmp_path / "regressor_fp32_onnx2tf.tflite").stat().st_size
    assert fp16 < 0.7 * fp32


@pytest.mark.parametrize("precision", ["fp32", pytest.param("int8", marks=pytest.mark.slow)])
def test_executorch_xnnpack(ckpt, calib, fresh_frames, tmp_path, precision):
    t = find_target("executorch", precision, "xnnpack")
    (r,) = _export(ckpt, calib, tmp_path, [t])
    _assert_parity(r.path, ckpt, fresh_frames, t)
    card = _card(r.path)
    assert card["converter"]["delegate"] == "xnnpack"
    if precision == "int8":
        assert card["calibration"]["count"] == 8


@pytest.mark.slow
def test_coreml_spec_metadata_and_int8(ckpt, calib, tmp_path):
    from neometer.export.coreml import inspect_package

    rows = select_targets(["coreml"], ["fp16", "int8"])
    results = _export(ckpt, calib, tmp_path, rows, coreml_image_input=False)
    info = {r.target.precision: inspect_package(r.path) for r in results}
    for prec, i in info.items():
        assert i["model_type"] == "mlProgram"
        assert i["inputs"] == [dict(i["inputs"][0], name="input", shape=[1, 3, IMG, IMG], dtype="float32")]
        assert [o["name"] for o in i["outputs"]] == ["output"]
        assert "height_cm [cm]" in i["outputs"][0]["description"]
        md = i["metadata"]
        assert md["license"] and md["version"] and "newborn" in md["description"]
        assert json.loads(md["user_defined"]["neometer.outputs"])[1]["unit"] == "kg"
        assert i["ops"].get("conv", 0) > 10
    assert info["fp16"]["int8_weight_ops"] == 0 and info["int8"]["int8_weight_ops"] > 10
    card = _card(results[1].path)
    assert card["export_check"]["method"] in ("spec", "runtime") and card["export_check"]["passed"]


def test_coreml_image_input(ckpt, calib, tmp_path):
    from neometer.export.coreml import inspect_package

    (r,) = _export(ckpt, calib, tmp_path, [find_target("coreml", "fp16")], coreml_image_input=True)
    i = inspect_package(r.path)
    assert i["inputs"][0]["kind"] == "image" and i["inputs"][0]["shape"] == [1, 3, IMG, IMG]
    # ImageNet mean/std run inside the model (ImageType's scalar scale cannot hold per-channel std)
    assert i["ops"].get("sub", 0) >= 1 and i["ops"].get("real_div", 0) + i["ops"].get("mul", 0) >= 1
    assert _card(r.path)["input"]["kind"] == "image"


# --- failures --------------------------------------------------------------------------------

def test_failed_converter_leaves_nothing(ckpt, calib, tmp_path, monkeypatch):

    import neometer.export.onnx as onnx_mod

    def broken(job, target, path):
        path.write_bytes(b"half an artifact")
        raise RuntimeError("simulated converter crash in step X")

    monkeypatch.setattr(onnx_mod, "export_onnx", broken)
    from neometer.export.pipeline import export_checkpoint

    (r,) = export_checkpoint(ckpt, [find_target("onnx", "fp32")], tmp_path, calib=calib, progress=False)
    assert not r.ok and "simulated converter crash in step X" in r.error
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_failed_check_leaves_previous_artifact_untouched(ckpt, calib, tmp_path, monkeypatch):
    """An artifact whose outputs disagree with PyTorch is rejected; the good export from before stays."""
    import neometer.export.onnx as onnx_mod
    from neometer.export.pipeline import export_checkpoint

    t = find_target("onnx", "fp32")
    (good,) = _export(ckpt, calib, tmp_path, [t])
    before = good.path.read_bytes()
    real = onnx_mod.export_onnx

    def perturbed(job, target, path):
        with torch.no_grad():
            job.model.classifier[1].bias.add_(1.0)  # 1 cm off: far outside the fp32 tolerance
        try:
            return real(job, target, path)
        finally:
            with torch.no_grad():
                job.model.classifier[1].bias.sub_(1.0)

    monkeypatch.setattr(onnx_mod, "export_onnx", perturbed)
    (bad,) = export_checkpoint(ckpt, [t], tmp_path, calib=calib, progress=False)
    assert not bad.ok and "export check failed" in bad.error
    assert good.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("export_summary")) == \
        ["regressor_fp32.onnx", "regressor_fp32.onnx.json"]


def test_missing_converter_names_install_command(monkeypatch):
    import importlib.util

    from neometer.export.common import require

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx2tf" else real(name, *a))
    with pytest.raises(NeometerError, match="pip install onnx2tf"):
        require("onnx2tf", "onnx2tf")


def test_segmenter_pipeline_cards_link(ckpt, calib, tmp_path):
    """Regressor and segmenter export side by side; each card names its partner; the segmenter
    is calibrated without background removal and outputs a 1x1xSxS probability."""
    from neometer.export.cli import export_all
    from neometer.export.fixtures import make_tiny_segmenter
    from neometer.runtime import TorchRunner, load_runner

    seg = make_tiny_segmenter(tmp_path / "seg" / "segmenter.safetensors", img_size=IMG)
    out = tmp_path / "out"
    assert export_all(ckpt, seg, [find_target("onnx", "fp32")], out, calib=4) == 0
    reg_card, seg_card = _card(out / "regressor_fp32.onnx"), _card(out / "segmenter_fp32.onnx")
    assert reg_card["pipeline"] == {"regressor": "regressor_fp32.onnx", "segmenter": "segmenter_fp32.onnx"}
    assert seg_card["pipeline"] == reg_card["pipeline"]
    assert seg_card["role"] == "segmenter" and seg_card["outputs"][0]["unit"] == "probability"
    assert seg_card["preprocessing"]["background_removal"] == "none"
    x = np.random.default_rng(0).normal(size=(2, 3, IMG, IMG)).astype(np.float32)
    got = load_runner(out / "segmenter_fp32.onnx.json").predict(x)
    assert got.shape == (2, 1, IMG, IMG)
    assert np.abs(got - TorchRunner(seg).predict(x)).max() < 1e-4
    summary = json.loads((out / "export_summary.json").read_text())
    assert {a["role"] for a in summary["artifacts"]} == {"regressor", "segmenter"}
    assert (out / "export_summary.png").stat().st_size > 1000
