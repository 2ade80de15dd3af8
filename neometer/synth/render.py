"""Render frames and videos of a synthetic newborn.

Pipeline per frame: bed texture (mat + under-baby clutter, in bed cm) warped through the camera
homography -> the baby's contact shadow -> the baby, drawn as projected polygons with cylinder-like
shading -> clutter over the baby (gloved hand, cables) -> light (bed-plane light map, vignette,
colour temperature) -> optics and sensor (defocus, noise) -> JPEG (stills) or MP4 (videos).

The ground-truth mask is the union of the baby's projected polygons (including what it wears:
diaper, hat, ID band, swaddle), minus the clutter drawn over it: exact by construction.

Public API (other modules code against these):
    sample_frame(seed, width, height, **overrides) -> (rgb HxWx3 u8, mask HxW u8 {0,255}, labels)
    render_video(seed, width, height, seconds, fps, **overrides) -> (frames, masks, labels)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from neometer.synth import body as body_mod
from neometer.synth.body import Infant, Shape, Stroke
from neometer.synth.camera import Camera, image_size, project
from neometer.synth.labels import sample_labels
from neometer.synth.scene import BedCanvas, clutter_shapes, make_canvas, sample_scene

DEFAULT_RATES = {"tilt": 0.15, "long_diaper": 0.15, "partial_body": 0.1, "clutter": 0.2}
TILT_TAG_DEG = 25.0  # tilt at or above this is the paper's "large tilted viewing angle" hard case
TAGS = ("tilt", "long_diaper", "partial_body", "clutter")
OVERRIDES = {
    "height_cm", "weight_kg", "sex", "tilt_deg", "partial_body", "long_diaper", "clutter_near_body", "orientation",
    "camera_height_cm", "fov_deg", "roll_deg", "hat", "swaddle", "show_body", "degrade", "body_shadow", "rates",
    "clutter", "infant_seed",
}


def seed_tuple(seed) -> tuple[int, ...]:
    if isinstance(seed, (list, tuple)):
        return tuple(int(s) for s in seed)
    return (int(seed),)


# ---------------------------------------------------------------- drawing

def _roi(pts: np.ndarray, pad: float, w: int, h: int):
    x0, y0 = np.floor(pts.min(0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _fixed(pts: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """Pixel coordinates -> OpenCV fixed point (4 fractional bits) relative to the ROI."""
    return np.round((pts - (x0, y0)) * 16).astype(np.int32)


TEXTURE_STRENGTH = {"fabric": 0.02, "knit": 0.1, "hair": 0.35, "terry": 0.12}


def draw_shapes(img: np.ndarray, shapes: list, h: np.ndarray, px_per_cm: float, noise: np.ndarray | None,
                coverage: np.ndarray | None = None, rng: np.random.Generator | None = None) -> None:
    """Draw bed-plane primitives into `img` (in place) through homography h (bed cm -> pixels).
    Round shapes are shaded like cylinders: brightness ~ sqrt(1 - (x/r)^2) across their outline.
    `coverage` (if given) accumulates the anti-aliased union of the in-mask shapes."""
    H, W = img.shape[:2]
    for s in shapes:
        if isinstance(s, Stroke):
            _draw_stroke(img, s, h, px_per_cm)
            continue
        pts = project(h, s.poly)
        box = _roi(pts, 2, W, H)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        fp = _fixed(pts, x0, y0)
        alpha = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(alpha, [fp], 255, cv2.LINE_AA, 4)
        if not alpha.any():
            continue
        color = np.asarray(s.color, np.float32)
        if s.round and min(x1 - x0, y1 - y0) >= 6:
            inside = np.zeros_like(alpha)
            cv2.fillPoly(inside, [fp], 255, cv2.LINE_8, 4)
            dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
            u = np.clip(dist / max(1.0, float(dist.max())), 0, 1)
            shade = 0.74 + 0.26 * np.sqrt(u * (2 - u))
            paint = cv2.merge([shade * color[0], shade * color[1], shade * color[2]])
        else:
            paint = np.empty((y1 - y0, x1 - x0, 3), np.float32)
            paint[:] = color
        a = alpha.astype(np.float32) * np.float32(s.alpha / 255.0)
        if s.texture:
            tex = noise[y0:y1, x0:x1] if noise is not None else (
                rng or np.random.default_rng(0)).standard_normal((y1 - y0, x1 - x0, 3)).astype(np.float32)
            k = TEXTURE_STRENGTH[s.texture]
            if s.texture == "hair":  # wispy: the hair's coverage varies, not only its colour
                a = a * np.clip(1 + k * 2.2 * tex[..., 0], 0, 1)
            else:
                paint = paint * (1 + k * tex[..., 1:2])
        roi = img[y0:y1, x0:x1]
        a3 = cv2.merge([a, a, a])
        roi[:] = cv2.convertScaleAbs(roi.astype(np.float32) + (paint - roi) * a3)
        if coverage is not None and s.in_mask:
            cov = coverage[y0:y1, x0:x1]
            np.maximum(cov, alpha, out=cov)


def _draw_stroke(img: np.ndarray, s: Stroke, h: np.ndarray, px_per_cm: float) -> None:
    H, W = img.shape[:2]
    pts = project(h, s.pts)
    width = s.width_cm * px_per_cm
    thick = max(1, int(round(width)))
    alpha = s.alpha * min(1.0, width)  # hairline strokes fade instead of vanishing
    box = _roi(pts, thick + 2, W, H)
    if box is None or alpha <= 0.02:
        return
    x0, y0, x1, y1 = box
    roi = img[y0:y1, x0:x1]
    over = roi.copy()
    cv2.polylines(over, [_fixed(pts, x0, y0)], False, tuple(int(c) for c in s.color), thick, cv2.LINE_AA, 4)
    roi[:] = np.clip(roi * (1 - alpha) + over * alpha, 0, 255).astype(np.uint8)


def fill_mask(mask: np.ndarray, shapes: list, h: np.ndarray, value: int) -> None:
    """Hard (non anti-aliased) polygons: a pixel is in the mask iff its centre is inside."""
    polys = [np.round(project(h, s.poly) * 16).astype(np.int32) for s in shapes if isinstance(s, Shape)]
    if polys:
        for p in polys:
            cv2.fillPoly(mask, [p], value, cv2.LINE_8, 4)


def stroke_mask(mask: np.ndarray, shapes: list, h: np.ndarray, px_per_cm: float, value: int) -> None:
    for s in shapes:
        if isinstance(s, Stroke):
            thick = max(1, int(round(s.width_cm * px_per_cm)))
            cv2.polylines(mask, [np.round(project(h, s.pts) * 16).astype(np.int32)], False, value, thick, cv2.LINE_8, 4)


# ---------------------------------------------------------------- colour

def kelvin_rgb(kelvin: float) -> np.ndarray:
    """Approximate black-body colour (Tanner Helland's fit), normalised to 1 at 6000 K."""
    def raw(k):
        t = k / 100.0
        r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
        g = 99.47 * math.log(t) - 161.12 if t <= 66 else 288.12 * (t - 60) ** -0.0755
        b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.52 * math.log(t - 10) - 305.04)
        return np.clip(np.array([r, g, b]), 1, 255)
    return raw(kelvin) / raw(6000.0)


