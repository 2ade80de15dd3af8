"""Evaluation: metrics and Bland-Altman on hand-computed numbers, the report from a
hand-written predictions.csv (per fold, pooled, per recording, bins, tags, baseline), and
merging runs (folds fanned out) with its refusals."""

import csv
import json

import numpy as np
import pytest

from neometer.cli import main
from neometer.errors import NeometerError
from neometer.evaluate.agreement import bland_altman
from neometer.evaluate.metrics import mae, mape, rmse, skill, summarize
from neometer.evaluate.report import load_runs, write_report
from neometer.train.crossval import PREDICTION_COLUMNS


def test_metrics_on_hand_computed_numbers():
    pred, ref = [51.0, 48.0, 50.0, 52.0], [50.0, 50.0, 50.0, 50.0]
    assert mae(pred, ref) == pytest.approx(1.25)
    assert mape(pred, ref) == pytest.approx(2.5)  # relative to the reference, not the prediction
    assert rmse(pred, ref) == pytest.approx(np.sqrt(9 / 4))
    s = summarize(pred, ref, baseline_pred=[49.0] * 4)
    assert s["bias"] == pytest.approx(0.25) and s["baseline_mae"] == pytest.approx(1.0)
    assert s["skill"] == pytest.approx(-0.25) and skill(0.5, 2.0) == pytest.approx(0.75)
    assert summarize([np.nan, 51.0], [50.0, 50.0])["n"] == 1  # missing predictions are not errors of 0
    ba = bland_altman(pred, ref)
    d = np.array([1.0, -2.0, 0.0, 2.0])
    assert ba.bias == pytest.approx(0.25) and ba.sd == pytest.approx(d.std(ddof=1))
    assert ba.loa_high - ba.loa_low == pytest.approx(2 * 1.96 * d.std(ddof=1))


def write_run(path, rows, task="multitask", backbone="mobilenet_v2"):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"task": task, "backbone": backbone, "dataset": {"sha256": "x"},
                                                  "training": {"background": "remove"}}))
    with open(path / "predictions.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(PREDICTION_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    return path


def frame(fold, infant, media, i, h_ref, h_pred, w_ref, w_pred, tags="", mean=(50.0, 3.5)):
    return {"fold": fold, "infant_id": infant, "recording": 0, "media": media, "frame_index": i, "tags": tags,
            "height_ref": h_ref, "weight_ref": w_ref, "height_pred": h_pred, "weight_pred": w_pred,
            "train_mean_height": mean[0], "train_mean_weight": mean[1]}


@pytest.fixture()
def two_folds(tmp_path):
    a = [frame(0, "a", "videos/a.mp4", 0, 48.0, 49.0, 3.0, 3.1, "tilt"),
         frame(0, "a", "videos/a.mp4", 1, 48.0, 47.0, 3.0, 3.3, "tilt"),
         frame(0, "a", "videos/a.mp4", 2, 48.0, 48.5, 3.0, 3.2, "tilt"),
         frame(0, "b", "stills/b.png", 0, 52.0, 51.0, 4.0, 3.9)]
    b = [frame(1, "c", "videos/c.mp4", 0, 50.0, 50.0, 3.5, 3.5, "long_diaper;clutter", mean=(49.0, 3.4)),
         frame(1, "c", "videos/c.mp4", 1, 50.0, 52.0, 3.5, 3.7, "long_diaper;clutter", mean=(49.0, 3.4))]
    return write_run(tmp_path / "fold0", a), write_run(tmp_path / "fold1", b)


def test_report_numbers_from_a_handwritten_predictions_file(two_folds, tmp_path):
    rep = write_report(list(two_folds), tmp_path / "rep", log=lambda *_: None)
    pf = rep["per_frame"]
    assert pf["per_fold"]["0"]["height"]["mae"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    assert pf["pooled"]["height"]["mae"] == pytest.approx((1 + 1 + 0.5 + 1 + 0 + 2) / 6)
    assert pf["pooled"]["height"]["baseline_mae"] == pytest.approx((2 + 2 + 2 + 2 + 1 + 1) / 6)
    recs = {r["media"]: r for r in rep["recordings"]}
    assert recs["videos/a.mp4"]["height_median"] == pytest.approx(48.5)
    assert recs["videos/a.mp4"]["height_frame_sd"] == pytest.approx(np.std([49, 47, 48.5], ddof=1))
    assert np.isnan(recs["stills/b.png"]["height_frame_sd"])  # one frame: no temporal stability
    per_rec = rep["per_recording"]
    assert per_rec["height"]["mae"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)  # medians 48.5, 51, 51
    assert per_rec["height"]["frame_sd"]["n_recordings"] == 2
    assert rep["by_tag"]["tilt"]["n_frames"] == 3 and rep["by_tag"]["clutter"]["n_recordings"] == 1
    assert rep["by_tag"]["(no tag)"]["height"]["mae"] == pytest.approx(1.0)
    bins = rep["error_by_bin"]["height"]
    assert sum(b["n"] for b in bins) == 6 and bins[0]["lo"] == 48.0 and bins[-1]["hi"] == 52.0
    assert bins[0]["n_infants"] == 1 and bins[-1]["mae"] == pytest.approx(1.0)  # extremes get their own bins
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())  # NaN written as null
    assert saved["recordings"][1]["height_frame_sd"] is None or saved["recordings"][0]["height_frame_sd"] is None
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Bland-Altman" in md and "mean-predictor MAE" in md and "reference value" in md
    for png in ("bland_altman_height.png", "bland_altman_weight.png", "pred_vs_ref.png", "error_by_bin.png",
                "temporal_stability.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 5000


def test_merging_refuses_duplicates_and_different_models(two_folds, tmp_path):
    p, runs = load_runs(list(two_folds))
    assert p.n == 6 and [r["folds"] for r in runs] == [[0], [1]]
    with pytest.raises(NeometerError, match="cannot merge"):
        load_runs([two_folds[0], two_folds[0]])
    other = write_run(tmp_path / "vgg", [frame(2, "d", "videos/d.mp4", 0, 50, 50, 3, 3)], backbone="vgg16")
    with pytest.raises(NeometerError, match="different models"):
        load_runs([two_folds[0], other])
    with pytest.raises(NeometerError, match="no predictions.csv"):
        load_runs([tmp_path / "nothing"])


def test_eval_cli(two_folds, tmp_path, capsys):
    assert main(["eval", str(two_folds[0]), str(two_folds[1])]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["eval", str(two_folds[0])]) == 0
    assert (two_folds[0] / "report" / "report.md").is_file()
    # a one-task weight run has no height: the report covers weight only
    w = [dict(frame(0, "a", "x.png", 0, 50, float("nan"), 3.0, 3.2), height_pred="")]
    run = write_run(tmp_path / "weight", w, task="weight")
    assert main(["eval", str(run)]) == 0
    assert json.loads((run / "report" / "report.json").read_text())["quantities"] == ["weight"]
