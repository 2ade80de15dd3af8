"""torch Dataset over a FrameTable: background removal, optional augmentation, normalisation,
all through neometer.data.preprocess so training sees exactly what the phones compute."""

from __future__ import annotations

import numpy as np
import torch
import torch.utils.data

from neometer.data.preprocess import PreprocessSpec, apply_mask, normalize
from neometer.errors import NeometerError

BACKGROUNDS = ("remove", "keep")


def photometric_jitter(img: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Small colour changes of a uint8 RGB image (factors near 1), result uint8."""
    x = img.astype(np.float32)
    grey = x @ np.asarray([0.299, 0.587, 0.114], np.float32)
    x = grey[..., None] + (x - grey[..., None]) * saturation
    x = (x - grey.mean()) * contrast + grey.mean()
    x = x * brightness
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def augment_pair(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float = 0.1):
    """Horizontal flip (label-preserving: the infant lies top-down) + photometric jitter.
    The mask flips with the image, so background removal afterwards still zeroes the background."""
    if rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    factors = 1.0 + rng.uniform(-strength, strength, size=3)
    return photometric_jitter(img, *factors), np.ascontiguousarray(mask)


class FrameDataset(torch.utils.data.Dataset):
    """(x float32 3xSxS normalised, y float32 [height_cm, weight_kg]) for rows `indices` of a table.
    Augmentation (flip + jitter) acts on the uint8 image before masking and normalisation."""

    def __init__(self, table, indices=None, spec: PreprocessSpec | None = None, background: str = "remove",
                 augment: bool = False, seed: int = 0):
        if background not in BACKGROUNDS:
            raise NeometerError(f"background={background!r}: use one of {', '.join(BACKGROUNDS)}")
        spec = spec or getattr(table, "spec", None) or PreprocessSpec()
        if table.images.shape[1] != spec.target_size:
            raise NeometerError(f"the frame table is {table.images.shape[1]} px but the spec asks for "
                                f"{spec.target_size} px — build the table with the same PreprocessSpec")
        self.table = table
        self.indices = np.arange(len(table)) if indices is None else np.asarray(indices, np.int64)
        self.spec, self.background, self.augment, self.seed = spec, background, augment, seed
        self._rng = None

    def __len__(self) -> int:
        return len(self.indices)

    def image_u8(self, i: int) -> np.ndarray:
        """The uint8 SxSx3 image item i feeds the network (after augmentation and masking)."""
        j = int(self.indices[i])
        img, mask = np.asarray(self.table.images[j]), np.asarray(self.table.masks[j])
        if self.augment:
            img, mask = augment_pair(img, mask, self._generator())
        if self.background == "remove":
            img = apply_mask(img, mask.astype(np.float32) / 255.0, self.spec)
        return img

    def __getitem__(self, i: int):
        j = int(self.indices[i])
        x = torch.from_numpy(normalize(self.image_u8(i), self.spec))
        y = torch.tensor([self.table.height_cm[j], self.table.weight_kg[j]], dtype=torch.float32)
        return x, y

    def _generator(self) -> np.random.Generator:
        """Per-worker RNG: seeded from torch's per-worker seed so DataLoader workers differ and a
        seeded run repeats."""
        if self._rng is None:
            info = torch.utils.data.get_worker_info()
            base = info.seed if info is not None else torch.initial_seed()
            self._rng = np.random.default_rng([self.seed, base % (2**63)])
        return self._rng
