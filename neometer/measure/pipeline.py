"""The end-to-end measurement, in its Python reference form: what every app shell runs.

    frame (RGB) -> letterbox -> segmenter -> body probability (S x S)
                -> background removal (p < mask_threshold -> pad value) -> normalise -> regressor
                -> per-frame quality gates (on the same mask)  ->  aggregate the accepted frames

Runners are anything with `.predict(x: float32 N x 3 x S x S) -> array`: `TorchModelRunner`
around a PyTorch model, or `neometer.runtime.load_runner(card)` for an exported artifact. The
segmenter's output may come back as N x 1 x S x S, N x S x S x 1 or flat: it is one channel,
so every layout reshapes to S x S the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neometer.data.preprocess import Letterbox, PreprocessSpec, apply_mask, letterbox, normalize, to_rgb_u8
from neometer.errors import NeometerError
from neometer.measure.aggregate import Measurement, aggregate
from neometer.measure.gates import FrameCheck, QualityThresholds, check_frame


class TorchModelRunner:
    """A PyTorch model behind the runner interface (float32, no autograd; CPU unless a device
    is given, e.g. "cuda" to evaluate a large held-out set quickly)."""

    def __init__(self, model, card: dict | None = None, device: str = "cpu"):
        self.device = device
        self.model = model.float().eval().to(device)
        self.card = card or {}

    def predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float().cpu().numpy()


@dataclass(frozen=True)
class FrameResult:
    prediction: np.ndarray  # [height_cm, weight_kg]
    mask: np.ndarray | None  # S x S body probability (None without a segmenter)
    check: FrameCheck
    geometry: Letterbox


class Pipeline:
    """One regressor, an optional segmenter, the preprocessing of the regressor's card and the
    quality thresholds: `measure_frames` turns a recording into the number the nurse reads."""

    def __init__(self, regressor_runner, segmenter_runner=None, spec: PreprocessSpec = PreprocessSpec(),
                 thresholds: QualityThresholds = QualityThresholds()):
        self.regressor = regressor_runner
        self.segmenter = segmenter_runner
        self.spec = spec
        self.thresholds = thresholds

    # --- one frame -------------------------------------------------------------------------

    def segment(self, boxed_u8: np.ndarray) -> np.ndarray:
        """Letterboxed uint8 S x S x 3 -> body probability S x S (float32): the segmenter sees
        the normalised frame WITHOUT background removal."""
        size = self.spec.target_size
        out = np.asarray(self.segmenter.predict(normalize(boxed_u8[None], self.spec)), np.float32)
        if out.size != size * size:
            raise NeometerError(f"the segmenter returned {out.shape} for a {size}x{size} input; it must output one "
                                f"{size}x{size} body-probability map (check that both cards share target_size)")
        return out.reshape(size, size)

    def regressor_input(self, boxed_u8: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """1 x 3 x S x S float32: background removed with `mask` (when the card asks for it)."""
        if mask is not None and self.spec.background_removal != "none":
            boxed_u8 = apply_mask(boxed_u8, mask, self.spec)
        return normalize(boxed_u8[None], self.spec)

    def run_frame(self, rgb: np.ndarray, tilt_deg: float | None = None) -> FrameResult:
        boxed, geo = letterbox(to_rgb_u8(np.asarray(rgb)), self.spec)
        mask = self.segment(boxed) if self.segmenter is not None else None
        pred = np.asarray(self.regressor.predict(self.regressor_input(boxed, mask)), np.float64).reshape(-1)
        check = check_frame(mask, geo, tilt_deg, self.thresholds)
        return FrameResult(pred, mask, check, geo)

    def predict_frame(self, rgb: np.ndarray, tilt_deg: float | None = None) -> tuple[np.ndarray, np.ndarray | None, FrameCheck]:
        """-> (prediction [height_cm, weight_kg], mask S x S probability or None, FrameCheck)."""
        r = self.run_frame(rgb, tilt_deg)
        return r.prediction, r.mask, r.check

    # --- a recording --------------------------------------------------------------------------

    def measure_frames(self, frames_rgb, tilts=None) -> Measurement:
        """Every frame through the pipeline, then the median of the accepted ones."""
        frames = list(frames_rgb)
        tilts = [None] * len(frames) if tilts is None else list(tilts)
        if len(tilts) != len(frames):
            raise NeometerError(f"{len(tilts)} tilt readings for {len(frames)} frames: pass one per frame (or none)")
        preds, checks = [], []
        for rgb, tilt in zip(frames, tilts):
            pred, _, check = self.predict_frame(rgb, tilt)
            preds.append(pred[:2])
            checks.append(check)
        return aggregate(np.asarray(preds, np.float64).reshape(len(frames), 2), checks, self.thresholds)

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_checkpoints(cls, regressor: str | Path | None, segmenter: str | Path | None,
                         thresholds: QualityThresholds | None = None) -> "Pipeline":
        """PyTorch checkpoints (None regressor: the demo model). The regressor's preprocessing
        rules; the segmenter must share its input size."""
        from neometer.models.checkpoint import load_checkpoint

        reg, reg_cfg = load_checkpoint(regressor)
        spec = PreprocessSpec.from_dict(reg_cfg["preprocessing"])
        seg_runner = None
        if segmenter is not None:
            seg, seg_cfg = load_checkpoint(segmenter)
            _check_compatible(spec, PreprocessSpec.from_dict(seg_cfg["preprocessing"]), str(segmenter))
            seg_runner = TorchModelRunner(seg, seg_cfg)
        return cls(TorchModelRunner(reg, reg_cfg), seg_runner, spec, thresholds or QualityThresholds())

    @classmethod
    def from_cards(cls, regressor_card: str | Path, segmenter_card: str | Path | None = None,
                   threads: int = 1) -> "Pipeline":
        """Exported artifacts through `neometer.runtime.load_runner`; preprocessing and quality
        thresholds come from the regressor's model card, as in the shells."""
        from neometer.runtime import load_runner

        reg = load_runner(regressor_card, threads=threads)
        card = reg.card
        spec = PreprocessSpec.from_dict(card["preprocessing"])
        seg = None
        if segmenter_card is not None:
            seg = load_runner(segmenter_card, threads=threads)
            _check_compatible(spec, PreprocessSpec.from_dict(seg.card["preprocessing"]), str(segmenter_card))
        return cls(reg, seg, spec, QualityThresholds.from_dict(card.get("quality") or {}))


def _check_compatible(reg: PreprocessSpec, seg: PreprocessSpec, where: str) -> None:
    """The segmenter's mask is applied to the regressor's letterboxed frame: same geometry and
    normalisation, or the mask lands on the wrong pixels."""
    keys = ("target_size", "resize_rule", "resize", "placement", "pad_value", "channel_order", "scale", "mean", "std")
    a, b = reg.to_dict(), seg.to_dict()
    diffs = [f"{k}: regressor {a[k]!r}, segmenter {b[k]!r}" for k in keys if a[k] != b[k]]
    if diffs:
        raise NeometerError(f"{where}: the segmenter's preprocessing does not match the regressor's; "
                            "retrain it with the regressor's --img", problems=diffs)