# ---------------------------------------------------------------- a recording

@dataclass
class Recording:
    """Everything needed to render any frame of one recording (JSON-able via to_dict)."""
    seed: tuple
    width: int
    height: int
    infant: Infant
    pose: dict
    motion: dict | None
    yaw_deg: float
    center: list
    camera: Camera
    shake: dict | None
    scene: dict
    degrade: dict
    flags: dict
    show_body: bool = True
    body_shadow: bool = True
    _canvas: BedCanvas | None = field(default=None, repr=False)
    _noise: np.ndarray | None = field(default=None, repr=False)
    _noise_bank: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"seed": list(self.seed), "width": self.width, "height": self.height, "infant": self.infant.to_dict(),
                "pose": self.pose, "motion": self.motion, "yaw_deg": self.yaw_deg, "center": self.center,
                "camera": self.camera.to_dict(), "shake": self.shake, "scene": self.scene, "degrade": self.degrade,
                "flags": self.flags}


def make_infant(seed, **ov) -> tuple[Infant, dict]:
    """The baby of `seed`: labels and appearance. Hard-case rate for long diapers applies here."""
    rng = np.random.default_rng([*seed_tuple(seed), 0])
    rates = {**DEFAULT_RATES, **(ov.get("rates") or {})}
    labels = sample_labels(rng, ov.get("height_cm"), ov.get("weight_kg"), ov.get("sex"))
    long_draw = rng.random() < rates["long_diaper"]
    long_diaper = bool(ov["long_diaper"]) if ov.get("long_diaper") is not None else bool(long_draw)
    infant = body_mod.sample_infant(rng, labels, long_diaper=long_diaper, hat=ov.get("hat"), swaddle=ov.get("swaddle"))
    return infant, labels


