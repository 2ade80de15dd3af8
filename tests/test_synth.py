"""Tests of the synthetic newborn engine (neometer.synth)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from neometer.cli import main as neometer_main
from neometer.synth import render
from neometer.synth.camera import Camera, project
from neometer.synth.writer import MANIFEST_COLUMNS, write_dataset

CLEAN = {"degrade": False, "body_shadow": False}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(tmp_path):
    a = write_dataset(tmp_path / "a", n_infants=2, seed=5, preset="tiny", progress=False)
    b = write_dataset(tmp_path / "b", n_infants=2, seed=5, preset="tiny", progress=False)
    c = write_dataset(tmp_path / "c", n_infants=2, seed=6, preset="tiny", progress=False)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert any(k.endswith(".mp4") for k in fa) and any(k.endswith(".jpg") for k in fa)
    assert fa.keys() == fb.keys()
    assert [k for k in fa if fa[k] != fb[k]] == []
    assert sum(fa[k] != fc.get(k) for k in fa) > len(fa) // 2  # another seed: other babies


def test_label_distribution_over_500_infants():
    labs = [render.make_infant((7, i))[1] for i in range(500)]
    L = np.array([x["height_cm"] for x in labs])
    W = np.array([x["weight_kg"] for x in labs])
    assert abs(L.mean() - 49.5) < 0.3 and abs(L.std() - 1.9) < 0.2
    assert L.min() >= 44 and L.max() <= 56
    assert abs(W.std() - 0.45) < 0.05
    r = np.corrcoef(L, W)[0, 1]
    assert 0.62 < r < 0.78
    slope, intercept = np.polyfit(L, W, 1)
    assert abs(slope - 0.166) < 0.03
    assert abs((slope * 49.5 + intercept) - (0.166 * 49.5 - 4.9)) < 0.06  # the target fit at the mean length
    assert {x["sex"] for x in labs} == {"M", "F"}


@pytest.mark.parametrize("overrides", [
    {}, {"clutter_near_body": True}, {"partial_body": True}, {"tilt_deg": 32.0, "clutter_near_body": True},
    {"hat": True, "swaddle": True},
])
@pytest.mark.parametrize("seed", [3, 11])
def test_mask_covers_the_body_and_nothing_else(seed, overrides):
    """Render the same scene with and without the baby: the pixels that change are the mask
    (up to the one-pixel anti-aliased rim), including where clutter lies over the baby."""
    with_body, mask, _ = render.sample_frame(seed, 240, 426, **CLEAN, **overrides)
    without, empty, _ = render.sample_frame(seed, 240, 426, show_body=False, **CLEAN, **overrides)
    assert not empty.any()
    assert set(np.unique(mask)) <= {0, 255} and mask.mean() > 2
    changed = (np.abs(with_body.astype(int) - without.astype(int)).max(2) > 0)
    rim = cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0
    assert (changed & ~rim).sum() == 0, "pixels changed outside the mask"
    missed = (mask > 0) & ~changed
    assert missed.sum() <= 0.005 * (mask > 0).sum(), "mask pixels that show no body"


def test_mask_rim_with_camera_effects_stays_near_body():
    with_body, mask, _ = render.sample_frame(4, 240, 426, body_shadow=False)
    without, _, _ = render.sample_frame(4, 240, 426, show_body=False, body_shadow=False)
    changed = np.abs(with_body.astype(int) - without.astype(int)).max(2) > 12  # beyond JPEG/noise
    near = cv2.dilate(mask, np.ones((9, 9), np.uint8)) > 0
    assert (changed & ~near).mean() < 0.002
    assert ((mask > 0) & changed).sum() > 0.8 * (mask > 0).sum()


def test_synth_dataset_format(synth_dataset):
    rows = list(csv.DictReader(open(synth_dataset / "manifest.csv")))
    assert list(rows[0].keys()) == MANIFEST_COLUMNS
    info = json.loads((synth_dataset / "labels.json").read_text())
    assert len({r["infant_id"] for r in rows}) == 8 == len(info["infants"])
    for r in rows:
        media, mask = synth_dataset / r["media"], synth_dataset / r["mask"]
        assert float(r["height_cm"]) == pytest.approx(info["infants"][r["infant_id"]]["height_cm"], abs=0.01)
        assert set(filter(None, r["tags"].split(";"))) <= set(render.TAGS)
        if media.suffix == ".mp4":
            cap = cv2.VideoCapture(str(media))
            frames = []
            while True:
                ok, f = cap.read()
                if not ok:
                    break
                frames.append(f)
            masks = sorted(mask.glob("*.png"))
            assert len(frames) == len(masks) >= 8
            assert masks[0].name == "000000.png"
            m = cv2.imread(str(masks[-1]), cv2.IMREAD_GRAYSCALE)
            assert m.shape == frames[-1].shape[:2] and max(m.shape) == 192
        else:
            img = cv2.imread(str(media))
            m = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
            assert img.shape[:2] == m.shape
        assert set(np.unique(m)) <= {0, 255} and (m > 0).mean() > 0.02


def test_weight_for_length_shows_as_girth():
    """Same length, same camera height: the heavier baby covers more pixels."""
    areas = [(render.sample_frame(21, 240, 426, height_cm=50.0, weight_kg=w, camera_height_cm=60.0, **CLEAN)[1] > 0).sum()
             for w in (2.7, 4.1)]
    assert areas[1] > 1.08 * areas[0]


def test_flexed_baby_is_shorter_than_its_label():
    ratios = [render.labels_of(render.plan_recording(s))["visible_extent_cm"] / render.make_infant(s)[1]["height_cm"]
              for s in range(20)]
    assert max(ratios) < 1.0 and 0.7 < np.mean(ratios) < 0.97


def test_hard_cases_are_generated_and_tagged():
    _, m, lab = render.sample_frame(8, 240, 426, tilt_deg=31.0, partial_body=False, long_diaper=True,
                                    clutter_near_body=True, **CLEAN)
    assert {"tilt", "long_diaper", "clutter"} <= set(lab["tags"]) and "partial_body" not in lab["tags"]
    assert lab["render"]["camera"]["tilt_deg"] == pytest.approx(31.0)
    edge = np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]])
    assert not edge.any()
    _, m, lab = render.sample_frame(8, 240, 426, tilt_deg=5.0, partial_body=True, long_diaper=False,
                                    clutter_near_body=False, **CLEAN)
    assert lab["tags"] == ["partial_body"]
    edge = np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]])
    assert edge.any()


def test_hard_case_rates_control_the_tags():
    tags = [render.labels_of(render.plan_recording(s, rates={"tilt": 1.0, "partial_body": 0.0, "clutter": 0.0,
                                                             "long_diaper": 0.0}))["tags"] for s in range(6)]
    assert all(t == ["tilt"] for t in tags)


def test_homography_has_real_perspective():
    flat = Camera(360, 640, 70.0, 50.0, tilt_deg=0.0)
    tilted = Camera(360, 640, 70.0, 50.0, tilt_deg=30.0, tilt_azimuth_deg=0.0)
    for cam in (flat, tilted):
        assert project(cam.homography(), [[0.0, 0.0]])[0] == pytest.approx([180, 320], abs=1e-6)
    assert flat.px_per_cm_at(0, 20) == pytest.approx(flat.px_per_cm_at(0, -20), rel=0.01)
    near_far = tilted.px_per_cm_at(0, -20) / tilted.px_per_cm_at(0, 20)
    assert abs(np.log(near_far)) > np.log(1.3)
    # Pinhole scale: focal length / distance straight below the camera.
    assert flat.px_per_cm_at(0, 0) == pytest.approx(flat.focal_px / 50.0, rel=1e-6)


def test_sample_frame_is_deterministic_and_orientation_override():
    a, ma, la = render.sample_frame(2, 200, 356)
    b, mb, lb = render.sample_frame(2, 200, 356)
    assert np.array_equal(a, b) and np.array_equal(ma, mb) and la == lb
    c, _, _ = render.sample_frame(3, 200, 356)
    assert not np.array_equal(a, c)
    d, _, ld = render.sample_frame(2, 200, 356, orientation="landscape")
    assert d.shape == (200, 356, 3) and ld["render"]["flags"]["orientation"] == "landscape"
    with pytest.raises(TypeError):
        render.sample_frame(2, 200, 356, no_such_option=1)


def test_render_video_moves():
    frames, masks, lab = render.render_video(9, 108, 192, seconds=1.0, fps=8.0)
    assert len(frames) == len(masks) == 8 and frames[0].shape == (192, 108, 3)
    assert (masks[0] != masks[-1]).any()  # limbs and the hand-held camera move
    assert lab["fps"] == 8.0 and len(lab["frames"]) == 8


def test_cli_refuses_to_overwrite_and_writes_preview(tmp_path, capsys):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    assert neometer_main(["synth", "--infants", "1", "--preset", "tiny", "--out", str(keep), "--no-progress"]) == 2
    assert neometer_main(["synth", "--infants", "1", "--preset", "tiny", "--out", str(keep), "--force",
                          "--no-progress"]) == 2
    assert (keep / "notes.txt").read_text() == "precious"
    assert "--force" in capsys.readouterr().err
    assert neometer_main(["synth", "--infants", "0", "--out", str(tmp_path / "x")]) == 2
    assert neometer_main(["synth", "--rate", "tilt=2", "--out", str(tmp_path / "x")]) == 2
    png = tmp_path / "sheet.png"
    assert neometer_main(["synth", "--preview", "--width", "96", "--out", str(png)]) == 0
    sheet = cv2.imread(str(png))
    assert sheet.shape == (3 * 104 + 8, 4 * 104 + 8, 3) and sheet.std() > 10
