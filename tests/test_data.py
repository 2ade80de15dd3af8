"""Datasets: manifest loading, `neometer data check` (every planted defect in one run, no
traceback, nothing modified), frame sampling, the frame cache, grouped folds, FrameDataset."""

import csv
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

cv2 = pytest.importorskip("cv2")

from neometer.data import cache as cache_mod  # noqa: E402
from neometer.data import media as media_mod  # noqa: E402
from neometer.data.manifest import check_dataset, dataset_sha256, load_manifest  # noqa: E402
from neometer.data.preprocess import PreprocessSpec, letterbox, read_image  # noqa: E402
from neometer.data.splits import folds_for_groups, grouped_kfold, load_splits, save_splits  # noqa: E402
from neometer.errors import NeometerError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPEC = PreprocessSpec(target_size=64)
HEADER = ["infant_id", "media", "height_cm", "weight_kg", "mask", "sex", "gestational_age_weeks", "tags"]
VIDEO_FRAMES, VIDEO_FPS, VIDEO_W, VIDEO_H = 12, 10, 64, 48


# --- a tiny dataset, written with OpenCV and PIL ---------------------------------------

def body_mask(w, h, shift=0):
    m = np.zeros((h, w), np.uint8)
    m[h // 4: 3 * h // 4, w // 4 + shift: 3 * w // 4 + shift] = 255
    return m


def scene(w, h, shade, shift=0):
    img = np.full((h, w, 3), (40, 90, 40), np.uint8)  # green blanket
    img[body_mask(w, h, shift) > 0] = (shade, shade - 30, shade - 60)
    return img


def write_video(path: Path, n_frames=VIDEO_FRAMES, masks_dir: Path | None = None, shade=220):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (VIDEO_W, VIDEO_H))
    assert writer.isOpened()
    for i in range(n_frames):
        writer.write(scene(VIDEO_W, VIDEO_H, shade, shift=i % 3)[..., ::-1])
        if masks_dir is not None:
            masks_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(body_mask(VIDEO_W, VIDEO_H, shift=i % 3)).save(masks_dir / f"{i:06d}.png")
    writer.release()


def write_manifest(root: Path, rows):
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)


def make_dataset(root: Path, n_infants=4):
    """Per infant: a masked video, a masked portrait still; infant 0 also has an unmasked still."""
    (root / "media").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = []
    for k in range(n_infants):
        iid, height, weight = f"B{k:02d}", 46.0 + 2 * k, 2.8 + 0.3 * k
        write_video(root / "media" / f"{iid}.mp4", masks_dir=root / "masks" / iid, shade=200 + 10 * k)
        rows.append([iid, f"media/{iid}.mp4", height, weight, f"masks/{iid}", "F" if k % 2 else "M", 39, "video"])
        Image.fromarray(scene(30, 50, 210)).save(root / "media" / f"{iid}_still.png")
        Image.fromarray(body_mask(30, 50)).save(root / "masks" / f"{iid}_still.png")
        rows.append([iid, f"media/{iid}_still.png", height, weight, f"masks/{iid}_still.png", "", "", "still;top"])
    Image.fromarray(scene(50, 30, 190)).save(root / "media" / "B00_nomask.jpg", quality=95)
    rows.append(["B00", "media/B00_nomask.jpg", 46.0, 2.8, "", "", "", ""])
    write_manifest(root, rows)
    return rows


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "clean"
    make_dataset(root)
    return root


def folder_digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- manifest + check -------------------------------------------------------------------

def test_clean_dataset_loads_and_checks(dataset):
    recs = load_manifest(dataset)
    assert len(recs) == 9 and recs[0].row == 2 and recs[-1].row == 10  # spreadsheet rows: header is row 1
    assert recs[0].media.is_absolute() and recs[0].media.exists()
    assert recs[0].tags == ("video",) and recs[1].tags == ("still", "top") and recs[-1].mask is None
    assert recs[0].sex == "M" and recs[0].gestational_age_weeks == 39.0 and recs[1].sex is None
    assert check_dataset(dataset, progress=False) == []


