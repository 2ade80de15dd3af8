"""int8 calibration data: the real preprocessing on real-looking frames, never random tensors.

`--calib N` renders N frames with the synthetic engine (offline, so a fresh clone works);
`--calib DATASET_DIR` takes N frames spread over a dataset's recordings. Either way the
frames go through THE preprocessing (letterbox, background removal as the checkpoint's
preprocessing says, ImageNet normalisation). Count and hash go into the model card."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neometer.data.preprocess import PreprocessSpec, preprocess
from neometer.errors import NeometerError

DEFAULT_COUNT = 32


@dataclass
class Calibration:
    x: np.ndarray  # N x 3 x S x S float32, normalised (what PyTorch takes)
    source: str

    @property
    def count(self) -> int:
        return int(self.x.shape[0])

    @property
    def sha256(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.x, "<f4").tobytes()).hexdigest()

    def to_card(self) -> dict:
        return {"count": self.count, "sha256": self.sha256, "source": self.source}

    def unnormalized_nhwc(self, spec: PreprocessSpec) -> np.ndarray:
        """Pixels in [0, 1] NHWC (x * std + mean), the form onnx2tf's calibration takes."""
        mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
        return np.ascontiguousarray(self.x.transpose(0, 2, 3, 1) * std + mean, np.float32)


def synthetic_calibration(n: int, spec: PreprocessSpec, progress: bool = True) -> Calibration:
    """N frames from the synthetic engine, seeds 0..N-1, portrait and landscape alternating."""
    from tqdm import tqdm

    try:
        from neometer.synth.render import sample_frame
    except ImportError as exc:
        raise NeometerError(f"the synthetic engine is not importable ({exc}); pass --calib DATASET_DIR") from None
    long_side = max(320, 2 * spec.target_size)
    short_side = long_side * 9 // 16
    xs = []
    for seed in tqdm(range(n), desc="calibration frames", unit="frame", disable=not progress, leave=False):
        w, h = (long_side, short_side) if seed % 2 == 0 else (short_side, long_side)
        rgb, mask, _ = sample_frame(seed=seed, width=w, height=h)
        use_mask = mask if spec.background_removal == "mask" else None
        xs.append(preprocess(rgb, use_mask, spec))
    return Calibration(np.stack(xs).astype(np.float32), f"synthetic:seeds 0-{n - 1}:{w}x{h}")


def dataset_calibration(dataset_dir: Path, n: int, spec: PreprocessSpec, progress: bool = True) -> Calibration:
    """N frames spread evenly over a dataset (manifest.csv + media), background removed as the
    checkpoint's preprocessing says."""
    from neometer.data.cache import build_frame_table
    from neometer.data.dataset import FrameDataset

    table = build_frame_table(dataset_dir, spec, fps=1.0, progress=progress)
    if len(table) == 0:
        raise NeometerError(f"{dataset_dir}: no frames to calibrate on; check it with `neometer data check`")
    idx = np.unique(np.linspace(0, len(table) - 1, min(n, len(table))).round().astype(int))
    background = "remove" if spec.background_removal == "mask" else "keep"
    ds = FrameDataset(table, idx, spec, background=background)
    xs = np.stack([ds[i][0].numpy() for i in range(len(ds))]).astype(np.float32)
    return Calibration(xs, f"dataset:{Path(dataset_dir).name}:sha256={getattr(table, 'dataset_sha256', '?')}")


def load_calibration(calib: str | int | None, spec: PreprocessSpec, count: int | None = None,
                     progress: bool = True) -> Calibration:
    """`calib` = None (synthetic, DEFAULT_COUNT), an integer N, or a dataset directory."""
    if calib is None or (isinstance(calib, str) and calib.isdigit()) or isinstance(calib, int):
        n = int(calib) if calib is not None else (count or DEFAULT_COUNT)
        if n < 1:
            raise NeometerError(f"--calib {calib}: need at least 1 calibration frame")
        return synthetic_calibration(n, spec, progress)
    path = Path(calib)
    if not path.is_dir():
        raise NeometerError(f"--calib {calib}: not a dataset folder nor a number of synthetic frames; "
                            "pass a folder with manifest.csv or an integer such as 64")
    return dataset_calibration(path, count or DEFAULT_COUNT, spec, progress)
