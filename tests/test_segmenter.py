"""The on-device segmenter: metrics on planted masks, the export contract (one S x S
probability output, ONNX == PyTorch), a tiny training run with its report, the ablation's
wiring, and the `neometer train-seg` command."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from neometer.errors import NeometerError
from neometer.evaluate import segmentation as segeval

torch.set_num_threads(1)
SIZE = 64


# --- planted data ---------------------------------------------------------------------------

def planted_table(n_infants: int = 6, frames: int = 8, size: int = SIZE, seed: int = 0):
    """A frame table of bright ellipses ("bodies") on dark noise, with exact masks and tags."""
    import cv2

    from neometer.data.cache import FrameTable
    from neometer.data.manifest import Recording
    from neometer.data.preprocess import PreprocessSpec

    rng = np.random.default_rng(seed)
    images, masks, rec, fidx, ids, hs, ws, recs = [], [], [], [], [], [], [], []
    for i in range(n_infants):
        h, w = 45 + 10 * rng.random(), 2 + 2 * rng.random()
        tags = (("clutter",), ("partial_body",), ())[i % 3]
        recs.append(Recording(row=i + 2, infant_id=f"i{i}", media=Path(f"/planted/{i}.mp4"), height_cm=h, weight_kg=w,
                              mask=Path(f"/planted/{i}_masks"), tags=tags))
        for f in range(frames):
            img = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
            m = np.zeros((size, size), np.uint8)
            centre = (int(size / 2 + rng.integers(-6, 6)), int(size / 2 + rng.integers(-6, 6)))
            cv2.ellipse(m, centre, (int(size * h / 200), int(size * 0.12)), float(rng.integers(0, 180)), 0, 360, 255, -1)
            img[m > 0] = (220, 170, 150)
            images.append(img)
            masks.append(m)
            rec.append(i)
            fidx.append(f)
            ids.append(f"i{i}")
            hs.append(h)
            ws.append(w)
    return FrameTable(np.stack(images), np.stack(masks), np.array(rec, np.int32), np.array(fidx, np.int32),
                      np.array(ids), np.array(hs, np.float32), np.array(ws, np.float32), recs, "planted", None,
                      PreprocessSpec(target_size=size), 2.0)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny CPU training run on the planted table (shared by the tests below)."""
    from neometer.train.segment import SegTrainConfig, train_segmenter

    table = planted_table()
    out = tmp_path_factory.mktemp("seg") / "run"
    cfg = SegTrainConfig(arch="lraspp_mobilenet_v3_small", width=0.5, img=SIZE, epochs=8, batch_size=8, folds=3,
                         lr=5e-3, device="cpu", progress=False, latency=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = train_segmenter(table, cfg, out, {"path": "planted", "sha256": "planted"}, log=lambda *_: None)
    return table, out, rep


# --- metrics on planted masks ----------------------------------------------------------------

def test_iou_on_planted_rectangles():
    a = np.zeros((20, 20), bool)
    b = np.zeros((20, 20), bool)
    a[0:10, 0:10] = True  # 100 px
    b[5:15, 0:10] = True  # 100 px, 50 shared
    assert segeval.iou(a, b) == pytest.approx(50 / 150)
    assert segeval.iou(a, a) == 1.0
    assert segeval.iou(a, np.zeros_like(a)) == 0.0
    assert segeval.iou(np.zeros_like(a), np.zeros_like(a)) == 1.0
    # probabilities and uint8 coverage use the 0.5 / 128 cut of apply_mask and the frame cache
    assert segeval.iou(a * 0.49, a) == 0.0 and segeval.iou(a * 0.5, a) == 1.0
    assert segeval.iou((a * 127).astype(np.uint8), a) == 0.0 and segeval.iou((a * 128).astype(np.uint8), a) == 1.0


def test_boundary_f_on_planted_lines():
    """1-px lines are their own contour, so the distances are known exactly."""
    ref = np.zeros((30, 30), bool)
    ref[10, 5:15] = True
    assert segeval.boundary_f(ref, ref) == 1.0
    assert segeval.boundary_f(np.roll(ref, 2, axis=0), ref) == 1.0  # 2 px off: within tolerance
    assert segeval.boundary_f(np.roll(ref, 3, axis=0), ref) == 0.0  # 3 px off: no contour pixel matches
    half = np.zeros_like(ref)
    half[10, 5:10] = True  # precision 1, recall 7/10 (ref pixels within 2 px of the half line)
    assert segeval.boundary_f(half, ref) == pytest.approx(2 * 0.7 / 1.7)
    assert segeval.boundary_f(np.zeros_like(ref), ref) == 0.0
    assert segeval.boundary_f(np.zeros_like(ref), np.zeros_like(ref)) == 1.0


def test_boundary_ignores_the_image_edge():
    """A body cut by the frame (partial body) has no contour along the cut."""
    m = np.zeros((20, 20), bool)
    m[:, :8] = True
    b = segeval.boundary_of(m)
    assert b[:, 7].all() and not b[:, :7].any()


def test_slices_by_tag():
    tags = [("clutter_near_body",), ("partial_body", "long_diaper"), (), ("clutter",)]
    s = segeval.slice_members(tags)
    assert s["all"].tolist() == [0, 1, 2, 3]
    assert s["clutter"].tolist() == [0, 3]
    assert s["partial_body"].tolist() == [1]
    assert s["easy"].tolist() == [2]
    assert s["tag:long_diaper"].tolist() == [1]


def test_ablation_feeds_each_arm_the_right_pixels():
    """A fake regressor that 'measures' the number of kept pixels shows which mask each arm used."""
    from neometer.data.preprocess import PreprocessSpec

    spec = PreprocessSpec(target_size=8)
    images = np.full((2, 8, 8, 3), 200, np.uint8)
    gt = np.zeros((2, 8, 8), np.uint8)
    gt[:, 2:6, 2:6] = 255  # 16 px
    seg = np.zeros((2, 8, 8), np.float32)
    seg[:, 2:6, 2:4] = 0.9  # 8 px

    class PixelCounter:
        def predict(self, x):
            zero = (np.zeros(3, np.float32) * spec.scale - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
            kept = ~np.isclose(x, zero[None, :, None, None]).all(axis=1)
            return np.stack([kept.sum(axis=(1, 2)), np.zeros(len(x))], 1).astype(np.float32)

    labels = np.zeros((2, 2))
    rows = segeval.mask_ablation(images, gt, seg, labels, np.array([0, 0]), spec, PixelCounter())
    by = {r["input"]: r for r in rows}
    assert by["ground-truth mask"]["height_cm_mae_frame"] == 16
    assert by["segmenter mask"]["height_cm_mae_frame"] == 8
    assert by["no removal, removal-trained regressor"]["height_cm_mae_frame"] == 64
    assert "no removal" not in by  # only with a regressor trained without removal


# --- the model and its export contract --------------------------------------------------------

def test_upsampling_puts_features_where_strided_convs_read_them():
    from neometer.models.segmenter import upsample_matrix

    w = upsample_matrix(4, 8)
    assert w.shape == (32, 4)
    assert torch.allclose(w.sum(1), torch.ones(32))
    # feature i sits on input pixel 8 i (stride-2 convs, odd kernels, 'same' padding)
    for i in range(4):
        assert int(w[:, i].argmax()) == 8 * i and float(w[8 * i, i]) == 1.0
    assert float(w[12, 1]) == 0.5 and float(w[12, 2]) == 0.5


@pytest.mark.parametrize("arch", ["lraspp_mobilenet_v3_small", "lraspp_mobilenet_v2"])
def test_build_from_config_round_trip(tmp_path, arch):
    from neometer.data.preprocess import PreprocessSpec
    from neometer.models.checkpoint import build_from_config, load_checkpoint, save_checkpoint
    from neometer.models.segmenter import segmenter_config

    config = segmenter_config(arch, 0.5, SIZE, PreprocessSpec(target_size=SIZE).to_dict())
    model = build_from_config(config).eval()
    path = save_checkpoint(tmp_path / "seg.safetensors", model, config, dtype=torch.float16)
    loaded, cfg = load_checkpoint(path)
    assert cfg["role"] == "segmenter" and cfg["outputs"][0]["name"] == "body_probability"
    assert cfg["outputs"][0]["shape"] == [1, 1, SIZE, SIZE]
    assert cfg["preprocessing"]["background_removal"] == "none"  # the segmenter sees the whole frame
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        y, y16 = model(x), loaded(x)
    assert y.shape == (2, 1, SIZE, SIZE) and float(y.min()) >= 0 and float(y.max()) <= 1
    assert float((y - y16).abs().max()) < 2e-3  # fp16 weights
    assert path.stat().st_size < 2 * sum(p.numel() for p in model.parameters()) + 100_000  # no upsample tables stored


def test_bad_input_size_is_a_user_error():
    from neometer.models.segmenter import InfantSegmenter

    with pytest.raises(NeometerError, match="multiple of 32"):
        InfantSegmenter("lraspp_mobilenet_v3_small", 0.5, 90)
    with pytest.raises(NeometerError, match="unknown segmenter arch"):
        InfantSegmenter("unet", 0.5, 64)


def _onnx_session(model, size):
    import io

    import onnxruntime as ort

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), buf, input_names=["input"],
                          output_names=["body_probability"], opset_version=17, dynamo=False,
                          dynamic_axes={"input": {0: "batch"}, "body_probability": {0: "batch"}})
    return buf.getvalue(), ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])


