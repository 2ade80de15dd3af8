"""Fixtures for the web tests, written by Python (run by tests/run.mjs before the tests):

* reference_outputs.json: the model under test (the web build's regressor) run with Python's
  TFLite interpreter (ai_edge_litert) on every golden image's input tensor, the reference the
  page's LiteRT.js outputs must match within fp32 tolerance;
* infant.y4m / partial.y4m (+ .json labels): synthetic infant videos from the data engine
  (neometer.synth.render.render_video) for Chromium's fake camera; partial has partial_body=True;
  infant.webm / partial.webm: the same clips as VP8 files for the "pick a video" flow.

Files are rebuilt only when their inputs changed (a key file records model sha and settings).

usage: python web/tests/make_fixtures.py --models DIR --out web/tests/fixtures
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
# The fake camera loops this clip; small frames keep the test fast.
VIDEO = dict(width=320, height=240, seconds=2.0, fps=10)
SEEDS = {"infant": 21, "partial": 22}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def choose_regressor(models: Path, role: str = "regressor") -> Path | None:
    """The artifact the web build picks (scripts/build.mjs chooseModels): fp32 first."""
    rank = {"fp32": 0, "fp16": 1, "int8": 2}
    cands = [p for p in models.glob(f"{role}_*.tflite") if p.with_name(p.name + ".json").is_file()]
    cands.sort(key=lambda p: (min((r for k, r in rank.items() if f"_{k}" in p.name), default=9), p.name))
    return cands[0] if cands else None


def reference_outputs(models: Path, out: Path) -> None:
    """Python's TFLite run of the web build's regressor on the golden inputs."""
    model = choose_regressor(models)
    target = out / "reference_outputs.json"
    if model is None:
        target.unlink(missing_ok=True)
        return
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    key = hashlib.sha256((sha256(model) + sha256(GOLDEN / "manifest.json")).encode()).hexdigest()
    if target.is_file() and json.loads(target.read_text()).get("key") == key:
        return
    from ai_edge_litert.interpreter import Interpreter

    card = json.loads(model.with_name(model.name + ".json").read_text())
    it = Interpreter(model_path=str(model), num_threads=1)
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    results = {}
    for entry in manifest["images"]:
        t = entry["input_nchw_f32"]
        x = np.fromfile(GOLDEN / t["file"], "<f4").reshape(t["shape"])
        if card["input"]["layout"] == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if inp["dtype"] != np.float32:  # quantized input: the card's scale and zero point
            q = card["input"]["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / q["scale"]) + q["zero_point"], info.min, info.max).astype(inp["dtype"])
        it.set_tensor(inp["index"], x)
        it.invoke()
        y = it.get_tensor(outp["index"]).astype(np.float64)
        if outp["dtype"] != np.float32:
            scale, zp = outp["quantization"]
            y = (y - zp) * scale
        results[entry["name"]] = y.reshape(-1).tolist()
    doc = {"key": key, "model": model.name, "model_sha256": sha256(model), "outputs": results}
    atomic_write(target, json.dumps(doc, indent=1).encode())


def segmenter_outputs(models: Path, out: Path) -> None:
    """Python's TFLite run of the build's segmenter (if any) on the golden inputs: seg_<image>.f32."""
    model = choose_regressor(models, "segmenter")
    target = out / "segmenter_outputs.json"
    if model is None:
        target.unlink(missing_ok=True)
        return
    key = hashlib.sha256((sha256(model) + sha256(GOLDEN / "manifest.json")).encode()).hexdigest()
    if target.is_file() and json.loads(target.read_text()).get("key") == key:
        return
    from ai_edge_litert.interpreter import Interpreter

    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    card = json.loads(model.with_name(model.name + ".json").read_text())
    it = Interpreter(model_path=str(model), num_threads=1)
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    files = {}
    for entry in manifest["images"]:
        # The segmenter sees the letterboxed image WITHOUT background removal.
        from neometer.data.preprocess import PreprocessSpec, letterbox, normalize
        spec = PreprocessSpec.from_dict(card["preprocessing"])
        src = np.fromfile(GOLDEN / entry["source_rgb_u8"]["file"], np.uint8).reshape(entry["source_rgb_u8"]["shape"])
        x = normalize(letterbox(src, spec)[0], spec)[None]
        if card["input"]["layout"] == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        it.set_tensor(inp["index"], x.astype(np.float32))
        it.invoke()
        y = it.get_tensor(outp["index"]).astype("<f4")
        files[entry["name"]] = f"seg_{entry['name']}.f32"
        atomic_write(out / files[entry["name"]], y.tobytes())
    doc = {"key": key, "model": model.name, "shape": [int(d) for d in outp["shape"]], "files": files}
    atomic_write(target, json.dumps(doc, indent=1).encode())


def write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """YUV4MPEG2, 4:2:0 (C420jpeg), full-range BT.601, as Chromium's fake camera reads it."""
    h, w = frames[0].shape[:2]
    parts = [f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode()]
    for rgb in frames:
        f = rgb.astype(np.float32)
        r, g, b = f[..., 0], f[..., 1], f[..., 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
        v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
        sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
        planes = [np.clip(np.round(p), 0, 255).astype(np.uint8).tobytes() for p in (y, sub(u), sub(v))]
        parts += [b"FRAME\n"] + planes
    atomic_write(path, b"".join(parts))


def write_webm(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """The same clip as a VP8 WebM file, for the 'pick a video' flow (Chromium decodes VP8)."""
    import cv2

    h, w = frames[0].shape[:2]
    tmp = path.with_name(path.stem + ".tmp.webm")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"VP80"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write VP8 WebM here")
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    tmp.replace(path)


def videos(out: Path) -> None:
    try:
        from neometer.synth.render import render_video
    except ImportError as exc:
        print(f"make_fixtures: no synthetic videos ({exc}); the fake-camera tests will say so", file=sys.stderr)
        return
    for name, seed in SEEDS.items():
        key = json.dumps(dict(VIDEO, seed=seed, partial=name == "partial", synth=_synth_fingerprint()), sort_keys=True)
        meta_path = out / f"{name}.json"
        if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key and all((out / f"{name}.{e}").is_file() for e in ("y4m", "webm")):
            continue
        # A clean clip (flat, whole body, no clutter) and one with the body partly outside.
        overrides = dict(partial_body=name == "partial", tilt_deg=0.0, clutter_near_body=False)
        frames, _masks, labels = render_video(seed, VIDEO["width"], VIDEO["height"], VIDEO["seconds"], VIDEO["fps"], **overrides)
        write_y4m(out / f"{name}.y4m", [np.asarray(f) for f in frames], VIDEO["fps"])
        write_webm(out / f"{name}.webm", [np.asarray(f) for f in frames], VIDEO["fps"])
        clean = {k: v for k, v in labels.items() if isinstance(v, (int, float, str, bool)) or v is None}
        atomic_write(meta_path, json.dumps({"key": key, "labels": clean, **VIDEO, "seed": seed}, indent=1).encode())


def _synth_fingerprint() -> str:
    src = sorted((REPO / "neometer" / "synth").glob("*.py"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in src)).hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    reference_outputs(args.models, args.out)
    segmenter_outputs(args.models, args.out)
    videos(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
