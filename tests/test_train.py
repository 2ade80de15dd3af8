"""Training: the weight-from-height line, grouped folds without leaks, the folded
de-standardisation, the device-side input pipeline against FrameDataset, resuming, and a
tiny end-to-end run on the synthetic dataset (checkpoint + report with every field)."""

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from neometer.cli import main
from neometer.data.cache import FrameTable
from neometer.data.manifest import Recording
from neometer.data.preprocess import PreprocessSpec
from neometer.errors import NeometerError
from neometer.models.checkpoint import load_checkpoint, save_checkpoint
from neometer.models.regressor import build_regressor, fold_destandardization
from neometer.train import loop
from neometer.train.crossval import make_folds, select_frames, write_csv_atomic
from neometer.train.strategies import fit_weight_from_height, per_infant_labels, strategy_for, to_height_weight

torch.set_num_threads(1)
pytestmark = pytest.mark.xdist_group(name="train")  # one worker runs the tiny training once
TINY = ["--img", "64", "--width-mult", "0.35", "--epochs", "1", "--folds", "2", "--fps", "4", "--max-frames", "2",
        "--batch-size", "8", "--device", "cpu", "--quiet"]
REPORT_KEYS = ("per_frame", "per_recording", "bland_altman", "error_by_bin", "by_tag", "recordings", "notes", "plots")
METRIC_KEYS = ("n", "mae", "mape_pct", "rmse", "bias", "baseline_mae", "skill")


def tiny_model(n_out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_regressor("mobilenet_v2", n_out, 0.35)


def planted_table(frames_per_infant=(3, 1, 2, 4, 2, 1, 3), size=32, seed=0) -> FrameTable:
    """Infants with uneven frame counts; a bright bar whose length follows height."""
    rng = np.random.default_rng(seed)
    cols = {k: [] for k in ("images", "masks", "recording", "frame_index", "infant_id", "height_cm", "weight_kg")}
    recs = []
    for i, n in enumerate(frames_per_infant):
        h = float(rng.normal(50, 2))
        recs.append(Recording(row=i + 2, infant_id=f"b{i}", media=Path(f"/d/v{i}.mp4"), height_cm=h,
                              weight_kg=0.17 * h - 5.2, tags=("tilt",) if i % 2 else ()))
        for f in range(n):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            mask = (rng.random((size, size)) * 255).astype(np.uint8)
            for k, v in zip(cols, (img, mask, i, f, f"b{i}", h, 0.17 * h - 5.2)):
                cols[k].append(v)
    return FrameTable(np.stack(cols["images"]), np.stack(cols["masks"]), np.array(cols["recording"], np.int32),
                      np.array(cols["frame_index"], np.int32), np.array(cols["infant_id"]),
                      np.array(cols["height_cm"], np.float32), np.array(cols["weight_kg"], np.float32), recs, "sha", Path("/d"))


# --- strategies -------------------------------------------------------------------------

def test_weight_from_height_recovers_the_planted_line():
    h = np.linspace(45, 55, 30)
    alpha, beta = fit_weight_from_height(h, 0.1680 * h - 5.1577)
    assert alpha == pytest.approx(0.1680, abs=1e-9) and beta == pytest.approx(-5.1577, abs=1e-7)
    # per-infant labels: an infant with many frames gets one vote, so the fit is the same
    ids = ["a"] * 50 + ["b", "c"]
    hh = np.array([46.0] * 50 + [50.0, 54.0])
    hi, wi = per_infant_labels(ids, hh, 0.2 * hh - 6 + np.array([0.3] * 50 + [0, 0]))
    assert len(hi) == 3 and fit_weight_from_height(hi, wi)[0] == pytest.approx(0.2 - 0.3 / 8 * 1.0, abs=0.05)
    out = to_height_weight(np.array([[50.0]]), strategy_for("height+regression"), (0.2, -6.0))
    assert out.tolist() == [[50.0, 4.0]]
    assert np.isnan(to_height_weight(np.array([[3.1]]), strategy_for("weight"))[0, 0])


def test_folds_never_share_an_infant_and_test_every_infant_once():
    table = planted_table()
    rows = select_frames(table, None)
    folds = make_folds(table, rows, 3, seed=0)
    ids = np.asarray(table.infant_id)
    tested = []
    for train, test in folds:
        assert not set(ids[train]) & set(ids[test])
        assert len(train) + len(test) == len(rows)
        tested += sorted(set(ids[test]))
    assert sorted(tested) == sorted(set(ids))
    with pytest.raises(NeometerError, match="larger than the number of infants"):
        make_folds(table, rows, 8, seed=0)
    assert set(ids[select_frames(table, 2)]) == {"b0", "b1"}


# --- de-standardisation ---------------------------------------------------------------------

def test_exported_model_outputs_the_destandardised_prediction(tmp_path):
    torch.manual_seed(0)
    model = tiny_model(2).eval()
    x = torch.randn(3, 3, 64, 64)
    mean, std = [49.8, 3.4], [1.9, 0.45]
    with torch.no_grad():
        expected = model(x) * torch.tensor(std) + torch.tensor(mean)
        fold_destandardization(model, "mobilenet_v2", mean, std)
        folded = model(x)
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-4)
    config = {"backbone": "mobilenet_v2", "width_mult": 0.35, "task": "multitask",
              "outputs": [{"name": "height_cm", "unit": "cm"}, {"name": "weight_kg", "unit": "kg"}]}
    for dtype, atol in ((torch.float32, 1e-4), (torch.float16, 0.1)):
        path = save_checkpoint(tmp_path / f"m_{dtype}.safetensors", model, config, dtype=dtype)
        loaded, _ = load_checkpoint(path)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected, rtol=0, atol=atol)