def _body_vertices(infant: Infant, pose: dict, yaw: float, center) -> np.ndarray:
    shapes = body_mod.to_bed(body_mod.build_shapes(infant, pose), yaw, center)
    return np.concatenate([s.poly for s in shapes if isinstance(s, Shape) and s.in_mask])


def _outside_fraction(cam: Camera, verts: np.ndarray, margin: float = 0.0) -> float:
    p = project(cam.homography(), verts)
    mx, my = margin * cam.width, margin * cam.height
    inside = (p[:, 0] >= mx) & (p[:, 0] < cam.width - mx) & (p[:, 1] >= my) & (p[:, 1] < cam.height - my)
    return float(1 - inside.mean())


def _frame_camera(rng: np.random.Generator, infant: Infant, pose: dict, yaw: float, center, width: int, height: int,
                  tilt: float, partial: bool, ov: dict) -> tuple[Camera, float]:
    """Aim the phone like a nurse would: body along the long side, whole baby in view (unless the
    partial-body hard case asks for part of it to leave the frame)."""
    fov = float(ov.get("fov_deg") or rng.uniform(65, 75))
    az = float(rng.uniform(0, 360))
    want_h = float(rng.uniform(35, 55))
    slack = float(rng.uniform(0.0, 0.3))
    jitter = rng.normal(0, 1.5, 2)
    any_roll = rng.random() < 0.15
    roll_noise, flip = float(rng.normal(0, 8)), bool(rng.random() < 0.5)
    roll_any = float(rng.uniform(-180, 180))
    partial_goal, partial_dir = float(rng.uniform(0.08, 0.3)), (1.0 if rng.random() < 0.5 else -1.0)
    verts = _body_vertices(infant, pose, yaw, center)
    mid = (verts.min(0) + verts.max(0)) / 2 + jitter
    cam = Camera(width, height, fov, want_h, tilt, az, 0.0, float(mid[0]), float(mid[1]))
    # Roll about the optical axis rotates the image about its centre: turn the body axis onto
    # the image's long side (head up or down), or anywhere for a careless shot.
    crown, heel = (np.array(p) for p in body_mod.body_axis_points(infant, pose))
    axis = body_mod.to_bed([Stroke("axis", np.stack([crown, heel]), (0, 0, 0), 0)], yaw, center)[0].pts
    pa = project(cam.homography(), axis)
    cur = math.degrees(math.atan2(pa[1, 1] - pa[0, 1], pa[1, 0] - pa[0, 0]))
    goal = (90.0 if height >= width else 0.0) + (180.0 if flip else 0.0) + roll_noise
    if ov.get("roll_deg") is not None:
        cam.roll_deg = float(ov["roll_deg"])
    else:
        cam.roll_deg = roll_any if any_roll else float(goal - cur)
        pb = project(cam.homography(), axis)  # the sign convention is checked, not assumed
        got = math.degrees(math.atan2(pb[1, 1] - pb[0, 1], pb[1, 0] - pb[0, 0]))
        if not any_roll and abs((got - goal + 180) % 360 - 180) > 1.0:
            cam.roll_deg = float(cur - goal)
    if ov.get("camera_height_cm") is not None:
        cam.height_cm = float(ov["camera_height_cm"])
    elif not partial:
        # Lowest height that shows the whole baby with a margin, then a bit of slack.
        cam.height_cm = 35.0
        while _outside_fraction(cam, verts, 0.04) > 0 and cam.height_cm < 70:
            cam.height_cm = min(70.0, cam.height_cm + 1.0)
        cam.height_cm = float(min(70.0, cam.height_cm * (1.0 + slack)))
    else:
        cam.height_cm = min(cam.height_cm, 55.0)
    if partial:
        direction = (axis[1] - axis[0]) / (np.linalg.norm(axis[1] - axis[0]) + 1e-9) * partial_dir
        for _ in range(60):
            if _outside_fraction(cam, verts) >= partial_goal:
                break
            cam.target_x += float(direction[0]) * 1.0
            cam.target_y += float(direction[1]) * 1.0
    return cam, _outside_fraction(cam, verts)