def test_exported_onnx_masks_match_pytorch(trained_run):
    import onnx

    from neometer.data.preprocess import normalize
    from neometer.models.checkpoint import load_checkpoint

    table, out, _ = trained_run
    model, _ = load_checkpoint(out / "segmenter.safetensors")
    data, session = _onnx_session(model, SIZE)
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert not ops & {"Shape", "Resize", "Gather", "Loop", "If"}, ops  # static, converter-friendly graph
    x = normalize(np.asarray(table.images[-6:]), table.spec)
    got = session.run(None, {"input": x})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape == (6, 1, SIZE, SIZE)
    assert float(np.abs(got - ref).max()) < 1e-4
    ious = [segeval.iou(a[0], b[0]) for a, b in zip(got, ref)]
    assert min(ious) > 0.995  # the task-level parity metric
    assert (ref[:, 0] >= 0.5).any(), "the trained model should find bodies"


# --- training and its report --------------------------------------------------------------------

def test_tiny_training_writes_model_and_report(trained_run):
    from neometer.models.checkpoint import load_checkpoint
    from neometer.train.segment import FitSetup, predict_probs

    table, out, rep = trained_run
    config = json.loads((out / "segmenter.json").read_text())
    assert config["role"] == "segmenter" and config["weights_dtype"] == "float16"
    assert config["img_size"] == SIZE and config["arch"] == "lraspp_mobilenet_v3_small"
    split = json.loads((out / "splits.json").read_text())
    assert not set(split["train_infants"]) & set(split["test_infants"])  # grouped by infant
    for name in ("report.json", "report.md", "overlays.png", "slices.png", "history.png"):
        assert (out / "report" / name).stat().st_size > 200, name
    saved = json.loads((out / "report" / "report.json").read_text())
    assert set(saved["slices"]) >= {"all", "clutter", "partial_body", "easy"}
    # the report's numbers are the saved model's numbers on the held-out infants
    model, _ = load_checkpoint(out / "segmenter.safetensors")
    test_rows = np.flatnonzero(np.isin(table.infant_id, split["test_infants"]))
    probs = predict_probs(model, np.asarray(table.images[test_rows]), table.spec, FitSetup(torch.device("cpu"), False, False, 0))
    ious = [segeval.iou(p, m) for p, m in zip(probs, table.masks[test_rows])]
    assert saved["slices"]["all"]["frames"] == len(test_rows)
    assert saved["slices"]["all"]["iou_mean"] == pytest.approx(np.mean(ious), abs=0.02)  # fp16 weights
    assert saved["slices"]["all"]["iou_mean"] > 0.5, "8 epochs on ellipses should learn the body"
    assert "| all |" in (out / "report" / "report.md").read_text()


