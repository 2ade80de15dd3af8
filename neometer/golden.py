"""Golden vectors (contract 3): small images, the preprocessing Python computes for them, the
quality gates and aggregation on fixed cases, and each exported artifact's outputs. Every
shell's tests read `tests/golden/manifest.json`; `neometer golden` rewrites the folder, and
tests/test_golden.py fails when the files are stale against the current preprocessing.

Binary tensors are raw little-endian arrays (shape and dtype in the manifest) so that
JavaScript, Java and Swift read them without a NumPy parser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from neometer.data.preprocess import (PreprocessSpec, letterbox_geometry, letterbox_mask, normalize,
                                      preprocess_u8, read_image, read_mask, spec_fingerprint, to_rgb_u8)
from neometer.measure.aggregate import aggregate
from neometer.measure.gates import FrameCheck, QualityThresholds, check_frame

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "tests" / "golden"


def configure(parser) -> None:
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR, help="golden folder (default tests/golden)")
    parser.add_argument("--artifacts", type=Path, nargs="*", default=None,
                        help="model cards (.json) whose artifacts get golden outputs (default: the demo model's exports)")


def run(args) -> int:
    manifest = write_golden(args.out, args.artifacts)
    print(f"wrote {len(manifest['images'])} images, {len(manifest['gates'])} gate cases, "
          f"{len(manifest['aggregation'])} aggregation cases, {len(manifest['artifacts'])} artifacts to {args.out}")
    return 0


# --- the images: each input kind the preprocessing handles explicitly -----------------

def _scene(w: int, h: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic textured frame with an elliptical 'body' and its mask; the synthetic
    engine's own frames are added by `_synth_frames` when it is importable."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 200 + 30, yy / h * 180 + 40, (xx + yy) / (w + h) * 150 + 60], -1)
    base += rng.normal(0, 12, base.shape)
    cx, cy, ax, ay = w * 0.5, h * 0.52, w * 0.18, h * 0.33
    body = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0
    base[body] = [224, 178, 150]
    base[body] += rng.normal(0, 6, (int(body.sum()), 3))
    return np.clip(base, 0, 255).astype(np.uint8), (body * 255).astype(np.uint8)


def _synth_frames() -> list[tuple[str, np.ndarray, np.ndarray]]:
    try:
        from neometer.synth.render import sample_frame
    except ImportError:
        return []
    frames = []
    for name, seed, (w, h) in (("synth_portrait", 11, (270, 480)), ("synth_landscape", 12, (480, 270))):
        rgb, mask, _ = sample_frame(seed=seed, width=w, height=h)
        frames.append((name, rgb, mask))
    return frames


def golden_images() -> list[dict]:
    rgb_l, mask_l = _scene(400, 300, 1)
    rgb_p, mask_p = _scene(240, 360, 2)
    gray = (rgb_l.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    rgba = np.dstack([rgb_p, np.where(mask_p > 0, 255, 96).astype(np.uint8)])
    tiny, tiny_mask = _scene(97, 61, 3)  # upscaled: smaller than the target on both sides
    cases = [
        dict(name="landscape_masked", pixels=rgb_l, mask=mask_l),
        dict(name="portrait", pixels=rgb_p, mask=None),
        dict(name="grayscale", pixels=gray, mask=None),
        dict(name="rgba", pixels=rgba, mask=None),
        dict(name="small_upscaled", pixels=tiny, mask=tiny_mask),
    ]
    cases += [dict(name=n, pixels=p, mask=m) for n, p, m in _synth_frames()]
    return cases


def _write_bin(path: Path, arr: np.ndarray) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.ascontiguousarray(arr)
    path.write_bytes(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    return {"file": path.name if path.parent.name == "" else f"{path.parent.name}/{path.name}",
            "dtype": str(arr.dtype), "shape": list(arr.shape)}


def _image_entry(out: Path, case: dict, spec: PreprocessSpec) -> dict:
    name, pixels, mask = case["name"], case["pixels"], case["mask"]
    img_file = out / "images" / f"{name}.png"
    img_file.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(img_file, optimize=False)
    decoded = read_image(img_file)  # the decoder path a user's file takes
    assert np.array_equal(decoded, to_rgb_u8(pixels))
    h, w = pixels.shape[:2]
    geo = letterbox_geometry(w, h, spec.target_size)
    entry = {
        "name": name,
        "image": f"images/{name}.png",
        "channels": 1 if pixels.ndim == 2 else pixels.shape[2],
        "src_w": w, "src_h": h,
        "letterbox": {"new_w": geo.new_w, "new_h": geo.new_h, "off_x": geo.off_x, "off_y": geo.off_y},
        "source_rgb_u8": _write_bin(out / "tensors" / f"{name}.source_rgb.u8", decoded),
        "mask": None,
    }
    m = None
    if mask is not None:
        Image.fromarray(mask).save(out / "images" / f"{name}_mask.png")
        m = read_mask(out / "images" / f"{name}_mask.png")
        entry["mask"] = f"images/{name}_mask.png"
        entry["mask_letterboxed_f32"] = _write_bin(out / "tensors" / f"{name}.mask224.f32", letterbox_mask(m, spec))
    u8 = preprocess_u8(decoded, m, spec)
    entry["letterboxed_u8"] = _write_bin(out / "tensors" / f"{name}.letterboxed.u8", u8)
    entry["input_nchw_f32"] = _write_bin(out / "tensors" / f"{name}.nchw.f32", normalize(u8, spec)[None])
    entry["outputs"] = {}
    return entry


# --- gates and aggregation: fixed cases every shell must reproduce ---------------------

def _gate_cases(out: Path, t: QualityThresholds) -> list[dict]:
    size = 224
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    def ellipse(cx, cy, ax, ay, soft=0.0):
        d = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
        return np.clip((1.0 - d) / soft + 0.5, 0, 1) if soft else (d <= 1).astype(np.float32)

    box = (0, 37, 224, 187)  # a landscape frame letterboxed: content rows 37..186
    cases = [
        ("centred_body", ellipse(112, 112, 40, 60), box, None),
        ("cut_at_edge", ellipse(112, 170, 40, 60), box, None),
        ("tilted_phone", ellipse(112, 112, 40, 60), box, 31.5),
        ("blurry_mask", ellipse(112, 112, 40, 60, soft=0.9), box, 4.0),
        ("empty", np.zeros((size, size), np.float32), box, None),
    ]
    result = []
    for name, mask, b, tilt in cases:
        c = check_frame(mask, b, tilt, t)
        result.append({"name": name, "mask": _write_bin(out / "tensors" / f"gate_{name}.mask224.f32", mask.astype(np.float32)),
                       "box": list(b), "tilt_deg": tilt,
                       "expected": {"body_fraction": c.body_fraction, "border_fraction": c.border_fraction,
                                    "uncertain_fraction": c.uncertain_fraction, "failures": list(c.failures)}})
    return result


def _aggregation_cases(t: QualityThresholds) -> list[dict]:
    rng = np.random.default_rng(7)
    h = 49.5 + rng.normal(0, 0.4, 12)
    w = 3.3 + rng.normal(0, 0.08, 12)
    preds = np.round(np.stack([h, w], 1), 4)
    cases = [
        ("all_good", preds, [[] for _ in range(12)]),
        ("some_rejected", preds, [["body_out_of_frame"] if i % 3 == 0 else [] for i in range(12)]),
        ("mostly_tilted", preds, [["camera_tilted"] if i < 9 else [] for i in range(12)]),
        ("even_count", preds[:6], [[] for _ in range(6)]),
    ]
    result = []
    for name, p, fails in cases:
        checks = [FrameCheck(0.2, 0.0, 0.0, None, tuple(f)) for f in fails]
        m = aggregate(p, checks, t)
        result.append({"name": name, "predictions": p.tolist(), "failures": fails, "expected": m.to_dict()})
    return result


def _artifact_outputs(cards: list[Path], images: list[dict], out: Path) -> list[dict]:
    if not cards:
        return []
    from neometer.runtime import load_runner  # the export stage's runners

    artifacts = []
    for card_path in cards:
        if not _runs_here(card_path):
            continue  # Core ML predicts only on macOS; its shells compare against the other formats
        runner = load_runner(card_path, threads=1)
        key = card_path.name
        for entry in images:
            x = np.fromfile(out / "tensors" / Path(entry["input_nchw_f32"]["file"]).name, "<f4").reshape(entry["input_nchw_f32"]["shape"])
            entry["outputs"][key] = np.asarray(runner.predict(x), np.float64).reshape(-1).tolist()
        artifacts.append({"card": key, "path": _repo_relative(card_path)})
    return artifacts


def _repo_relative(path: Path) -> str:
    root = Path(__file__).resolve().parents[1]
    path = Path(path).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _runs_here(card_path: Path) -> bool:
    import sys

    card = json.loads(Path(card_path).read_text())
    apple_only = card.get("format") == "coreml" or card.get("converter", {}).get("route") == "coreml"
    return sys.platform == "darwin" or not apple_only


def default_artifact_cards() -> list[Path]:
    """The demo regressor's exported cards (the segmenter's masks are too large for the manifest)."""
    export_dir = Path(__file__).resolve().parents[1] / "models" / "demo" / "export"
    return sorted(p for p in export_dir.glob("regressor_*.json") if _runs_here(p)) if export_dir.is_dir() else []


def write_golden(out: Path = GOLDEN_DIR, cards: list[Path] | None = None) -> dict:
    spec, t = PreprocessSpec(), QualityThresholds()
    out.mkdir(parents=True, exist_ok=True)
    images = [_image_entry(out, case, spec) for case in golden_images()]
    manifest = {
        "schema_version": 1,
        "preprocessing": spec.to_dict(),
        "preprocessing_fingerprint": spec_fingerprint(spec),
        "quality": t.to_dict(),
        "images": images,
        "gates": _gate_cases(out, t),
        "aggregation": _aggregation_cases(t),
    }
    manifest["artifacts"] = _artifact_outputs(default_artifact_cards() if cards is None else cards, images, out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
