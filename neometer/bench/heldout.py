"""The images parity is judged on: held-out infants with labels.

- `--data DIR`: a dataset (manifest.csv + media); the held-out infants of the checkpoint's
  split when its config records them, else every infant; frames spread evenly over infants.
- default: a synthetic benchmark set rendered on the fly by neometer.synth (seeded, one frame
  per distinct synthetic infant), so the benchmark works offline with no dataset on disk.

Also one source camera frame (with its mask) for the end-to-end timing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neometer.data.preprocess import PreprocessSpec, apply_mask, normalize, preprocess
from neometer.errors import NeometerError

SYNTH_SEED = 20240601  # the benchmark set is fixed so runs compare
SOURCE_FRAME_SIZE = (1280, 720)  # a phone video frame, for end-to-end timing


@dataclass
class HeldOut:
    x: np.ndarray  # (N, 3, S, S) float32, THE preprocessing applied
    labels: np.ndarray  # (N, 2) float32 [height_cm, weight_kg]
    infant_ids: list[str]
    source: str  # what the images are, for the report
    frame: np.ndarray | None = None  # one source frame (H, W, 3) u8 for end-to-end timing
    mask: np.ndarray | None = None  # its mask (H, W) u8


def synthetic_heldout(n_images: int, spec: PreprocessSpec, seed: int = SYNTH_SEED,
                      frame_size: tuple[int, int] = (480, 360), progress: bool = True) -> HeldOut:
    try:
        from neometer.synth.render import sample_frame
    except ImportError as exc:
        raise NeometerError(f"the synthetic benchmark set needs neometer.synth ({exc}); pass --data DIR instead") from None
    from tqdm import tqdm

    xs, labels, ids = [], [], []
    for i in tqdm(range(n_images), desc="rendering synthetic benchmark set", disable=not progress, leave=False):
        rgb, mask, lab = sample_frame(seed=seed + i, width=frame_size[0], height=frame_size[1])
        xs.append(preprocess(rgb, mask, spec))
        labels.append([lab["height_cm"], lab["weight_kg"]])
        ids.append(str(lab.get("infant_id", f"synth{seed + i}")))
    frame, fmask, _ = sample_frame(seed=seed - 1, width=SOURCE_FRAME_SIZE[0], height=SOURCE_FRAME_SIZE[1])
    return HeldOut(np.stack(xs).astype(np.float32), np.asarray(labels, np.float32), ids,
                   f"synthetic benchmark set: {n_images} frames of distinct infants (seed {seed})", frame, fmask)


def heldout_infants(config: dict) -> set[str] | None:
    """The held-out infant ids the checkpoint's split records, if any."""
    split = config.get("split") or {}
    for key in ("test_infants", "heldout_infants", "held_out_infants", "test_infant_ids", "test"):
        ids = split.get(key)
        if isinstance(ids, list) and ids and all(isinstance(i, (str, int)) for i in ids):
            return {str(i) for i in ids}
    return None


def dataset_heldout(data_dir, config: dict, n_images: int, spec: PreprocessSpec, progress: bool = True) -> HeldOut:
    from neometer.data.cache import build_frame_table

    table = build_frame_table(data_dir, spec=spec, fps=2.0, progress=progress)
    wanted = heldout_infants(config)
    ids = np.asarray(table.infant_id).astype(str)
    idx = np.flatnonzero(np.isin(ids, list(wanted))) if wanted else np.arange(len(ids))
    if len(idx) == 0:
        raise NeometerError(f"{data_dir}: none of the checkpoint's held-out infants ({len(wanted)}) are in this "
                            "dataset; pass the dataset the checkpoint was trained on")
    idx = spread_over_infants(idx, ids, n_images)
    u8 = np.stack([apply_mask(table.images[i], table.masks[i].astype(np.float32) / 255.0, spec) for i in idx])
    labels = np.stack([table.height_cm[idx], table.weight_kg[idx]], axis=1).astype(np.float32)
    what = "held-out infants of the checkpoint's split" if wanted else "all infants (no held-out split recorded)"
    frame, fmask = table.images[idx[0]], table.masks[idx[0]]
    return HeldOut(normalize(u8, spec), labels, list(ids[idx]), f"{data_dir}: {len(idx)} frames, {what}", frame, fmask)


def spread_over_infants(idx: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Up to n frame indices taken round-robin over infants, so each infant counts."""
    by_infant: dict[str, list[int]] = {}
    for i in idx:
        by_infant.setdefault(ids[i], []).append(int(i))
    queues, chosen = list(by_infant.values()), []
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    return np.asarray(sorted(chosen))
