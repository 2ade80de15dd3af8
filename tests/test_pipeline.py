"""The end-to-end Python pipeline (frame -> letterbox -> segmenter mask -> background removal ->
regressor -> gates -> aggregate), and that the two exported models run in sequence give the
same numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from neometer.data.preprocess import PreprocessSpec, apply_mask, letterbox, normalize
from neometer.errors import NeometerError
from neometer.measure.gates import QualityThresholds, check_frame
from neometer.measure.pipeline import Pipeline, TorchModelRunner

torch.set_num_threads(1)
SIZE = 64


def frames(n: int = 4, w: int = 96, h: int = 72, seed: int = 0) -> list[np.ndarray]:
    """Landscape frames (so the letterbox pads) with a bright blob on textured background."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = rng.integers(0, 120, (h, w, 3)).astype(np.uint8)
        y0, x0 = rng.integers(10, 30), rng.integers(10, 40)
        img[y0:y0 + 30, x0:x0 + 45] = (230, 180, 160)
        out.append(img)
    return out


def calibrate_batchnorm(model, spec) -> None:
    """BatchNorm running statistics from a few frames, so a random network's outputs vary."""
    x = torch.from_numpy(np.stack([normalize(letterbox(f, spec)[0], spec) for f in frames(8, seed=3)]))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A random tiny regressor and a random segmenter with sharpened logits (so its mask has
    both body and background), saved as checkpoints with 64 px preprocessing."""
    from neometer.models.checkpoint import save_checkpoint
    from neometer.models.regressor import build_regressor
    from neometer.models.segmenter import InfantSegmenter, segmenter_config

    d = tmp_path_factory.mktemp("ckpt")
    spec = PreprocessSpec(target_size=SIZE)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = build_regressor("mobilenet_v2", 2, 0.35).eval()
    calibrate_batchnorm(reg, spec)  # random init + eval-mode BN would output a constant
    with torch.no_grad():
        reg.classifier[1].weight.mul_(30)
        reg.classifier[1].bias.copy_(torch.tensor([50.0, 3.2]))  # plausible cm / kg
    reg_cfg = {"format": "neometer-checkpoint", "role": "regressor", "backbone": "mobilenet_v2", "width_mult": 0.35,
               "task": "multitask", "outputs": [{"name": "height_cm", "unit": "cm"}, {"name": "weight_kg", "unit": "kg"}],
               "img_size": SIZE, "preprocessing": spec.to_dict()}
    seg = InfantSegmenter("lraspp_mobilenet_v3_small", 0.5, SIZE)
    calibrate_batchnorm(seg, spec)
    with torch.no_grad():
        seg.head.low_classifier.weight.mul_(40)
        seg.head.high_classifier.weight.mul_(40)
    seg_cfg = segmenter_config("lraspp_mobilenet_v3_small", 0.5, SIZE, spec.to_dict())
    return (save_checkpoint(d / "regressor.safetensors", reg, reg_cfg),
            save_checkpoint(d / "segmenter.safetensors", seg, seg_cfg))


def test_predict_frame_is_letterbox_segment_remove_regress(checkpoints):
    from neometer.models.checkpoint import load_checkpoint

    pipe = Pipeline.from_checkpoints(*checkpoints)
    reg, _ = load_checkpoint(checkpoints[0])
    seg, _ = load_checkpoint(checkpoints[1])
    rgb = frames(1)[0]
    pred, mask, check = pipe.predict_frame(rgb, tilt_deg=5.0)

    spec = PreprocessSpec(target_size=SIZE)
    boxed, geo = letterbox(rgb, spec)
    with torch.no_grad():
        prob = seg(torch.from_numpy(normalize(boxed[None], spec))).numpy()[0, 0]
        want = reg(torch.from_numpy(normalize(apply_mask(boxed, prob, spec)[None], spec))).numpy()[0]
    np.testing.assert_allclose(mask, prob, atol=1e-6)
    np.testing.assert_allclose(pred, want, atol=1e-4)
    assert 0.05 < (mask >= 0.5).mean() < 0.95, "the sharpened random segmenter should keep part of the frame"
    assert check == check_frame(prob, geo, 5.0, QualityThresholds())
    # the mask changes the number: background removal really happens before the regressor
    with torch.no_grad():
        unmasked = reg(torch.from_numpy(normalize(boxed[None], spec))).numpy()[0]
    assert np.abs(unmasked - pred).max() > 1e-3


def _calibration(x):
    from neometer.export.calibration import Calibration

    return Calibration(np.ascontiguousarray(x, np.float32), "test frames")


def test_exported_models_in_sequence_match_the_python_pipeline(checkpoints, tmp_path):
    """Both checkpoints -> ONNX (the export helper), then the pipeline on the two artifacts via
    load_runner, and by hand with onnxruntime: the same masks and numbers as PyTorch."""
    import onnxruntime as ort

    from neometer.export.pipeline import export_checkpoint
    from neometer.export.targets import select_targets

    spec = PreprocessSpec(target_size=SIZE)
    calib = _calibration(np.stack([normalize(letterbox(f, spec)[0], spec) for f in frames(4, seed=1)]))
    targets = select_targets(["onnx"], ["fp32"])
    paths = {}
    for role, ckpt in zip(("regressor", "segmenter"), checkpoints):
        results = export_checkpoint(ckpt, targets, tmp_path / "export", calib=calib, progress=False)
        assert results[0].ok, results[0].error
        paths[role] = results[0].path

    torch_pipe = Pipeline.from_checkpoints(*checkpoints)
    card_pipe = Pipeline.from_cards(f"{paths['regressor']}.json", f"{paths['segmenter']}.json")
    seg_sess = ort.InferenceSession(str(paths["segmenter"]), providers=["CPUExecutionProvider"])
    reg_sess = ort.InferenceSession(str(paths["regressor"]), providers=["CPUExecutionProvider"])
    for rgb in frames(4, seed=2):
        pred_t, mask_t, check_t = torch_pipe.predict_frame(rgb)
        pred_c, mask_c, check_c = card_pipe.predict_frame(rgb)
        boxed, _ = letterbox(rgb, spec)  # by hand: two sessions in sequence
        prob = seg_sess.run(None, {seg_sess.get_inputs()[0].name: normalize(boxed[None], spec)})[0].reshape(SIZE, SIZE)
        x = normalize(apply_mask(boxed, prob, spec)[None], spec)
        pred_h = reg_sess.run(None, {reg_sess.get_inputs()[0].name: x})[0][0]
        for pred, mask in ((pred_c, mask_c), (pred_h, prob)):
            assert np.abs(mask - mask_t).max() < 1e-4
            assert ((mask >= 0.5) == (mask_t >= 0.5)).mean() > 0.999
            np.testing.assert_allclose(pred, pred_t, rtol=1e-4, atol=1e-3)  # cm, kg (float32 noise)
        assert check_c.failures == check_t.failures


class FixedMask:
    """A 'segmenter' returning one planted mask whatever the frame."""

    def __init__(self, mask):
        self.mask = mask.astype(np.float32)

    def predict(self, x):
        return np.repeat(self.mask[None, None], len(x), 0)


class KeptPixels:
    """A 'regressor' whose height is the number of non-background pixels it was given."""

    def __init__(self, spec):
        self.zero = (0 - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)

    def predict(self, x):
        kept = ~np.isclose(x, self.zero[None, :, None, None]).all(axis=1)
        n = kept.sum(axis=(1, 2)).astype(np.float32)
        return np.stack([n, n / 100], 1)


def test_measure_frames_gates_and_aggregates():
    spec = PreprocessSpec(target_size=SIZE)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[20:40, 10:50] = 1.0  # 800 px, inside the letterboxed content (rows 8..56 for 96x72)
    pipe = Pipeline(KeptPixels(spec), FixedMask(mask), spec, QualityThresholds(min_good_frames=3))
    shots = [np.full((72, 96, 3), 200, np.uint8)] * 5
    m = pipe.measure_frames(shots, tilts=[0, 3, 40, 2, 50])  # two frames too tilted
    assert m.message is None and m.frames_used == 3 and m.frames_seen == 5
    assert m.height_cm == 800 and m.weight_kg == 8.0 and m.height_spread_cm == 0.0
    few = pipe.measure_frames(shots[:3], tilts=[40, 0, 45])
    assert few.height_cm is None and few.message == "camera_tilted"
    with pytest.raises(NeometerError, match="tilt readings"):
        pipe.measure_frames(shots, tilts=[0])


def test_without_segmenter_nothing_is_removed():
    spec = PreprocessSpec(target_size=SIZE)
    pipe = Pipeline(KeptPixels(spec), None, spec)
    pred, mask, check = pipe.predict_frame(np.full((72, 96, 3), 200, np.uint8))
    assert mask is None and check.accepted
    assert pred[0] == SIZE * 48  # the whole letterboxed content (96x72 -> 64x48)


def test_a_segmenter_of_another_size_is_refused(checkpoints):
    spec = PreprocessSpec(target_size=SIZE)
    pipe = Pipeline(KeptPixels(spec), FixedMask(np.zeros((32, 32))), spec)
    with pytest.raises(NeometerError, match="body-probability map"):
        pipe.predict_frame(np.zeros((72, 96, 3), np.uint8))


def test_mismatched_preprocessing_is_refused(checkpoints, tmp_path):
    from neometer.models.checkpoint import load_checkpoint, save_checkpoint
    from neometer.models.segmenter import segmenter_config

    seg, _ = load_checkpoint(checkpoints[1])
    other = PreprocessSpec(target_size=SIZE, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)).to_dict()
    bad = save_checkpoint(tmp_path / "seg.safetensors", seg, segmenter_config("lraspp_mobilenet_v3_small", 0.5, SIZE, other))
    with pytest.raises(NeometerError, match="preprocessing does not match"):
        Pipeline.from_checkpoints(checkpoints[0], bad)


def test_torch_runner_wraps_a_module():
    runner = TorchModelRunner(torch.nn.Conv2d(3, 1, 1))
    assert runner.predict(np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 1, 8, 8)