def plan_recording(seed, width: int | None = None, height: int | None = None, video: bool = False,
                   infant: Infant | None = None, **ov) -> Recording:
    unknown = set(ov) - OVERRIDES
    if unknown:
        raise TypeError(f"unknown synth overrides: {sorted(unknown)}; known: {sorted(OVERRIDES)}")
    st = seed_tuple(seed)
    if infant is None:
        infant, _ = make_infant(ov.get("infant_seed", st), **ov)
    rng = np.random.default_rng([*st, 1])
    rates = {**DEFAULT_RATES, **(ov.get("rates") or {})}
    draws = {k: rng.random() < rates[k] for k in ("tilt", "partial_body", "clutter")}
    orient_draw = "portrait" if rng.random() < 0.6 else "landscape"
    orientation = ov.get("orientation") or (("portrait" if height >= width else "landscape") if width and height else orient_draw)
    if width is None or height is None:
        width, height = image_size(640, orientation)
    if (orientation == "portrait") != (height >= width):
        width, height = height, width
    tilt_hard = draws["tilt"] if ov.get("tilt_deg") is None else None
    tilt_draw = float(rng.uniform(TILT_TAG_DEG, 35.0)) if tilt_hard else float(min(20.0, abs(rng.normal(0, 8))))
    tilt = float(ov["tilt_deg"]) if ov.get("tilt_deg") is not None else tilt_draw
    partial = bool(ov["partial_body"]) if ov.get("partial_body") is not None else bool(draws["partial_body"])
    near = bool(ov["clutter_near_body"]) if ov.get("clutter_near_body") is not None else bool(draws["clutter"])
    pose = body_mod.sample_pose(rng)
    motion = body_mod.sample_motion(rng) if video else None
    yaw = float(rng.uniform(0, 360))
    center = [0.0, 0.0]
    cam, outside = _frame_camera(rng, infant, pose, yaw, center, width, height, tilt, partial, ov)
    outline = _body_vertices(infant, pose, yaw, center)
    scene = sample_scene(rng, outline, yaw, near, clutter_rate=0.6 if ov.get("clutter", True) else 0.0)
    if ov.get("clutter") is False:
        scene["clutter"] = [c for c in scene["clutter"] if c["near"]]
    shake = _sample_shake(rng) if video else None
    degrade = {"blur_px": float(rng.uniform(0.0, 0.9)), "noise_sigma": float(rng.uniform(1.5, 5.0)),
               "jpeg_quality": int(rng.integers(72, 96)), "noise_seed": int(rng.integers(0, 2**31)),
               "enabled": bool(ov.get("degrade", True))}
    flags = {"tilt_deg": tilt, "partial_body": partial, "outside_fraction": round(outside, 4),
             "long_diaper": infant.diaper["long"], "clutter_near_body": near, "orientation": orientation}
    return Recording(st, width, height, infant, pose, motion, yaw, center, cam, shake, scene, degrade, flags,
                     show_body=bool(ov.get("show_body", True)), body_shadow=bool(ov.get("body_shadow", True)))


