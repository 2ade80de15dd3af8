"""Model cards validate against schemas/model_card.schema.json, carry what the shells need,
and a bad card is rejected with every problem listed."""

from __future__ import annotations

import json

import pytest
import torch

from neometer.errors import NeometerError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def onnx_card(tmp_path_factory):
    from neometer.export.cli import export_all
    from neometer.export.fixtures import make_tiny_regressor
    from neometer.export.targets import find_target

    root = tmp_path_factory.mktemp("card")
    ckpt = make_tiny_regressor(root / "m" / "regressor.safetensors", img_size=64)
    assert export_all(ckpt, None, [find_target("onnx", "fp32")], root / "out", calib=3) == 0
    return root / "out" / "regressor_fp32.onnx.json", ckpt


def test_card_fields_and_schema(onnx_card):
    from neometer.export.modelcard import artifact_sha256, validate_card
    from neometer.models.checkpoint import sha256_file

    path, ckpt = onnx_card
    card = json.loads(path.read_text())
    validate_card(card)
    assert card["artifact"]["file"] == "regressor_fp32.onnx"
    assert card["artifact"]["sha256"] == artifact_sha256(path.parent / "regressor_fp32.onnx")
    assert card["model"]["source_checkpoint_sha256"] == sha256_file(ckpt)
    assert [(o["name"], o["unit"], o["index"]) for o in card["outputs"]] == [("height_cm", "cm", 0), ("weight_kg", "kg", 1)]
    assert card["input"]["layout"] == "NCHW" and card["input"]["shape"] == [1, 3, 64, 64]
    pre = card["preprocessing"]
    assert pre["target_size"] == 64 and pre["background_removal"] == "mask" and pre["channel_order"] == "RGB"
    assert card["converter"]["route"] == "torch.onnx" and card["versions"]["onnxruntime"]
    assert card["export_check"]["method"] == "runtime" and card["export_check"]["passed"]
    assert card["export_check"]["outputs"]["height_cm"]["tolerance"] == 0.01
    from neometer.measure.gates import QualityThresholds

    assert card["quality"] == QualityThresholds().to_dict()  # the gates the shells apply


def test_bad_card_lists_every_problem(onnx_card):
    from neometer.export.modelcard import validate_card

    card = json.loads(onnx_card[0].read_text())
    del card["input"]
    card["precision"] = "int4"
    card["preprocessing"]["std"] = [0.2, 0.0, 0.2]
    with pytest.raises(NeometerError) as e:
        validate_card(card, "x.json")
    problems = "\n".join(e.value.problems)
    assert "input" in problems and "int4" in problems and "std" in problems


def test_update_card_and_directory_hash(onnx_card, tmp_path):
    from neometer.export.modelcard import artifact_sha256, update_card

    path, _ = onnx_card
    card = update_card(path, parity={"passed": True, "max_abs_cm": 0.0})
    assert json.loads(path.read_text())["parity"] == card["parity"] == {"passed": True, "max_abs_cm": 0.0}
    with pytest.raises(NeometerError):
        update_card(path, precision="int4")  # never written when invalid
    assert json.loads(path.read_text())["precision"] == "fp32"
    pkg = tmp_path / "m.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Data" / "w.bin").write_bytes(b"abc")
    h = artifact_sha256(pkg)
    (pkg / "Data" / "w.bin").write_bytes(b"abd")
    assert artifact_sha256(pkg) != h
