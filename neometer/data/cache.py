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

The table's `images` and `masks` stay on disk (neometer.data.rowstore.RowStore): a process reads
only the rows it indexes, so torchrun's ranks each read their own frames and share the page
cache. For a study with many recordings on a shared filesystem, `neometer data pack` copies the
entries into a few large shard files (`<cache_dir>/packs/<name>/`), which a job can copy to
node-local disk; packed recordings are read from their shard, others from their entry.
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
from neometer.data.rowstore import RowStore, npy_layout
from neometer.errors import NeometerError

CACHE_FORMAT = 1  # bump when the cached arrays change meaning
PACK_FORMAT = 1


def default_cache_dir() -> Path:
    return cache_root() / "frames"


@dataclass
class FrameTable:
    """Row i is one sampled frame; `recording[i]` indexes `.recordings`."""

    images: RowStore | np.ndarray  # (N,S,S,3) uint8 letterboxed, background kept; on disk
    masks: RowStore | np.ndarray  # (N,S,S) uint8 letterboxed coverage * 255; on disk
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
        """The rows `indices` (recordings list kept whole, so `recording` stays valid); pixels
        stay on disk."""
        idx = np.asarray(indices, dtype=np.int64)
        pick = lambda a: a.take(idx) if isinstance(a, RowStore) else a[idx]  # noqa: E731
        return FrameTable(pick(self.images), pick(self.masks), self.recording[idx], self.frame_index[idx],
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


@dataclass(frozen=True)
class CachedFrames:
    """Where one recording's frames live: a row range of an images and of a masks .npy file
    (a whole per-recording entry, or the recording's slice of a packed shard)."""

    images: tuple[str, int, int]
    masks: tuple[str, int, int]
    frame_index: np.ndarray


def _read_entry(entry: Path) -> CachedFrames | None:
    """The entry's files, checked for agreeing row counts; None when unreadable (re-decoded)."""
    try:
        frame_index = np.load(entry / "frame_index.npy")
        n = len(frame_index)
        lay = {name: npy_layout(entry / f"{name}.npy") for name in ("images", "masks")}
    except (OSError, ValueError, NeometerError):
        return None
    if any(layout.rows != n for layout in lay.values()):
        return None
    return CachedFrames((str(entry / "images.npy"), 0, n), (str(entry / "masks.npy"), 0, n), frame_index)


def load_or_decode(rec: Recording, spec: PreprocessSpec, fps: float | None, max_frames: int | None,
                   cache_dir: Path, hashes: FileHashCache, dataset_dir: Path,
                   packed: dict[str, CachedFrames] | None = None) -> tuple[CachedFrames, bool]:
    """(where its frames are, was_cached) for one recording, decoding it on a miss."""
    key = recording_key(rec, spec, fps, max_frames, hashes)
    if packed and key in packed:
        return packed[key], True
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
        if entry.is_dir():  # an unreadable entry (e.g. truncated by a full disk): replace it
            shutil.rmtree(entry, ignore_errors=True)
        _write_entry(entry, arrays, meta)
    except OSError as exc:
        raise NeometerError(f"{cache_dir}: cannot write the frame cache ({exc}) — free disk space or set "
                            "NEOMETER_CACHE to a writable folder") from None
    written = _read_entry(entry)
    if written is None:
        raise NeometerError(f"{entry}: the frame cache entry just written cannot be read back — check the disk "
                            "or set NEOMETER_CACHE to another folder")
    return written, False


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
    packed = load_packs(cache_dir)
    parts, problems, decoded = [], [], 0
    bar = tqdm(recordings, desc="frames", unit="rec", disable=not progress)
    for r, rec in enumerate(bar):
        try:
            frames, cached = load_or_decode(rec, spec, fps, max_frames_per_recording, cache_dir, hashes, dataset_dir,
                                            packed)
        except NeometerError as exc:
            problems.append(str(exc))
            continue
        decoded += not cached
        bar.set_postfix(decoded=decoded, cached=r + 1 - decoded - len(problems))
        parts.append((r, rec, frames))
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
    """One table over every recording's frames; pixels stay in their cache files."""
    if not parts:
        raise NeometerError(f"{dataset_dir}: no frames — the manifest lists no readable recording")
    counts = [len(f.frame_index) for _, _, f in parts]
    rec_index = np.repeat(np.asarray([r for r, _, _ in parts], np.int32), counts)
    per_frame = lambda values: np.repeat(np.asarray(values), counts)  # noqa: E731
    return FrameTable(
        images=RowStore.from_parts([f.images for _, _, f in parts]),
        masks=RowStore.from_parts([f.masks for _, _, f in parts]),
        recording=rec_index,
        frame_index=np.concatenate([f.frame_index for _, _, f in parts]).astype(np.int32),
        infant_id=per_frame([rec.infant_id for _, rec, _ in parts]).astype(str),
        height_cm=per_frame([rec.height_cm for _, rec, _ in parts]).astype(np.float32),
        weight_kg=per_frame([rec.weight_kg for _, rec, _ in parts]).astype(np.float32),
        recordings=recordings, dataset_sha256=sha, dataset_dir=dataset_dir, spec=spec, fps=fps)


# --- packed shards ------------------------------------------------------------------------------
# A pack is a folder <cache_dir>/packs/<name>/ with shard-00000.images.npy, shard-00000.masks.npy,
# ... and index.json: {"format": 1, "recordings": {key: {"shard": i, "start": a, "stop": b,
# "frame_index": [...]}}}. Keys are the same content keys as the entries', so a pack serves any
# dataset (or copy of it) whose recordings hash the same.

def packs_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "packs"


def load_packs(cache_dir: Path) -> dict[str, CachedFrames]:
    """Every packed recording under cache_dir (key -> where its frames are). A pack whose index
    or shard files are missing is ignored (its recordings come from their entries or are decoded)."""
    found: dict[str, CachedFrames] = {}
    root = packs_dir(cache_dir)
    for index in sorted(root.glob("*/index.json")) if root.is_dir() else []:
        try:
            doc = json.loads(index.read_text())
            if doc.get("format") != PACK_FORMAT:
                continue
            shards = [(str(index.parent / f"{s}.images.npy"), str(index.parent / f"{s}.masks.npy"))
                      for s in doc["shards"]]
            if not all(Path(p).is_file() for pair in shards for p in pair):
                continue
            for key, loc in doc["recordings"].items():
                img, msk = shards[loc["shard"]]
                span = (loc["start"], loc["stop"])
                found.setdefault(key, CachedFrames((img, *span), (msk, *span),
                                                   np.asarray(loc["frame_index"], np.int32)))
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue
    return found


def pack_cache(dataset_dir: str | Path, spec: PreprocessSpec = PreprocessSpec(), fps: float | None = 2.0,
               max_frames_per_recording: int | None = None, cache_dir: str | Path | None = None,
               shard_mb: float = 1024, keep_entries: bool = False, progress: bool = True, log=print) -> Path | None:
    """Copy a dataset's cached frames (decoding what is missing) into shards of about `shard_mb`
    megabytes; then, unless keep_entries, delete the per-recording entries now served by the pack.
    Returns the pack folder, or None when every recording was already packed."""
    from tqdm import tqdm

    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    table = build_frame_table(dataset_dir, spec, fps, max_frames_per_recording, cache_dir, progress)
    hashes = FileHashCache(cache_dir / "file_hashes.json")
    packed = load_packs(cache_dir)
    todo = []  # (key, entry folder, rows of the table)
    for r, rec in enumerate(table.recordings):
        key = recording_key(rec, spec, fps, max_frames_per_recording, hashes)
        if key not in packed:
            todo.append((key, cache_dir / key[:2] / key, np.flatnonzero(table.recording == r)))
    if not todo:
        log(f"{cache_dir}: all {len(table.recordings)} recordings are already packed")
        return None
    frame_bytes = (table.images.nbytes + table.masks.nbytes) // max(len(table), 1)
    per_shard = max(int(shard_mb * 2**20 // max(frame_bytes, 1)), 1)
    name = hashlib.sha256("\n".join(sorted(k for k, _, _ in todo)).encode()).hexdigest()[:16]
    final = packs_dir(cache_dir) / name
    tmp = final.with_name(f"{name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    index = {"format": PACK_FORMAT, "preprocessing": spec.to_dict(), "fps": fps,
             "max_frames": max_frames_per_recording, "shards": [], "recordings": {}}
    groups = _shard_groups(todo, per_shard)
    bar = tqdm(total=sum(len(rows) for _, _, rows in todo), desc=f"pack {len(groups)} shards", unit="frame",
               disable=not progress)
    for s, group in enumerate(groups):
        shard = f"shard-{s:05d}"
        rows = np.concatenate([g[2] for g in group])
        _write_shard(tmp / shard, table, rows, bar)
        start = 0
        for key, _, rec_rows in group:
            index["recordings"][key] = {"shard": s, "start": start, "stop": start + len(rec_rows),
                                        "frame_index": table.frame_index[rec_rows].tolist()}
            start += len(rec_rows)
        index["shards"].append(shard)
    bar.close()
    (tmp / "index.json").write_text(json.dumps(index))
    os.rename(tmp, final)  # a pack appears whole or not at all
    removed = 0
    if not keep_entries:
        for _, entry, _ in todo:
            if entry.is_dir():
                shutil.rmtree(entry)
                removed += 1
    size = sum(p.stat().st_size for p in final.iterdir())
    log(f"{final}: {len(todo)} recordings, {sum(len(r) for _, _, r in todo)} frames in {len(groups)} shard(s), "
        f"{size / 2**20:.1f} MB" + (f"; removed {removed} per-recording entries it replaces" if removed else ""))
    return final


def _shard_groups(todo: list, per_shard: int) -> list[list]:
    """Whole recordings, in order, into groups of at most ~per_shard frames (a recording
    longer than a shard gets a shard of its own)."""
    groups, current, n = [], [], 0
    for item in todo:
        if current and n + len(item[2]) > per_shard:
            groups.append(current)
            current, n = [], 0
        current.append(item)
        n += len(item[2])
    return groups + ([current] if current else [])


def _write_shard(prefix: Path, table: FrameTable, rows: np.ndarray, bar, chunk: int = 256) -> None:
    for name, store in (("images", table.images), ("masks", table.masks)):
        out = np.lib.format.open_memmap(f"{prefix}.{name}.npy", mode="w+", dtype=store.dtype,
                                        shape=(len(rows), *store.shape[1:]))
        for a in range(0, len(rows), chunk):
            out[a:a + chunk] = store[rows[a:a + chunk]]
            if name == "images":
                bar.update(len(rows[a:a + chunk]))
        out.flush()
        del out


__all__ = ["CachedFrames", "FrameTable", "build_frame_table", "default_cache_dir", "load_packs", "pack_cache",
           "recording_key"]