def _sample_shake(rng: np.random.Generator) -> dict:
    """Hand shake: each camera parameter drifts as a sum of two slow sines."""
    amps = {"tilt_deg": rng.uniform(0.3, 1.5), "roll_deg": rng.uniform(0.3, 2.0), "target_x": rng.uniform(0.2, 1.0),
            "target_y": rng.uniform(0.2, 1.0), "height_cm": rng.uniform(0.3, 1.5)}
    return {k: [{"amp": float(a * w), "hz": float(rng.uniform(0.2, 1.8)), "phase": float(rng.uniform(0, 2 * math.pi))}
                for w in (0.7, 0.3)] for k, a in amps.items()}


def camera_at(rec: Recording, t: float) -> Camera:
    if rec.shake is None:
        return rec.camera
    cam = Camera(**rec.camera.__dict__)
    for k, waves in rec.shake.items():
        setattr(cam, k, getattr(cam, k) + sum(w["amp"] * math.sin(2 * math.pi * w["hz"] * t + w["phase"]) for w in waves))
    cam.tilt_deg = abs(cam.tilt_deg)
    return cam


# ---------------------------------------------------------------- frames

def _canvas_for(rec: Recording) -> BedCanvas:
    """The bed texture covering everything the camera can see during the recording."""
    if rec._canvas is None:
        cam = rec.camera
        hinv = np.linalg.inv(cam.homography())
        w, h = cam.width, cam.height
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h], [w / 2, 0], [w / 2, h], [0, h / 2], [w, h / 2]], float)
        bed = project(hinv, corners)
        c = np.array([cam.target_x, cam.target_y])
        lo = np.maximum(bed.min(0) - 6, c - 110)
        hi = np.minimum(bed.max(0) + 6, c + 110)
        scale = cam.px_per_cm_at(cam.target_x, cam.target_y)
        ppc = float(np.clip(scale, 2.0, 9.0))
        area = (hi - lo).prod()
        ppc = min(ppc, math.sqrt(2.0e6 / max(area, 1.0)))
        rec._canvas = make_canvas(rec.scene, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), ppc)
    return rec._canvas


def _texture_noise(rec: Recording) -> np.ndarray:
    if rec._noise is None:
        rng = np.random.default_rng([*rec.seed, 7])
        n = rng.standard_normal((rec.height, rec.width, 3)).astype(np.float32)
        n[..., 0] = cv2.GaussianBlur(n[..., 0], (0, 0), sigmaX=0.6, sigmaY=2.0)  # strand-like for hair
        n[..., 0] /= max(1e-6, float(n[..., 0].std()))
        n[..., 1] = cv2.GaussianBlur(n[..., 1], (0, 0), 0.8)  # cloth: softer than sensor noise
        n[..., 1] /= max(1e-6, float(n[..., 1].std()))
        rec._noise = n
    return rec._noise


def body_shapes_at(rec: Recording, t: float) -> list:
    pose = body_mod.pose_at(rec.pose, rec.motion, t)
    breath = math.sin(2 * math.pi * rec.motion["breath_hz"] * t) if rec.motion else 0.0
    return body_mod.to_bed(body_mod.build_shapes(rec.infant, pose, breath), rec.yaw_deg, rec.center)


