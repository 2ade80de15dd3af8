"""Write a synthetic dataset folder in the same format as real recordings.

DIR/manifest.csv   infant_id, media, height_cm, weight_kg, mask, sex, gestational_age_weeks, tags
DIR/videos/<rec>.mp4          phone videos (mp4v), per-frame masks in DIR/masks/<rec>/000000.png ...
DIR/stills/<rec>.jpg          photos, mask in DIR/masks/<rec>.png
DIR/labels.json               every render parameter, for reproducibility

Each infant i uses seeds (seed, i) for who it is and (seed, i, k) for its k-th recording, so the
same seed gives byte-identical files and infants do not depend on how many others are written.
The folder is built under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from neometer.errors import NeometerError
from neometer.synth import render
from neometer.synth.camera import image_size

MANIFEST_COLUMNS = ["infant_id", "media", "height_cm", "weight_kg", "mask", "sex", "gestational_age_weeks", "tags"]
GENERATOR = "neometer.synth"


@dataclass(frozen=True)
class Preset:
    n_infants: int
    long_side: int
    fps: float
    seconds: tuple[float, float]  # video length range
    videos: int = 1
    stills: int = 1


PRESETS = {
    # The paper's set: 200 newborns, a short phone video and a photo each.
    "bench": Preset(n_infants=200, long_side=640, fps=15.0, seconds=(3.0, 10.0)),
    "default": Preset(n_infants=20, long_side=640, fps=15.0, seconds=(3.0, 10.0)),
    # For CI: a handful of infants, 1 s clips at 8 fps, 192 px long side.
    "tiny": Preset(n_infants=6, long_side=192, fps=8.0, seconds=(1.0, 1.0)),
}


def _png_bytes(mask: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    return buf.tobytes()


def _write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not vw.isOpened():
        raise NeometerError(f"{path}: OpenCV cannot write mp4v video here; install opencv-python-headless with FFmpeg")
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise NeometerError(f"{out}: folder exists and is not empty; choose another --out or pass --force to replace it")
        labels = out / "labels.json"
        try:
            ours = json.loads(labels.read_text()).get("generator") == GENERATOR
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise NeometerError(f"{out}: --force only replaces a folder written by `neometer synth` "
                                "(it has labels.json with generator neometer.synth); this one is not, so it is kept")


def write_dataset(out_dir, n_infants: int | None = None, seed: int = 0, preset: str | None = None, width: int | None = None,
                  progress: bool = True, force: bool = False, rates: dict | None = None, fps: float | None = None,
                  seconds: tuple[float, float] | None = None, workers: int = 1) -> Path:
    """Write `n_infants` synthetic newborns (each: videos + stills with masks) to out_dir.
    `workers` > 1 renders infants in parallel processes; each infant depends only on
    (seed, index), so the files are the same bytes either way."""
    from tqdm import tqdm

    p = PRESETS[preset or "default"] if (preset or "default") in PRESETS else None
    if p is None:
        raise NeometerError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    n = int(n_infants if n_infants is not None else p.n_infants)
    if n < 1:
        raise NeometerError(f"--infants must be at least 1 (got {n})")
    long_side = int(width or p.long_side)
    if long_side < 64:
        raise NeometerError(f"--width must be at least 64 px (got {long_side})")
    fps = float(fps or p.fps)
    seconds = seconds or p.seconds
    out = Path(out_dir)
    _check_target(out, force)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("videos", "stills", "masks"):
        (tmp / sub).mkdir(parents=True)
    rows, infants = [], {}
    try:
        job = functools.partial(_write_infant_job, (tmp, seed, p, long_side, fps, seconds, rates))
        with multiprocessing.get_context("fork").Pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
            results = pool.imap(job, range(n)) if pool else map(job, range(n))
            for rows_i, meta in tqdm(results, total=n, desc="synth infants", unit="infant", disable=not progress):
                rows += rows_i
                infants[meta["infant_id"]] = meta
        _write_manifest(tmp / "manifest.csv", rows)
        info = {"generator": GENERATOR, "seed": seed, "preset": preset, "n_infants": n, "long_side": long_side,
                "fps": fps, "seconds": list(seconds), "rates": {**render.DEFAULT_RATES, **(rates or {})},
                "infants": infants}
        (tmp / "labels.json").write_text(json.dumps(info, indent=1, sort_keys=True))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    return out


def _write_infant_job(common: tuple, i: int) -> tuple[list, dict]:
    root, seed, p, long_side, fps, seconds, rates = common
    return _write_infant(root, seed, i, p, long_side, fps, seconds, rates)


def _write_infant(root: Path, seed: int, i: int, p: Preset, long_side: int, fps: float, seconds, rates) -> tuple[list, dict]:
    infant_id = f"syn{i + 1:04d}"
    infant_seed = (int(seed), i)
    ov = {"rates": rates} if rates else {}
    infant, labels = render.make_infant(infant_seed, **ov)
    rows, recs = [], {}
    for k in range(p.videos + p.stills):
        is_video = k < p.videos
        rec_seed = (int(seed), i, k)
        pick = np.random.default_rng([*rec_seed, 9])
        orientation = "portrait" if pick.random() < 0.6 else "landscape"
        w, h = image_size(long_side, orientation)
        rec = render.plan_recording(rec_seed, w, h, video=is_video, infant=infant, orientation=orientation, **ov)
        name = f"{infant_id}_{'v' if is_video else 's'}{k}"
        if is_video:
            dur = float(pick.uniform(*seconds)) if seconds[1] > seconds[0] else float(seconds[0])
            frames, masks = [], []
            for rgb, mask, _ in render.iter_video(rec, dur, fps):
                frames.append(rgb)
                masks.append(mask)
            media, mask_rel = f"videos/{name}.mp4", f"masks/{name}"
            tmp_video = root / f"videos/.{name}.tmp.mp4"
            _write_video(tmp_video, frames, fps)
            tmp_video.rename(root / media)
            (root / mask_rel).mkdir()
            for j, m in enumerate(masks):
                (root / mask_rel / f"{j:06d}.png").write_bytes(_png_bytes(m))
            extra = {"fps": fps, "n_frames": len(frames), "seconds": round(dur, 3)}
        else:
            rgb, mask, _ = render.render_at(rec, 0.0, 0)
            media, mask_rel = f"stills/{name}.jpg", f"masks/{name}.png"
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, rec.degrade["jpeg_quality"]])
            (root / media).write_bytes(buf.tobytes())
            (root / mask_rel).write_bytes(_png_bytes(mask))
            extra = {}
        tags = render.recording_tags(rec)
        rows.append({"infant_id": infant_id, "media": media, "height_cm": f"{labels['height_cm']:.2f}",
                     "weight_kg": f"{labels['weight_kg']:.3f}", "mask": mask_rel, "sex": labels["sex"],
                     "gestational_age_weeks": f"{labels['gestational_age_weeks']:.1f}", "tags": ";".join(tags)})
        recs[media] = {"mask": mask_rel, "tags": tags, "visible_extent_cm": round(render.visible_extent_cm(rec), 2),
                       "render": rec.to_dict(), **extra}
    meta = {"infant_id": infant_id, "seed": list(infant_seed), **labels, "appearance": infant.to_dict(), "recordings": recs}
    return rows, meta


def _write_manifest(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())