def test_frames_without_masks_are_not_training_targets():
    from neometer.train.segment import rows_with_masks

    table = planted_table(n_infants=3, frames=2)
    table.masks[0] = 255  # the frame table's "no mask for this frame"
    table.recordings[2] = dataclasses.replace(table.recordings[2], mask=None)  # a recording without masks
    assert rows_with_masks(table, np.arange(len(table))).tolist() == [1, 2, 3]


def test_refuses_to_overwrite_a_run(trained_run):
    from neometer.train.segment import SegTrainConfig, train_segmenter

    table, out, _ = trained_run
    with pytest.raises(NeometerError, match="not empty"):
        train_segmenter(table, SegTrainConfig(img=SIZE, width=0.5, epochs=1, device="cpu"), out)


# --- the command ------------------------------------------------------------------------------------

def test_cli_reports_every_bad_argument(tmp_path, capsys):
    from neometer.cli import main

    rc = main(["train-seg", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--img", "90",
               "--arch", "unet", "--epochs", "0"])
    err = capsys.readouterr().err
    assert rc == 2
    for needle in ("--img 90", "--arch unet", "--epochs 0", "manifest.csv"):
        assert needle in err
    assert "Traceback" not in err


def test_cli_trains_on_the_synthetic_dataset(synth_dataset, tmp_path):
    from neometer.cli import main

    out = tmp_path / "run"
    ship = tmp_path / "demo" / "segmenter.safetensors"
    rc = main(["train-seg", "--data", str(synth_dataset), "--out", str(out), "--img", "64", "--width", "0.5",
               "--epochs", "1", "--batch-size", "8", "--folds", "4", "--fps", "2", "--device", "cpu",
               "--cache-dir", str(tmp_path / "cache"), "--ship-to", str(ship), "--quiet", "--no-latency"])
    assert rc == 0
    assert ship.is_file() and json.loads(ship.with_suffix(".json").read_text())["role"] == "segmenter"
    rep = json.loads((out / "report" / "report.json").read_text())
    assert rep["slices"]["all"]["frames"] > 0
    assert 0.0 <= rep["slices"]["all"]["iou_mean"] <= 1.0
