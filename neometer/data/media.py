"""Decoding media: stills through preprocess.read_image (EXIF, gray, alpha, 16-bit), videos
through OpenCV, sampled at a fixed rate; masks per still or per video frame.

Sampling rule (shared by the frame cache and `data check`): with the video's own rate `src`
and a requested rate `fps`, frame i is kept when floor(i * fps / src) differs from that of
frame i - 1, i.e. the first frame of each 1/fps interval; frame 0 is always kept. fps=None
(or fps >= src) keeps every frame. OpenCV applies the rotation tag of phone videos itself.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from neometer.errors import NeometerError

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".3gp", ".mpg", ".mpeg"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
MASK_NAME = "{:06d}.png"  # per-frame masks of a video: DIR/000123.png for frame 123
# FFmpeg's own log lines ("moov atom not found") would interleave with our report; every
# decoding failure is reported by us with its file and row instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

REENCODE = "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`"


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def video_fps(cap) -> float:
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    return fps if fps and math.isfinite(fps) and fps > 0 else 30.0  # containers without a rate: assume 30


def keep_frame(i: int, fps: float | None, src_fps: float) -> bool:
    """The sampling rule above (1e-9 absorbs float error at exact interval edges)."""
    if fps is None or fps >= src_fps or i == 0:
        return True
    ratio = fps / src_fps
    return math.floor(i * ratio + 1e-9) != math.floor((i - 1) * ratio + 1e-9)


def _open_video(path: Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise NeometerError(f"{path}: cannot open the video (corrupt file or unsupported codec) — {REENCODE}")
    return cap


def iter_frames(path: str | Path, fps: float | None = None,
                max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame_index, HxWx3 uint8 RGB) pairs. An image yields (0, image). A video yields its
    sampled frames; raises NeometerError when it has no decodable frame."""
    from neometer.data.preprocess import read_image

    path = Path(path)
    if not is_video(path):
        yield 0, read_image(path)
        return
    import cv2

    cap = _open_video(path)
    try:
        src_fps, yielded, i = video_fps(cap), 0, 0
        while max_frames is None or yielded < max_frames:
            if not cap.grab():  # grab without retrieve skips the colour conversion of unused frames
                break
            if keep_frame(i, fps, src_fps):
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    yield i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    yielded += 1
            i += 1
    finally:
        cap.release()
    if yielded == 0:
        raise NeometerError(f"{path}: the video has no decodable frame — {REENCODE}")


def mask_path_for_frame(mask: Path, frame_index: int) -> Path:
    return mask / MASK_NAME.format(frame_index) if mask.is_dir() else mask


def mask_for_frame(recording, frame_index: int) -> np.ndarray | None:
    """HxW float32 in [0, 1] for one frame of a recording, or None when it has no mask.
    Stills: the mask image. Videos: DIR/000123.png for frame 123 (raises if that file is missing)."""
    from neometer.data.preprocess import read_mask

    if recording.mask is None:
        return None
    path = mask_path_for_frame(Path(recording.mask), frame_index)
    if not path.is_file():
        raise NeometerError(f"manifest.csv row {recording.row} (infant {recording.infant_id}): {path}: no mask "
                            f"for frame {frame_index} — add {path.name}, or sample at a rate whose frames "
                            "all have masks")
    return read_mask(path)


# --- the check behind `neometer data check` ---------------------------------------------

@dataclass
class MediaCheck:
    is_video: bool
    frames: int = 0
    sampled_frames: int = 0
    problems: list[tuple[Path, str]] = field(default_factory=list)


def _mask_problem(mask: np.ndarray, frame_hw: tuple[int, int], what: str) -> str | None:
    if mask.shape[:2] != frame_hw:
        return (f"mask is {mask.shape[1]}x{mask.shape[0]} but {what} is {frame_hw[1]}x{frame_hw[0]} (WxH) — "
                "save the mask at the size of the (EXIF-rotated) frame it belongs to")
    peak = float(mask.max(initial=0.0))
    if peak == 0.0:
        return "mask is empty (no body pixels): background removal would black out the whole frame — fix the mask"
    if peak <= 1.0 / 255.0 + 1e-6:
        return "mask uses the values 0/1 — save it with 0 for background and 255 for the infant"
    return None


