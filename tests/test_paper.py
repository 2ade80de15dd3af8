"""`benchmarks.py paper --segmenter`: the background ablation with a deployable mask, pooled
over each fold's held-out infants."""

import json

import numpy as np
import pytest

from neometer.data.cache import build_frame_table
from neometer.data.preprocess import PreprocessSpec
from neometer.errors import NeometerError
from neometer.export.fixtures import make_tiny_regressor, make_tiny_segmenter
from neometer.train import paper

IMG = 64


@pytest.fixture(scope="module")
def run_and_table(synth_dataset, tmp_path_factory):
    table = build_frame_table(synth_dataset, PreprocessSpec(target_size=IMG), fps=2.0, max_frames_per_recording=2,
                              progress=False)
    infants = sorted(set(np.asarray(table.infant_id).tolist()))
    run = tmp_path_factory.mktemp("paper") / "mobilenet_v2-multitask"
    folds = [{"fold": 0, "test_infants": infants[:3]}, {"fold": 1, "test_infants": infants[3:6]}]
    for f in folds:
        make_tiny_regressor(run / f"fold{f['fold']}" / "model.safetensors", img_size=IMG, seed=f["fold"])
    (run / "splits.json").write_text(json.dumps({"folds": folds}))
    seg = make_tiny_segmenter(tmp_path_factory.mktemp("seg") / "segmenter.safetensors", img_size=IMG)
    return table, run, seg, infants[:6]


class BrightnessRegressor:
    """Outputs that depend on every pixel (a random-init tiny net is nearly constant)."""

    def predict(self, x):
        return np.stack([40 + 10 * x.mean(axis=(1, 2, 3)), 3 + x.std(axis=(1, 2, 3))], 1)


def test_every_arm_covers_each_folds_held_out_frames(run_and_table, monkeypatch):
    import neometer.train.segment as segment
    from neometer.data.preprocess import normalize
    from neometer.evaluate.segmentation import remove_background_u8

    table, run, seg, held_out = run_and_table
    monkeypatch.setattr(segment, "load_regressor_runner", lambda path: (BrightnessRegressor(), {}))
    rows = paper.segmenter_ablation(table, run, seg, IMG)
    held = np.isin(np.asarray(table.infant_id), held_out)
    assert [r["input"] for r in rows] == ["ground-truth mask", "segmenter mask", "no removal, removal-trained regressor"]
    assert all(r["frames"] == int(held.sum()) for r in rows)
    # the ground-truth arm is the regressor on the held-out frames with their masks applied
    spec = PreprocessSpec(target_size=IMG)
    x = normalize(remove_background_u8(np.asarray(table.images)[held], np.asarray(table.masks)[held], spec), spec)
    expected = np.abs(BrightnessRegressor().predict(x)[:, 0] - np.asarray(table.height_cm)[held]).mean()
    assert rows[0]["height_cm_mae_frame"] == pytest.approx(expected, rel=1e-5)
    assert rows[0]["height_cm_mae_frame"] != pytest.approx(rows[2]["height_cm_mae_frame"])
    assert "| segmenter mask |" in paper.ablation_markdown(rows)


def test_a_segmenter_of_another_size_or_a_regressor_is_refused_before_training(run_and_table):
    table, run, seg, _ = run_and_table
    with pytest.raises(NeometerError, match="takes 64 px but the runs use 224 px"):
        paper.check_segmenter(seg, 224)
    with pytest.raises(NeometerError, match="pass a segmenter checkpoint"):
        paper.check_segmenter(run / "fold0" / "model.safetensors", IMG)