# --- the device-side input pipeline -----------------------------------------------------------

@pytest.mark.parametrize("background", ["remove", "keep"])
def test_device_batches_match_frame_dataset(background):
    from neometer.data.dataset import FrameDataset

    table = planted_table(size=32)
    spec = PreprocessSpec(target_size=32)
    idx = np.array([5, 0, 3, 9])
    images, masks, targets = loop.FrameBatches(table, idx)[[0, 1, 2, 3]]
    x = loop.to_input(images, masks, spec, torch.device("cpu"), background == "remove")
    ref = FrameDataset(table, idx, spec, background=background)
    for i in range(len(idx)):
        xi, yi = ref[i]
        torch.testing.assert_close(x[i], xi, rtol=0, atol=1e-5)
        torch.testing.assert_close(targets[i], yi)
    # augmentation flips image and mask together: the background stays the pad value
    torch.manual_seed(1)
    xa = loop.to_input(images, masks, spec, torch.device("cpu"), True, augment=True)
    pad = (0 - torch.tensor(spec.mean).view(3, 1, 1)) / torch.tensor(spec.std).view(3, 1, 1)
    keep = masks.float() / 255 >= 0.5
    for i in range(len(idx)):
        bg = ~keep[i]
        flipped_bg = ~keep[i].flip(1)
        assert torch.allclose(xa[i][:, bg], pad.expand(3, 32, 32)[:, bg]) or \
            torch.allclose(xa[i][:, flipped_bg], pad.expand(3, 32, 32)[:, flipped_bg])


def test_fit_checkpoints_every_epoch_and_resumes(tmp_path):
    table = planted_table(size=32)
    spec = PreprocessSpec(target_size=32)
    rows = np.arange(len(table.infant_id))
    norm = loop.TargetNorm.fit(table.labels[rows])
    state = tmp_path / "state.pt"

    def run(epochs, resume):
        torch.manual_seed(0)
        model = tiny_model(2)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        opts = loop.FitOptions(epochs=epochs, columns=(0, 1), norm=norm, spec=spec, state_path=state, resume=resume,
                               progress=False)
        hist = loop.fit(model, loop.make_loader(table, rows, 4, True), loop.make_loader(table, rows, 8, False),
                        opt, torch.device("cpu"), opts, log=lambda *_: None)
        return model, hist

    _, first = run(1, False)
    assert torch.load(state, weights_only=False)["epoch"] == 0
    model, hist = run(2, True)
    assert [h["epoch"] for h in hist] == [1, 2] and hist[0] == first[0]
    assert torch.load(state, weights_only=False)["epoch"] == 1
    assert len(hist[1]["val_mae"]) == 2 and hist[1]["images_per_s"] > 0