def check_media(media: Path, mask: Path | None, fps: float | None = 2.0) -> MediaCheck:
    """Decode one recording (every video frame) and its masks; collect (path, problem) pairs."""
    from neometer.data.preprocess import read_image, read_mask

    if is_video(media):
        return _check_video(media, mask, fps, read_mask)
    result = MediaCheck(is_video=False)
    if not is_image(media):
        result.problems.append((media, f"unknown media type '{media.suffix}' — use a video "
                                f"({', '.join(sorted(VIDEO_SUFFIXES))}) or an image ({', '.join(sorted(IMAGE_SUFFIXES))})"))
        return result
    try:
        image = read_image(media)
    except NeometerError as exc:
        result.problems.append((media, f"unreadable image ({_reason(exc)}) — re-export it as PNG or JPEG"))
        return result
    result.frames = result.sampled_frames = 1
    if mask is not None and mask.is_file():
        try:
            problem = _mask_problem(read_mask(mask), image.shape[:2], "the image")
        except NeometerError as exc:
            problem = f"unreadable mask ({_reason(exc)}) — save it as an 8-bit grey PNG"
        if problem:
            result.problems.append((mask, problem))
    return result


def _reason(exc: NeometerError) -> str:
    """The cause inside a read_image/read_mask message, without its own path prefix."""
    text = str(exc)
    start, end = text.find("("), text.rfind(")")
    return text[start + 1:end] if 0 <= start < end else text


def _check_video(media: Path, mask: Path | None, fps: float | None, read_mask) -> MediaCheck:

    result = MediaCheck(is_video=True)
    try:
        cap = _open_video(media)
    except NeometerError:
        result.problems.append((media, f"cannot open the video (corrupt file or unsupported codec) — {REENCODE}"))
        return result
    sampled: list[int] = []
    frame_hw = None
    try:
        src_fps = video_fps(cap)
        while cap.grab():
            i = result.frames
            if keep_frame(i, fps, src_fps) or frame_hw is None:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    break  # a frame that cannot be retrieved ends the decodable part
                frame_hw = frame_hw or bgr.shape[:2]
                if keep_frame(i, fps, src_fps):
                    sampled.append(i)
            result.frames += 1
    finally:
        cap.release()
    result.sampled_frames = len(sampled)
    if result.frames == 0 or frame_hw is None:
        result.problems.append((media, f"the video has no decodable frame — {REENCODE}"))
        return result
    if mask is not None and mask.is_dir():
        result.problems += _check_mask_folder(mask, sampled, frame_hw, fps, read_mask)
    return result


def _check_mask_folder(folder: Path, sampled: list[int], frame_hw, fps, read_mask) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    missing = [i for i in sampled if not (folder / MASK_NAME.format(i)).is_file()]
    if missing:
        rate = f"{fps:g} fps" if fps else "every frame"
        shown = ", ".join(MASK_NAME.format(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        problems.append((folder, f"no mask for {len(missing)} of the {len(sampled)} frames sampled at {rate} "
                         f"({shown}) — add the per-frame masks, named by frame index"))
    by_problem: dict[str, list[str]] = {}
    for i in sampled:
        path = folder / MASK_NAME.format(i)
        if not path.is_file():
            continue
        try:
            problem = _mask_problem(read_mask(path), frame_hw, "the video frame")
        except NeometerError as exc:
            problem = f"unreadable mask ({_reason(exc)}) — save it as an 8-bit grey PNG"
        if problem:
            by_problem.setdefault(problem, []).append(path.name)
    for problem, names in by_problem.items():  # one line per kind of problem, not per frame
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        problems.append((folder, f"{problem} [{shown}]"))
    return problems
