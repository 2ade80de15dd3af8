"""THE preprocessing: the one implementation that training, calibration, parity and the
golden vectors use. The app shells re-implement it from the model card's `preprocessing`
block and are checked against the golden vectors this module produces.

The paper (Sec. 3.1): keep the aspect ratio, scale the long side to 224, pad the short side
with zeros, RGB, ImageNet mean/std; background removal zeroes pixels outside the mask.

The resize is an exactly specified "area" rule (each output pixel is the coverage-weighted
mean of the source pixels under it, separable in x then y), written out here in numpy rather
than delegated to OpenCV so that JavaScript, Java and Swift can reproduce it to the grey level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neometer.errors import NeometerError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessSpec:
    """Everything a shell needs to reproduce the preprocessing; serialised into model cards."""

    target_size: int = 224
    resize_rule: str = "long_side"  # the long side becomes target_size, aspect ratio kept
    resize: str = "area"  # coverage-weighted box filter, separable, x then y
    placement: str = "center"  # image centred, offset = (target - new) // 2 on each axis
    pad_value: int = 0
    rounding: str = "round_half_up"  # uint8 = floor(value + 0.5) after each resize pass
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    background_removal: str = "mask"  # "mask" (ground truth or segmenter) or "none"
    mask_threshold: float = 0.5  # a letterboxed mask value >= threshold keeps the pixel

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessSpec":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


@dataclass(frozen=True)
class Letterbox:
    """Where the source image landed inside the square: needed to map masks and gates."""

    src_w: int
    src_h: int
    new_w: int
    new_h: int
    off_x: int
    off_y: int

    @property
    def content_box(self) -> tuple[int, int, int, int]:
        """x0, y0, x1, y1 (exclusive) of the image inside the padded square."""
        return self.off_x, self.off_y, self.off_x + self.new_w, self.off_y + self.new_h


def letterbox_geometry(src_w: int, src_h: int, size: int) -> Letterbox:
    scale = size / max(src_w, src_h)
    new_w = max(1, min(size, int(np.floor(src_w * scale + 0.5))))
    new_h = max(1, min(size, int(np.floor(src_h * scale + 0.5))))
    return Letterbox(src_w, src_h, new_w, new_h, (size - new_w) // 2, (size - new_h) // 2)


def area_weights(src: int, dst: int) -> np.ndarray:
    """dst x src matrix: row i holds the overlap of output pixel i's footprint
    [i*src/dst, (i+1)*src/dst) with each source pixel, normalised to sum 1. The definition
    of the area rule; `area_resize_axis` computes the same thing in O(n)."""
    edges = np.arange(dst + 1, dtype=np.float64) * (src / dst)
    lo, hi = edges[:-1, None], edges[1:, None]
    px = np.arange(src, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def area_resize_axis(x: np.ndarray, dst: int, axis: int) -> np.ndarray:
    """Area-resize float64 `x` along `axis` to `dst` samples: each output is the integral of
    the piecewise-constant source over its footprint divided by the footprint's length,
    computed from the running sum (the integral image) so it is O(n) at any scale."""
    x = np.ascontiguousarray(np.moveaxis(x, axis, 0), dtype=np.float64)  # running sum along rows is fast
    src = x.shape[0]
    csum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    edges = np.arange(dst + 1, dtype=np.float64) * (src / dst)
    whole = np.minimum(np.floor(edges).astype(np.int64), src)
    frac = (edges - whole)[(...,) + (None,) * (x.ndim - 1)]
    integral = csum[whole] + frac * x[np.minimum(whole, src - 1)]
    out = (integral[1:] - integral[:-1]) / (src / dst)
    return np.moveaxis(out, 0, axis)


def _round_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def resize_area(img: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    """Separable area resize of an HxWxC (or HxW) uint8 image: x pass, round, y pass, round.
    Rounding between passes keeps every shell's intermediate in bytes, as canvases are."""
    h, w = img.shape[:2]
    if (w, h) == (new_w, new_h):
        return img.copy()
    x = (img if img.ndim == 3 else img[..., None]).astype(np.float64)
    x = _round_u8(area_resize_axis(x, new_w, axis=1))
    y = _round_u8(area_resize_axis(x.astype(np.float64), new_h, axis=0))
    return y if img.ndim == 3 else y[..., 0]


def letterbox(img: np.ndarray, spec: PreprocessSpec = PreprocessSpec()) -> tuple[np.ndarray, Letterbox]:
    """HxWx3 uint8 RGB -> target x target x 3 uint8, long side scaled, short side padded."""
    h, w = img.shape[:2]
    geo = letterbox_geometry(w, h, spec.target_size)
    out = np.full((spec.target_size, spec.target_size) + img.shape[2:], spec.pad_value, np.uint8)
    x0, y0, x1, y1 = geo.content_box
    out[y0:y1, x0:x1] = resize_area(img, geo.new_w, geo.new_h)
    return out, geo


