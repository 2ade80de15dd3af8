"""Per-frame quality gates, from the letterboxed body mask (segmenter output or ground truth)
and the phone's tilt. Each failure carries a message key the shells translate; the message
tells the nurse what to change. Thresholds live in the model card (`quality`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from neometer.data.preprocess import Letterbox


@dataclass(frozen=True)
class QualityThresholds:
    min_body_fraction: float = 0.03  # of the image content: less means no infant found
    # Of the mask's pixels, the share on the content's outer 2-px ring. A whole body gives 0; on
    # synthetic videos with a limb or the head cut off, the demo segmenter gave 0.001-0.013.
    max_border_fraction: float = 0.004
    border_px: int = 2
    max_tilt_deg: float = 25.0  # camera axis vs straight down
    # Of mask pixels (p >= 0.1), the share with 0.1 <= p < 0.9; the demo segmenter gives 0.2-0.35
    # on clean frames, so 0.45 flags masks that are mostly guesswork.
    max_uncertain_fraction: float = 0.45
    min_good_frames: int = 5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "QualityThresholds":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# Message keys, in the order a nurse should fix them; the shells hold the strings (en, zh).
NO_BODY, OUT_OF_FRAME, TILTED, MASK_UNCERTAIN, TOO_FEW_FRAMES = (
    "no_body", "body_out_of_frame", "camera_tilted", "mask_uncertain", "too_few_good_frames")


@dataclass(frozen=True)
class FrameCheck:
    body_fraction: float
    border_fraction: float
    uncertain_fraction: float
    tilt_deg: float | None
    failures: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return not self.failures


def check_frame(mask: np.ndarray | None, box: Letterbox | tuple[int, int, int, int] | None = None,
                tilt_deg: float | None = None, t: QualityThresholds = QualityThresholds()) -> FrameCheck:
    """mask: letterboxed HxW probabilities in [0, 1] (None: no segmenter, no mask gates);
    box: the image content inside the square (x0, y0, x1, y1), padding excluded."""
    failures: list[str] = []
    body = border = uncertain = 0.0
    if mask is not None:
        x0, y0, x1, y1 = box.content_box if isinstance(box, Letterbox) else (box or (0, 0, mask.shape[1], mask.shape[0]))
        m = np.asarray(mask, np.float32)[y0:y1, x0:x1]
        fg = m >= 0.5
        n_fg = int(fg.sum())
        body = n_fg / max(1, m.size)
        ring = np.ones_like(fg)
        b = t.border_px
        ring[b:-b, b:-b] = False
        border = float((fg & ring).sum()) / max(1, n_fg)
        soft = m >= 0.1
        uncertain = float((soft & (m < 0.9)).sum()) / max(1, int(soft.sum()))
        if body < t.min_body_fraction:
            failures.append(NO_BODY)
        else:
            if border > t.max_border_fraction:
                failures.append(OUT_OF_FRAME)
            if uncertain > t.max_uncertain_fraction:
                failures.append(MASK_UNCERTAIN)
    if tilt_deg is not None and abs(tilt_deg) > t.max_tilt_deg:
        failures.append(TILTED)
    return FrameCheck(body, border, uncertain, tilt_deg, tuple(failures))


def tilt_from_orientation(beta_deg: float, gamma_deg: float) -> float:
    """DeviceOrientation beta (front-back) and gamma (left-right) -> angle between the camera
    axis and straight down, in degrees, for a phone held screen-up over the bed."""
    b, g = np.radians(beta_deg), np.radians(gamma_deg)
    # The screen normal in the earth frame has z = cos(beta) * cos(gamma).
    return float(np.degrees(np.arccos(np.clip(np.cos(b) * np.cos(g), -1.0, 1.0))))