def plant_defects(root: Path) -> dict[int, list[str]]:
    """Corrupt a copy of the clean dataset; returns {spreadsheet row: words its message must hold}."""
    rows = list(csv.reader(open(root / "manifest.csv")))[1:]
    media = root / "media"
    (media / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    empty = cv2.VideoWriter(str(media / "noframes.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    empty.release()  # a valid container holding zero frames
    (media / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    for name in ("nan", "mm", "g", "conflict", "sized"):
        Image.fromarray(scene(30, 50, 205)).save(media / f"{name}.png")
    Image.fromarray(body_mask(31, 50)).save(root / "masks" / "sized_wrong.png")  # 31 wide: mismatch
    Image.fromarray(scene(30, 50, 205)).save(media / "binary.png")
    Image.fromarray(body_mask(30, 50) // 255).save(root / "masks" / "binary01.png")  # 0/1, not 0/255
    shutil.copy(media / "B01.mp4", media / "holes.mp4")
    shutil.copytree(root / "masks" / "B01", root / "masks" / "holes")
    (root / "masks" / "holes" / "000005.png").unlink()  # frame 5 is sampled at 2 fps
    planted = [
        (["B10", "media/gone.mp4", 50, 3.2, "", "", "", ""], ["gone.mp4", "not found"]),
        (["B11", "media/broken.png", 50, 3.2, "", "", "", ""], ["broken.png", "unreadable image"]),
        (["B12", "media/noframes.avi", 50, 3.2, "", "", "", ""], ["noframes.avi", "no decodable frame"]),
        (["B13", "media/garbage.mp4", 50, 3.2, "", "", "", ""], ["garbage.mp4", "cannot open the video"]),
        (["B14", "media/nan.png", "nan", 3.2, "", "", "", ""], ["height_cm", "empty or NaN"]),
        (["B15", "media/mm.png", 495, 3.2, "", "", "", ""], ["495", "millimetres", "49.5"]),
        (["B16", "media/g.png", 50, 3200, "", "", "", ""], ["3200", "grams", "3.2"]),
        (["B00", "media/conflict.png", 47.5, 2.8, "", "", "", ""], ["conflicting labels", "47.5", "46"]),
        (["B17", "media/sized.png", 50, 3.2, "masks/sized_wrong.png", "", "", ""], ["sized_wrong.png", "31x50"]),
        (rows[0], ["duplicate row", "row 2"]),
        (["B18", "media/binary.png", 50, 3.2, "masks/binary01.png", "", "", ""], ["binary01.png", "0/1"]),
        (["B19", "media/holes.mp4", 50, 3.2, "masks/holes", "", "", ""], ["masks/holes", "000005.png"]),
    ]
    write_manifest(root, rows + [r for r, _ in planted])
    first = len(rows) + 2
    return {first + i: words for i, (_, words) in enumerate(planted)}


def test_data_check_reports_every_planted_defect_without_traceback_or_changes(dataset, tmp_path):
    bad = tmp_path / "corrupt"
    shutil.copytree(dataset, bad)
    expected = plant_defects(bad)
    before = folder_digest(bad)
    env = {**os.environ, "NEOMETER_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "neometer", "data", "check", str(bad)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    lines = [ln for ln in out.splitlines() if "manifest.csv row" in ln]
    for row, words in expected.items():
        hits = [ln for ln in lines if f"manifest.csv row {row} " in ln]
        assert any(all(w in ln for w in words) for ln in hits), (row, words, hits)
    assert "header is row 1" in out  # the row convention is stated
    assert len(lines) == len(expected)  # one message per defect: nothing missed, nothing invented
    assert all(" — " in ln for ln in lines)  # every message carries a fix
    assert "problem(s)" in proc.stdout  # the summary line
    assert folder_digest(bad) == before  # nothing written, nothing touched


def test_load_manifest_raises_with_every_problem(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    write_manifest(root, [["", "a.png", "", "4000", "", "x", "", ""], ["B1", "/abs/b.png", "48", "3", "", "", "", ""]])
    with pytest.raises(NeometerError) as err:
        load_manifest(root)
    text = str(err.value)
    for words in ("row 2", "infant_id is empty", "height_cm is empty", "grams", "sex 'x'", "row 3", "absolute"):
        assert words in text, words
    assert len(err.value.problems) == 5


def test_missing_columns_hint_at_units(tmp_path):
    (tmp_path / "manifest.csv").write_text("infant_id,media,height_mm,weight_g\nB1,a.png,500,3000\n")
    with pytest.raises(NeometerError) as err:
        load_manifest(tmp_path)
    assert "rename 'height_mm' to 'height_cm'" in str(err.value) and "'weight_kg' is missing" in str(err.value)


def test_dataset_sha256_is_content_based_and_cached(dataset, tmp_path):
    cache = tmp_path / "c"
    h1 = dataset_sha256(dataset, cache_dir=cache)
    assert (cache / "file_hashes.json").exists()
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    assert dataset_sha256(copy, cache_dir=cache) == h1  # same content elsewhere: same hash
    with open(copy / "masks" / "B01" / "000003.png", "ab") as f:
        f.write(b"\0")  # a changed mask changes the hash (size and mtime change -> re-hashed)
    assert dataset_sha256(copy, cache_dir=cache) != h1


# --- frames -----------------------------------------------------------------------------

def test_iter_frames_samples_at_the_requested_rate(dataset):
    video = dataset / "media" / "B00.mp4"
    assert [i for i, _ in media_mod.iter_frames(video, fps=2.0)] == [0, 5, 10]
    assert [i for i, _ in media_mod.iter_frames(video)] == list(range(VIDEO_FRAMES))
    assert [i for i, _ in media_mod.iter_frames(video, fps=4.0, max_frames=2)] == [0, 3]  # 0, 2.5->3
    i, frame = next(media_mod.iter_frames(video))
    assert frame.shape == (VIDEO_H, VIDEO_W, 3) and frame.dtype == np.uint8
    body = frame[body_mask(VIDEO_W, VIDEO_H) > 0].mean(axis=0)
    assert body[0] > body[2] + 30  # RGB order (the body is red-ish, the blanket green)
    (still_index, still), = media_mod.iter_frames(dataset / "media" / "B00_still.png", fps=2.0)
    assert still_index == 0 and still.shape == (50, 30, 3)


def test_mask_for_frame(dataset):
    recs = load_manifest(dataset)
    video, still, nomask = recs[0], recs[1], recs[-1]
    assert media_mod.mask_for_frame(nomask, 0) is None
    m = media_mod.mask_for_frame(video, 4)
    np.testing.assert_array_equal(m, body_mask(VIDEO_W, VIDEO_H, shift=1) / 255.0)
    assert media_mod.mask_for_frame(still, 0).shape == (50, 30)
    with pytest.raises(NeometerError, match="no mask for frame 99"):
        media_mod.mask_for_frame(video, 99)


def test_frame_table_contents(dataset, tmp_path):
    table = cache_mod.build_frame_table(dataset, spec=SPEC, fps=2.0, cache_dir=tmp_path / "c", progress=False)
    recs = table.recordings
    assert len(table) == 4 * (3 + 1) + 1  # 4 videos x 3 sampled frames + 5 stills
    assert table.images.shape == (17, 64, 64, 3) and table.images.dtype == np.uint8
    assert table.masks.shape == (17, 64, 64) and table.masks.dtype == np.uint8
    assert list(table.frame_index[table.recording == 0]) == [0, 5, 10]
    assert set(table.infant_id) == {"B00", "B01", "B02", "B03"}
    i_still = int(np.flatnonzero(table.recording == 1)[0])
    np.testing.assert_array_equal(table.images[i_still], letterbox(read_image(recs[1].media), SPEC)[0])
    assert table.masks[i_still][:, :10].max() == 0 and table.masks[i_still].max() == 255  # padding = background
    i_nomask = int(np.flatnonzero(table.recording == len(recs) - 1)[0])
    assert (table.masks[i_nomask] == 255).all()
    assert table.height_cm[i_still] == np.float32(recs[1].height_cm) and table.height_cm.dtype == np.float32
    assert table.tags_of(i_still) == ("still", "top")
    assert table.dataset_sha256 == dataset_sha256(dataset, cache_dir=tmp_path / "c")
    sub = table.subset([i_still, i_nomask])
    assert len(sub) == 2 and sub.tags_of(0) == ("still", "top") and sub.infant_id[1] == "B00"
    assert not any(p.name == ".neometer-cache" for p in dataset.iterdir())


def test_cache_hit_on_second_build_does_not_decode(dataset, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    first = cache_mod.build_frame_table(dataset, spec=SPEC, fps=2.0, cache_dir=cache, progress=False)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache holds this recording")

    monkeypatch.setattr(media_mod, "iter_frames", no_decoding)
    monkeypatch.setattr(cache_mod.media_mod, "iter_frames", no_decoding)
    second = cache_mod.build_frame_table(dataset, spec=SPEC, fps=2.0, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.masks, second.masks)
    # another rate is another key (videos must decode) ...
    with pytest.raises(AssertionError, match="decoded although"):
        cache_mod.build_frame_table(dataset, spec=SPEC, fps=5.0, cache_dir=cache, progress=False)
    # ... and so is another preprocessing
    with pytest.raises(AssertionError, match="decoded although"):
        cache_mod.build_frame_table(dataset, spec=PreprocessSpec(target_size=32), fps=2.0, cache_dir=cache,
                                    progress=False)


def test_cache_refuses_to_live_inside_the_dataset(dataset):
    with pytest.raises(NeometerError, match="must not live inside"):
        cache_mod.build_frame_table(dataset, spec=SPEC, cache_dir=dataset / "cache", progress=False)


# --- splits -----------------------------------------------------------------------------

def sample_groups(n_infants=23, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"I{i:03d}" for i in range(n_infants)], rng.integers(1, 6, n_infants))
    heights = np.repeat(rng.normal(50, 2, n_infants), np.unique(groups, return_counts=True)[1])
    return groups, heights


@pytest.mark.parametrize("stratified", [False, True])
def test_grouped_kfold_keeps_each_infant_in_one_fold(stratified):
    groups, heights = sample_groups()
    folds = grouped_kfold(groups, k=5, seed=3, stratify=heights if stratified else None)
    assert len(folds) == 5
    seen = []
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])  # no infant on both sides
        assert len(train) + len(test) == len(groups)
        seen += list(set(groups[test]))
    assert sorted(seen) == sorted(set(groups))  # every infant tested exactly once


def test_grouped_kfold_is_deterministic_by_seed():
    groups, heights = sample_groups()
    for strat in (None, heights):
        a, b = grouped_kfold(groups, 5, seed=7, stratify=strat), grouped_kfold(groups, 5, seed=7, stratify=strat)
        assert all((x[1] == y[1]).all() for x, y in zip(a, b))
    c, d = grouped_kfold(groups, 5, seed=7), grouped_kfold(groups, 5, seed=8)
    assert any(set(groups[x[1]]) != set(groups[y[1]]) for x, y in zip(c, d))


def test_grouped_kfold_rejects_bad_k():
    groups = np.array(["a", "a", "b", "c"])
    with pytest.raises(NeometerError, match="at least 4 infants but the data has 3"):
        grouped_kfold(groups, 4)
    with pytest.raises(NeometerError, match="at least 2 folds"):
        grouped_kfold(groups, 1)


def test_splits_round_trip(tmp_path):
    groups, _ = sample_groups()
    folds = grouped_kfold(groups, 4, seed=1)
    save_splits(tmp_path / "splits.json", folds, groups, seed=1)
    loaded = load_splits(tmp_path / "splits.json")
    assert [set(te) for _, te in loaded] == [set(groups[te]) for _, te in folds]
    for (tr, te), (tr2, te2) in zip(folds, folds_for_groups(loaded, groups)):
        np.testing.assert_array_equal(tr, tr2)
        np.testing.assert_array_equal(te, te2)


# --- torch dataset ----------------------------------------------------------------------

def test_frame_dataset_removes_background_and_returns_labels(dataset, tmp_path):
    torch = pytest.importorskip("torch")
    from neometer.data.dataset import FrameDataset
    from neometer.data.preprocess import normalize

    table = cache_mod.build_frame_table(dataset, spec=SPEC, fps=2.0, cache_dir=tmp_path / "c", progress=False)
    removed = FrameDataset(table, [1, 2], spec=SPEC, background="remove")
    kept = FrameDataset(table, [1, 2], spec=SPEC, background="keep")
    x, y = removed[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), [table.height_cm[1], table.weight_kg[1]])
    zero = torch.from_numpy(normalize(np.zeros((1, 1, 3), np.uint8), SPEC)[:, 0, 0])
    background = torch.from_numpy(table.masks[1] < 128)
    assert background.any() and torch.allclose(x[:, background], zero[:, None])
    np.testing.assert_allclose(kept[0][0].numpy(), normalize(table.images[1], SPEC))
    assert not torch.allclose(kept[0][0][:, background], zero[:, None])  # the blanket is there

    aug = FrameDataset(table, [1] * 8, spec=SPEC, background="remove", augment=True, seed=0)
    xs = [aug[i][0] for i in range(8)]
    assert any(not torch.equal(a, x) for a in xs)  # augmentation changes the input ...
    for a in xs:  # ... but never brings the background back (the mask flips with the image)
        assert any(torch.allclose(a[:, bg], zero[:, None]) for bg in (background, background.flip(1)))
    batch_x, batch_y = next(iter(torch.utils.data.DataLoader(removed, batch_size=2)))
    assert batch_x.shape == (2, 3, 64, 64) and batch_y.shape == (2, 2)


def test_synth_dataset_checks_clean_and_builds(synth_dataset, tmp_path):
    """The synthetic engine writes the same format: its datasets must pass the check and build."""
    root = Path(synth_dataset)
    assert check_dataset(root, progress=False) == []
    recs = load_manifest(root)
    table = cache_mod.build_frame_table(root, spec=SPEC, fps=2.0, max_frames_per_recording=2,
                                        cache_dir=tmp_path / "c", progress=False)
    assert len(table) >= len(recs) and set(table.infant_id) == {r.infant_id for r in recs}
    has_mask = np.array([table.recordings[r].mask is not None for r in table.recording])
    assert has_mask.any()
    masked = table.masks[np.flatnonzero(has_mask)[0]]
    assert 0 < (masked >= 128).mean() < 1  # the infant's mask covers part of the frame