def letterbox_mask(mask: np.ndarray, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """A source-resolution mask (bool, 0/1 or 0..255) -> target x target float32 in [0, 1]
    (coverage of the body under each output pixel); padding is background (0)."""
    m = mask.astype(np.float32)
    if m.max(initial=0) > 1.0:
        m = m / 255.0
    h, w = m.shape[:2]
    geo = letterbox_geometry(w, h, spec.target_size)
    out = np.zeros((spec.target_size, spec.target_size), np.float32)
    x0, y0, x1, y1 = geo.content_box
    out[y0:y1, x0:x1] = area_resize_axis(area_resize_axis(m, geo.new_w, axis=1), geo.new_h, axis=0)
    return out


def apply_mask(letterboxed: np.ndarray, mask224: np.ndarray, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """Background removal: pixels whose mask value is below the threshold become pad_value."""
    out = letterboxed.copy()
    out[mask224 < spec.mask_threshold] = spec.pad_value
    return out


def preprocess_u8(img: np.ndarray, mask: np.ndarray | None = None, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """Source RGB uint8 image (+ optional source-resolution mask) -> letterboxed, background
    removed, uint8 target x target x 3. This is what the frame cache stores."""
    out, _ = letterbox(to_rgb_u8(img), spec)
    if mask is not None and spec.background_removal != "none":
        out = apply_mask(out, letterbox_mask(mask, spec), spec)
    return out


def normalize(u8: np.ndarray, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """...xHxWx3 uint8 -> ...x3xHxW float32, (x * scale - mean) / std (NCHW, as PyTorch)."""
    x = u8.astype(np.float32) * np.float32(spec.scale)
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def preprocess(img: np.ndarray, mask: np.ndarray | None = None, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """Source image -> the model's 3xHxW float32 input."""
    return normalize(preprocess_u8(img, mask, spec), spec)


# --- decoding: every input kind handled explicitly -------------------------------------

def to_rgb_u8(img: np.ndarray) -> np.ndarray:
    """Grayscale, RGBA and 16-bit arrays -> HxWx3 uint8 RGB.

    Alpha is composited onto the pad value: a transparent pixel is background, as a removed
    background is. 16-bit values are scaled by 255/65535 (not truncated to the high byte)."""
    if img.dtype == np.uint16:
        img = _round_u8(img.astype(np.float64) * (255.0 / 65535.0))
    elif img.dtype != np.uint8:
        raise NeometerError(f"unsupported pixel type {img.dtype}: expected 8- or 16-bit integers")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        return _round_u8(img[..., :3].astype(np.float32) * alpha)
    if img.shape[2] == 3:
        return img
    raise NeometerError(f"unsupported channel count {img.shape[2]}: expected 1, 3 or 4")


def read_image(path: str | Path) -> np.ndarray:
    """An image file -> HxWx3 uint8 RGB, EXIF orientation applied, gray/alpha/16-bit handled."""
    from PIL import Image, ImageOps

    path = Path(path)
    try:
        if _png_bit_depth(path) == 16:
            return to_rgb_u8(_read_png16(path))  # PIL would truncate 16-bit RGB to the high byte
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I;16") or im.mode == "I":
                arr = np.asarray(im).astype(np.uint16)
            elif im.mode in ("RGB", "L", "RGBA"):
                arr = np.asarray(im)
            elif im.mode in ("LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                arr = np.asarray(im.convert("RGBA"))
            else:
                arr = np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise NeometerError(f"{path}: cannot read image ({exc}); re-export it as PNG or JPEG") from None
    return to_rgb_u8(arr)


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(25)
    return head[24] if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 25 else 8


def _read_png16(path: Path) -> np.ndarray:
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise OSError("OpenCV could not decode it")
    if raw.ndim == 3:  # OpenCV is BGR(A)
        raw = raw[..., [2, 1, 0, 3][: raw.shape[2]]]
    return raw


def read_mask(path: str | Path) -> np.ndarray:
    """A mask image -> HxW float32 in [0, 1] (any nonzero 8-bit value scaled by 1/255).
    EXIF orientation is applied as read_image applies it, so a mask saved by the same phone
    app as its photo stays aligned with it."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            arr = np.asarray(ImageOps.exif_transpose(im).convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise NeometerError(f"{path}: cannot read mask ({exc}); masks are 8-bit grey PNGs") from None
    return arr


def spec_fingerprint(spec: PreprocessSpec) -> str:
    """A short hash of the preprocessing parameters: keys the frame cache, stamps golden files."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