# --- end to end on the synthetic dataset -------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(synth_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    run = root / "run"
    rc = main(["train", "--data", str(synth_dataset), "--task", "multitask", "--out", str(run),
               "--cache-dir", str(root / "cache"), *TINY])
    assert rc == 0
    return run, root / "cache"


def test_tiny_run_writes_checkpoints_predictions_and_a_full_report(tiny_run, synth_dataset):
    run, cache = tiny_run
    config = json.loads((run / "model.json").read_text())
    for key in ("format", "role", "backbone", "width_mult", "task", "outputs", "img_size", "preprocessing",
                "target_normalization", "dataset", "split", "seed", "fold", "metrics", "weights_sha256"):
        assert key in config, key
    assert [o["name"] for o in config["outputs"]] == ["height_cm", "weight_kg"]
    assert config["target_normalization"]["folded"] is True and config["dataset"]["sha256"]
    # no infant leaks: every predicted frame's infant is in its fold's test set, never its train set
    splits = json.loads((run / "splits.json").read_text())
    with open(run / "predictions.csv", newline="") as f:
        preds = list(csv.DictReader(f))
    assert {int(p["fold"]) for p in preds} == {0, 1}
    for p in preds:
        fold = splits["folds"][int(p["fold"])]
        assert p["infant_id"] in fold["test_infants"] and p["infant_id"] not in fold["train_infants"]
    assert len({p["infant_id"] for p in preds}) == 8
    # the report has every field, per fold and pooled, for both quantities
    rep = json.loads((run / "report" / "report.json").read_text())
    for key in REPORT_KEYS:
        assert key in rep, key
    for block in [rep["per_frame"]["pooled"], *rep["per_frame"]["per_fold"].values()]:
        for q in ("height", "weight"):
            assert set(METRIC_KEYS) <= set(block[q])
    for q in ("height", "weight"):
        assert {"bias", "loa_low", "loa_high"} <= set(rep["bland_altman"][q])
        assert rep["per_recording"][q]["frame_sd"]["n_recordings"] > 0
        assert sum(b["n"] for b in rep["error_by_bin"][q]) == len(preds)
    assert rep["by_tag"] and all("height" in s for s in rep["by_tag"].values())
    for png in rep["plots"]:
        assert (run / "report" / png).stat().st_size > 5000
    assert "skill" in (run / "report" / "report.md").read_text()


def test_shipped_model_reproduces_the_evaluated_predictions(tiny_run, synth_dataset):
    """The saved fold model (outputs in cm/kg) gives the numbers in predictions.csv."""
    from neometer.data.cache import build_frame_table
    from neometer.data.dataset import FrameDataset

    run, cache = tiny_run
    model, config = load_checkpoint(run / "fold0" / "model.safetensors")
    spec = PreprocessSpec.from_dict(config["preprocessing"])
    table = build_frame_table(synth_dataset, PreprocessSpec(target_size=64), fps=4, max_frames_per_recording=2,
                              cache_dir=cache, progress=False)
    with open(run / "fold0" / "predictions.csv", newline="") as f:
        row = next(csv.DictReader(f))
    media = [str(Path(table.recordings[r].media).relative_to(table.dataset_dir).as_posix()) for r in table.recording]
    i = next(j for j in range(len(media)) if media[j] == row["media"] and table.frame_index[j] == int(row["frame_index"]))
    x, _ = FrameDataset(table, [i], spec, background="remove")[0]
    with torch.no_grad():
        h, w = model(x[None])[0].tolist()
    assert h == pytest.approx(float(row["height_pred"]), abs=1e-3)
    assert w == pytest.approx(float(row["weight_pred"]), abs=1e-4)


