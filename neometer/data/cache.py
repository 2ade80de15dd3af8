"""The frame table: every sampled frame of a dataset, decoded and letterboxed once, cached
on disk so training does not decode video every epoch.

Per recording the cache holds `images.npy` (F,S,S,3 uint8, letterboxed, background KEPT),
`masks.npy` (F,S,S uint8 = round(letterbox_mask * 255); 255 everywhere without a mask) and
`frame_index.npy` (F int32), under `<cache_dir>/<key[:2]>/<key>/`, where key = sha256 of the
media bytes, the mask bytes, the preprocessing fingerprint, the sampling rate and the frame
cap. Labels are not in the cache (they come from the manifest on every build), so fixing a
label never costs a decode. The cache never lives inside the dataset folder.

Storing the mask as a byte is exact for background removal at threshold 0.5: the byte is
>= 128 exactly when the float coverage is >= 0.5 (round half up puts 127.5 on 128).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neometer.data import media as media_mod
from neometer.data.manifest import (FileHashCache, Recording, cache_root, dataset_sha256, files_of,
                                    load_manifest, where)
from neometer.data.preprocess import PreprocessSpec, letterbox, letterbox_mask, spec_fingerprint
from neometer.errors import NeometerError

CACHE_FORMAT = 1  # bump when the cached arrays change meaning


def default_cache_dir() -> Path:
    return cache_root() / "frames"


@dataclass
class FrameTable:
    """Row i is one sampled frame; `recording[i]` indexes `.recordings`."""

    images: np.ndarray  # (N,S,S,3) uint8 letterboxed, background kept
    masks: np.ndarray  # (N,S,S) uint8 letterboxed coverage * 255
    recording: np.ndarray  # (N,) int32
    frame_index: np.ndarray  # (N,) int32
    infant_id: np.ndarray  # (N,) str
    height_cm: np.ndarray  # (N,) float32
    weight_kg: np.ndarray  # (N,) float32
    recordings: list[Recording] = field(default_factory=list)
    dataset_sha256: str = ""
    dataset_dir: Path | None = None
    spec: PreprocessSpec = field(default_factory=PreprocessSpec)
    fps: float | None = 2.0

    def __len__(self) -> int:
        return len(self.images)

    def tags_of(self, i: int) -> tuple[str, ...]:
        return self.recordings[int(self.recording[i])].tags

    def subset(self, indices) -> "FrameTable":
        """The rows `indices` (recordings list kept whole, so `recording` stays valid)."""
        idx = np.asarray(indices, dtype=np.int64)
        return FrameTable(self.images[idx], self.masks[idx], self.recording[idx], self.frame_index[idx],
                          self.infant_id[idx], self.height_cm[idx], self.weight_kg[idx], self.recordings,
                          self.dataset_sha256, self.dataset_dir, self.spec, self.fps)

    @property
    def labels(self) -> np.ndarray:
        """(N, 2) float32 [height_cm, weight_kg]."""
        return np.stack([self.height_cm, self.weight_kg], axis=1)


def recording_key(rec: Recording, spec: PreprocessSpec, fps: float | None, max_frames: int | None,
                  hashes: FileHashCache) -> str:
    h = hashlib.sha256(f"neometer-frames-v{CACHE_FORMAT}\n".encode())
    h.update(f"media {hashes.sha256(rec.media)}\n".encode())
    for file in files_of(rec.mask):  # mask folder: names matter (they are frame indices)
        h.update(f"mask {file.name} {hashes.sha256(file)}\n".encode())
    video = media_mod.is_video(rec.media)
    # A still has one frame whatever the rate: keep its key independent of fps / max_frames.
    h.update(f"spec {spec_fingerprint(spec)} fps {fps if video else None} max {max_frames if video else None}\n"
             .encode())
    return h.hexdigest()


def decode_recording(rec: Recording, spec: PreprocessSpec, fps: float | None,
                     max_frames: int | None, dataset_dir: Path) -> dict[str, np.ndarray]:
    """Decode + letterbox every sampled frame of one recording (the expensive part)."""
    size = spec.target_size
    images, masks, indices = [], [], []
    prefix = where(dataset_dir, rec.row, rec.infant_id, rec.media)
    try:
        for frame_index, rgb in media_mod.iter_frames(rec.media, fps=fps, max_frames=max_frames):
            boxed, _ = letterbox(rgb, spec)
            mask = media_mod.mask_for_frame(rec, frame_index)
            if mask is None:
                mask_u8 = np.full((size, size), 255, np.uint8)
            else:
                if mask.shape[:2] != rgb.shape[:2]:
                    raise NeometerError(f"mask of frame {frame_index} is {mask.shape[1]}x{mask.shape[0]} but the "
                                        f"frame is {rgb.shape[1]}x{rgb.shape[0]} — save masks at the frame size")
                mask_u8 = np.clip(np.floor(letterbox_mask(mask, spec) * 255.0 + 0.5), 0, 255).astype(np.uint8)
            images.append(boxed)
            masks.append(mask_u8)
            indices.append(frame_index)
    except NeometerError as exc:
        raise NeometerError(f"{prefix}: {exc}") from None
    return {"images": np.stack(images), "masks": np.stack(masks),
            "frame_index": np.asarray(indices, np.int32)}


def _write_entry(entry: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write into a private temp folder, then rename: readers never see half an entry."""
    tmp = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, arr in arrays.items():
        np.save(tmp / f"{name}.npy", arr)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        os.rename(tmp, entry)
    except OSError:  # another process wrote the same entry first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)