def render_at(rec: Recording, t: float, frame_index: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """One frame before JPEG: (rgb u8, mask u8 {0,255}, per-frame info)."""
    cam = camera_at(rec, t)
    hmg = cam.homography()
    W, H = rec.width, rec.height
    canvas = _canvas_for(rec)
    bg = cv2.warpPerspective(canvas.rgb, hmg @ canvas.rgb_to_bed(), (W, H), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(int(c) for c in rec.scene["surround"]))
    px_cm = cam.px_per_cm_at(*rec.center)
    shapes = body_shapes_at(rec, t)
    mask = np.zeros((H, W), np.uint8)
    fill_mask(mask, [s for s in shapes if isinstance(s, Shape) and s.in_mask], hmg, 255)
    if rec.show_body:
        if rec.body_shadow:
            bg = _contact_shadow(bg, mask, rec.scene["light"], px_cm)
        img = bg.copy()
        coverage = np.zeros((H, W), np.uint8)
        draw_shapes(img, shapes, hmg, px_cm, _texture_noise(rec), coverage)
        # Strokes (creases, eyes) never spill past the silhouette's anti-aliased edge, and that
        # edge never reaches further than one pixel from the mask.
        support = (coverage > 0) & (cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0)
        img = np.where(support[..., None], img, bg)
    else:
        img = bg
    over = [s for item in rec.scene["clutter"] if item["layer"] == "over" for s in clutter_shapes(item)]
    if over:
        draw_shapes(img, over, hmg, px_cm, _texture_noise(rec))
        occluder = np.zeros_like(mask)
        fill_mask(occluder, over, hmg, 255)
        stroke_mask(occluder, over, hmg, px_cm, 255)
        mask[occluder > 0] = 0
    if not rec.show_body:
        mask[:] = 0
    img = _light(img, rec, canvas, hmg)
    if rec.degrade["enabled"]:
        img = _sensor(img, rec, frame_index)
    info = {"t": round(t, 4), "camera": cam.to_dict(), "px_per_cm_center": round(px_cm, 3),
            "mask_fraction": round(float((mask > 0).mean()), 5)}
    return img, mask, info


def _contact_shadow(bg: np.ndarray, mask: np.ndarray, light: dict, px_cm: float) -> np.ndarray:
    """Soft shadow of the baby on the mat, offset away from the light (computed at 1/4 size: it is blurry)."""
    H, W = mask.shape
    a = math.radians(light["body_shadow_dir_deg"])
    shift = 0.8 * px_cm / 4
    small = cv2.resize(mask, (max(1, W // 4), max(1, H // 4)), interpolation=cv2.INTER_AREA)
    m = np.float32([[1, 0, shift * math.cos(a)], [0, 1, shift * math.sin(a)]])
    sh = cv2.warpAffine(small, m, (small.shape[1], small.shape[0]))
    sh = cv2.GaussianBlur(sh.astype(np.float32) * (light["body_shadow"] / 255.0), (0, 0), max(0.5, 0.3 * px_cm))
    keep = cv2.resize(1.0 - sh, (W, H), interpolation=cv2.INTER_LINEAR)
    return cv2.convertScaleAbs(cv2.multiply(bg.astype(np.float32), cv2.merge([keep, keep, keep])))


def _light(img: np.ndarray, rec: Recording, canvas: BedCanvas, hmg: np.ndarray) -> np.ndarray:
    H, W = img.shape[:2]
    light = rec.scene["light"]
    # The light map is smooth: warp it at 1/4 size and upsample.
    small_w, small_h = max(2, W // 4), max(2, H // 4)
    down = np.diag([small_w / W, small_h / H, 1.0])
    gain = cv2.warpPerspective(canvas.light, down @ hmg @ canvas.light_to_bed(), (small_w, small_h),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gain = cv2.resize(gain, (W, H), interpolation=cv2.INTER_LINEAR) * _vignette(rec)
    cast = kelvin_rgb(light["kelvin"])
    wb = (1 + (cast - 1) * (1 - light["white_balance"])).astype(np.float32)
    gain3 = cv2.merge([gain * wb[0], gain * wb[1], gain * wb[2]])
    return cv2.convertScaleAbs(cv2.multiply(img.astype(np.float32), gain3))


def _vignette(rec: Recording) -> np.ndarray:
    H, W = rec.height, rec.width
    ys, xs = np.ogrid[0:H, 0:W]
    r2 = ((xs - W / 2) / (W / 2)) ** 2 + ((ys - H / 2) / (H / 2)) ** 2
    return (1 - rec.scene["light"]["vignette"] * 0.5 * r2).astype(np.float32)


def _sensor(img: np.ndarray, rec: Recording, frame_index: int) -> np.ndarray:
    """Defocus blur and sensor noise. The noise comes from a per-recording bank, cropped at a
    per-frame random offset: fresh-looking noise each frame for a fraction of the cost."""
    d = rec.degrade
    scale = max(rec.width, rec.height) / 640.0
    out = img
    if d["blur_px"] * scale > 0.25:
        out = cv2.GaussianBlur(out, (0, 0), d["blur_px"] * scale)
    if rec._noise_bank is None:
        bank_rng = np.random.default_rng([d["noise_seed"], 0])
        bank = bank_rng.standard_normal((rec.height + 32, rec.width + 32, 3), dtype=np.float32) * d["noise_sigma"]
        rec._noise_bank = np.round(bank).astype(np.int16)
    oy, ox = np.random.default_rng([d["noise_seed"], frame_index + 1]).integers(0, 33, 2)
    noise = rec._noise_bank[oy:oy + rec.height, ox:ox + rec.width]
    return np.clip(out.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------- labels

def visible_extent_cm(rec: Recording, t: float = 0.0) -> float:
    """Crown to the farther heel in the bed plane: what a flexed baby actually spans."""
    pose = body_mod.pose_at(rec.pose, rec.motion, t)
    sk = body_mod.skeleton(rec.infant, pose)
    crown, _ = body_mod.body_axis_points(rec.infant, pose)
    return float(max(np.linalg.norm(sk.joints["right_heel"] - crown), np.linalg.norm(sk.joints["left_heel"] - crown)))


def recording_tags(rec: Recording) -> list[str]:
    f = rec.flags
    tags = []
    if f["tilt_deg"] >= TILT_TAG_DEG:
        tags.append("tilt")
    if f["long_diaper"]:
        tags.append("long_diaper")
    if f["outside_fraction"] > 0.02:
        tags.append("partial_body")
    if f["clutter_near_body"]:
        tags.append("clutter")
    return tags


def labels_of(rec: Recording) -> dict:
    inf = rec.infant
    return {
        "height_cm": inf.height_cm, "weight_kg": inf.weight_kg, "sex": inf.sex,
        "gestational_age_weeks": inf.gestational_age_weeks, "weight_for_length_z": inf.weight_for_length_z,
        "tags": recording_tags(rec), "tilt_deg": round(rec.flags["tilt_deg"], 3),
        "visible_extent_cm": round(visible_extent_cm(rec), 2), "render": rec.to_dict(),
    }


# ---------------------------------------------------------------- public API

def sample_frame(seed, width: int | None = None, height: int | None = None, **overrides):
    """One still photo: (rgb HxWx3 uint8 after JPEG, mask HxW uint8 {0,255}, labels dict)."""
    rec = plan_recording(seed, width, height, video=False, **overrides)
    rgb, mask, info = render_at(rec, 0.0, 0)
    if rec.degrade["enabled"]:
        rgb = jpeg_roundtrip(rgb, rec.degrade["jpeg_quality"])
    labels = labels_of(rec)
    labels["frame"] = info
    return rgb, mask, labels


def iter_video(rec: Recording, seconds: float, fps: float):
    n = max(1, int(round(seconds * fps)))
    for i in range(n):
        yield render_at(rec, i / fps, i)


def render_video(seed, width: int | None = None, height: int | None = None, seconds: float = 3.0, fps: float = 15.0,
                 **overrides):
    """A short phone video: (frames list of RGB u8, masks list of u8 {0,255}, labels dict)."""
    rec = plan_recording(seed, width, height, video=True, **overrides)
    frames, masks, infos = [], [], []
    for rgb, mask, info in iter_video(rec, seconds, fps):
        frames.append(rgb)
        masks.append(mask)
        infos.append(info)
    labels = labels_of(rec)
    labels["fps"], labels["frames"] = fps, infos
    return frames, masks, labels