def test_height_regression_folds_fan_out_and_merge(tiny_run, synth_dataset, tmp_path, capsys):
    run, cache = tiny_run
    args = ["--data", str(synth_dataset), "--task", "height+regression", "--cache-dir", str(cache), *TINY]
    assert main(["train", *args, "--fold", "0", "--out", str(tmp_path / "a"), "--save-dtype", "float16"]) == 0
    assert main(["train", *args, "--fold", "1", "--out", str(tmp_path / "b"), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert out.count("W = ") == 2  # alpha and beta printed per fold, as the paper does
    config = json.loads((tmp_path / "a" / "model.json").read_text())
    assert config["fold"] == 0 and config["weights_dtype"] == "float16"
    alpha, beta = config["weight_from_height"]["alpha"], config["weight_from_height"]["beta"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y32 = load_checkpoint(tmp_path / "a" / "fold0" / "model.safetensors")[0](x)
        y16 = load_checkpoint(tmp_path / "a" / "model.safetensors")[0](x)  # the fp16 shipped copy
    torch.testing.assert_close(y32[:, 1], alpha * y32[:, 0] + beta)
    torch.testing.assert_close(y16, y32, rtol=0, atol=0.05)
    assert main(["eval", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "merged")]) == 0
    rep = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert rep["folds"] == [0, 1] and rep["n_infants"] == 8
    # the multitask run is another model: merging it in is refused
    assert main(["eval", str(tmp_path / "a"), str(run), "--out", str(tmp_path / "bad")]) == 2
    assert "different models" in capsys.readouterr().err


def test_bad_arguments_give_clear_errors(synth_dataset, tmp_path, capsys, tiny_run):
    _, cache = tiny_run
    base = ["train", "--data", str(synth_dataset), "--cache-dir", str(cache), *TINY]
    assert main([*base, "--backbone", "resnet9", "--out", str(tmp_path / "x")]) == 2
    assert "unknown; choose one of mobilenet_v2" in capsys.readouterr().err
    assert main([*base, "--folds", "9", "--out", str(tmp_path / "y")]) == 2
    assert "larger than the number of infants (8)" in capsys.readouterr().err
    assert main([*base, "--fold", "2", "--out", str(tmp_path / "z")]) == 2
    assert "--fold 2" in capsys.readouterr().err
    # an existing run is never overwritten
    assert main([*base, "--out", str(tiny_run[0])]) == 2
    assert "--resume" in capsys.readouterr().err
    # a dataset that fails `data check`: a row whose video is missing
    broken = tmp_path / "broken"
    broken.mkdir()
    lines = (synth_dataset / "manifest.csv").read_text().splitlines()
    first = lines[1].split(",")
    first[1] = "videos/missing.mp4"
    (broken / "manifest.csv").write_text("\n".join([lines[0], ",".join(first)]) + "\n")
    assert main(["train", "--data", str(broken), *TINY, "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "manifest.csv" in err and "row 2" in err
    assert not (tmp_path / "w").exists()


def test_paper_plan_and_the_two_one_task_nets_combination(tmp_path):
    import argparse

    from neometer.train import paper

    p = argparse.ArgumentParser()
    paper.configure(p)
    runs = dict(paper.plan(p.parse_args(["--data", "x"])))
    assert runs["mobilenet_v2-height+regression"]["task"] == "height+regression"
    assert {runs[f"{b}-height"]["backbone"] for b in ("vgg16", "googlenet", "alexnet")} == {"vgg16", "googlenet", "alexnet"}
    assert runs["mobilenet_v2-multitask-keep"]["background"] == "keep" and len(runs) == 9
    with pytest.raises(NeometerError, match="resnet"):
        paper.plan(p.parse_args(["--data", "x", "--backbones", "resnet"]))
    # row (ii): height from the height net, weight from the weight net, matched frame by frame
    base = {"fold": 0, "infant_id": "a", "recording": 0, "media": "v.mp4", "tags": "", "height_ref": 50, "weight_ref": 3.5,
            "train_mean_height": 50, "train_mean_weight": 3.5}
    for name, h, w in (("h", 51.0, 3.7), ("w", float("nan"), 3.4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"task": name}))
        write_csv_atomic(tmp_path / name / "predictions.csv",
                         [dict(base, frame_index=i, height_pred=h + i, weight_pred=w) for i in range(2)])
    out = paper.combine_two_nets(tmp_path / "h", tmp_path / "w", tmp_path / "two")
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(float(r["height_pred"]), float(r["weight_pred"])) for r in rows] == [(51.0, 3.4), (52.0, 3.4)]