def _read_entry(entry: Path) -> dict[str, np.ndarray] | None:
    try:
        return {name: np.load(entry / f"{name}.npy", mmap_mode="r") for name in ("images", "masks", "frame_index")}
    except (OSError, ValueError):
        return None


def load_or_decode(rec: Recording, spec: PreprocessSpec, fps: float | None, max_frames: int | None,
                   cache_dir: Path, hashes: FileHashCache, dataset_dir: Path) -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, was_cached) for one recording."""
    key = recording_key(rec, spec, fps, max_frames, hashes)
    entry = cache_dir / key[:2] / key
    cached = _read_entry(entry) if entry.is_dir() else None
    if cached is not None:
        return cached, True
    arrays = decode_recording(rec, spec, fps, max_frames, dataset_dir)
    meta = {"format": CACHE_FORMAT, "media": str(rec.media), "mask": str(rec.mask) if rec.mask else None,
            "preprocessing": spec.to_dict(), "fps": fps, "max_frames": max_frames,
            "frames": int(len(arrays["frame_index"]))}
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _write_entry(entry, arrays, meta)
    except OSError as exc:
        raise NeometerError(f"{cache_dir}: cannot write the frame cache ({exc}) — free disk space or set "
                            "NEOMETER_CACHE to a writable folder") from None
    return arrays, False


def build_frame_table(dataset_dir: str | Path, spec: PreprocessSpec = PreprocessSpec(), fps: float | None = 2.0,
                      max_frames_per_recording: int | None = None, cache_dir: str | Path | None = None,
                      progress: bool = True, workers: int = 1) -> FrameTable:
    """Every sampled frame of a dataset, letterboxed (background kept) with its mask and labels.
    Raises NeometerError listing every recording that could not be decoded. `workers` > 1
    decodes uncached recordings in parallel processes first (a GPU host's idle cores)."""
    from tqdm import tqdm

    dataset_dir = Path(dataset_dir).absolute()
    recordings = load_manifest(dataset_dir)
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if cache_dir.absolute().is_relative_to(dataset_dir):
        raise NeometerError(f"{cache_dir}: the frame cache must not live inside the dataset folder — "
                            "choose another --cache-dir / NEOMETER_CACHE")
    if workers > 1:
        _warm_cache_parallel(recordings, spec, fps, max_frames_per_recording, cache_dir, dataset_dir, workers, progress)
    hashes = FileHashCache(cache_dir / "file_hashes.json")
    parts, problems, decoded = [], [], 0
    bar = tqdm(recordings, desc="frames", unit="rec", disable=not progress)
    for r, rec in enumerate(bar):
        try:
            arrays, cached = load_or_decode(rec, spec, fps, max_frames_per_recording, cache_dir, hashes, dataset_dir)
        except NeometerError as exc:
            problems.append(str(exc))
            continue
        decoded += not cached
        bar.set_postfix(decoded=decoded, cached=r + 1 - decoded - len(problems))
        parts.append((r, rec, arrays))
    hashes.save()
    if problems:
        raise NeometerError(f"{dataset_dir}: {len(problems)} recording(s) could not be decoded; run "
                            "`neometer data check` for a full report", problems=problems)
    return _assemble(parts, recordings, spec, fps, dataset_dir, dataset_sha256(dataset_dir, cache_dir))


def _warm_one(job: tuple) -> None:
    rec, spec, fps, max_frames, cache_dir, dataset_dir = job
    hashes = FileHashCache(cache_dir / f"file_hashes.{os.getpid()}.scratch.json")  # never saved
    try:
        load_or_decode(rec, spec, fps, max_frames, cache_dir, hashes, dataset_dir)
    except NeometerError:
        pass  # the sequential pass reports it with every other problem


def _warm_cache_parallel(recordings, spec, fps, max_frames, cache_dir, dataset_dir, workers, progress) -> None:
    import multiprocessing

    from tqdm import tqdm

    jobs = [(rec, spec, fps, max_frames, cache_dir, dataset_dir) for rec in recordings]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for _ in tqdm(pool.imap_unordered(_warm_one, jobs), total=len(jobs), desc=f"decode x{workers}",
                      unit="rec", disable=not progress):
            pass


def _assemble(parts, recordings, spec, fps, dataset_dir, sha) -> FrameTable:
    counts = [len(a["frame_index"]) for _, _, a in parts]
    rec_index = np.repeat(np.asarray([r for r, _, _ in parts], np.int32), counts)
    per_frame = lambda values: np.repeat(np.asarray(values), counts)  # noqa: E731
    return FrameTable(
        images=np.concatenate([a["images"] for _, _, a in parts]),
        masks=np.concatenate([a["masks"] for _, _, a in parts]),
        recording=rec_index,
        frame_index=np.concatenate([a["frame_index"] for _, _, a in parts]).astype(np.int32),
        infant_id=per_frame([rec.infant_id for _, rec, _ in parts]).astype(str),
        height_cm=per_frame([rec.height_cm for _, rec, _ in parts]).astype(np.float32),
        weight_kg=per_frame([rec.weight_kg for _, rec, _ in parts]).astype(np.float32),
        recordings=recordings, dataset_sha256=sha, dataset_dir=dataset_dir, spec=spec, fps=fps)


__all__ = ["FrameTable", "build_frame_table", "default_cache_dir", "recording_key"]
