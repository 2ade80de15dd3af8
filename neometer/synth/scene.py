"""The bed around the baby: mat or blanket textures, clutter, light.

Textures are generated in bed-plane coordinates (a canvas at `ppc` pixels per cm) and warped
into the image with the camera homography, so the mat's pattern shows true perspective.
Clutter under the baby (towels, cables, clamps, gauze) is painted into that canvas; clutter over
the baby (a gloved hand, a cable across a limb) is drawn after the body and cut out of the mask.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from neometer.synth.body import Shape, Stroke, capsule, ellipse

MAT_COLORS = {  # RGB
    "warmer": [(86, 148, 196), (104, 170, 166), (198, 204, 210), (150, 190, 128), (120, 160, 210), (60, 110, 170)],
    "blanket": [(242, 238, 228), (246, 244, 240), (236, 232, 220)],
    "sheet": [(236, 240, 246), (246, 246, 242), (220, 232, 245), (248, 240, 214), (228, 240, 226)],
    "pattern": [(240, 228, 232), (226, 236, 246), (244, 244, 236), (230, 244, 236)],
}
STRIPE_PAIRS = [((236, 150, 170), (110, 165, 225)), ((110, 165, 225), (236, 150, 170)), ((250, 205, 110), (140, 200, 160))]
SURROUND_COLORS = [(205, 205, 202), (214, 204, 186), (172, 182, 192), (150, 112, 78), (120, 124, 130)]
GLOVE_COLORS = [(95, 135, 222), (132, 112, 205), (236, 230, 214), (70, 80, 90)]
CABLE_COLORS = [(238, 238, 234), (160, 165, 170), (80, 120, 200), (60, 60, 64), (230, 200, 80)]
TOWEL_COLORS = [(245, 245, 242), (160, 200, 170), (150, 185, 225), (235, 215, 190)]
CLAMP_COLORS = [(60, 120, 220), (245, 245, 245), (250, 215, 60), (200, 205, 210)]


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise in about [-1, 1] with features `cell` pixels wide (cubic upsampled)."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    low = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)


# ---------------------------------------------------------------- sampling

def sample_scene(rng: np.random.Generator, body_outline: np.ndarray, body_yaw_deg: float, clutter_near_body: bool,
                 clutter_rate: float = 0.6) -> dict:
    """Scene parameters (JSON-able). `body_outline` is the baby's bed-plane outline (cm)."""
    kind = ["warmer", "blanket", "sheet", "pattern"][int(rng.choice(4, p=[0.35, 0.3, 0.2, 0.15]))]
    colors = MAT_COLORS[kind]
    center = body_outline.mean(0)
    mat = {
        "kind": kind,
        "color": list(colors[rng.integers(0, len(colors))]),
        "stripes": list(map(list, STRIPE_PAIRS[rng.integers(0, len(STRIPE_PAIRS))])),
        "center": [float(center[0] + rng.uniform(-8, 8)), float(center[1] + rng.uniform(-8, 8))],
        "size": [float(rng.uniform(58, 80)), float(rng.uniform(85, 115))],
        "angle_deg": float(body_yaw_deg + rng.normal(0, 6) + (90 if rng.random() < 0.15 else 0)),
        "wrinkles": float(rng.uniform(0.2, 1.0) if kind != "warmer" else rng.uniform(0.0, 0.25)),
        "texture_seed": int(rng.integers(0, 2**31)),
        "pattern": int(rng.integers(0, 3)),
    }
    surround = list(SURROUND_COLORS[rng.integers(0, len(SURROUND_COLORS))])
    clutter = []
    n_far = int(rng.poisson(1.4 * clutter_rate / 0.6)) if rng.random() < clutter_rate else 0
    for _ in range(min(n_far, 4)):
        clutter.append(_sample_clutter(rng, body_outline, near=False))
    if clutter_near_body:
        for _ in range(int(rng.integers(1, 3))):
            clutter.append(_sample_clutter(rng, body_outline, near=True))
    light = {
        "kelvin": float(rng.uniform(2800, 6500)),
        "white_balance": float(rng.uniform(0.55, 0.95)),  # how much of the colour cast the phone removes
        "exposure": float(rng.uniform(0.85, 1.12)),
        "gradient_dir_deg": float(rng.uniform(0, 360)),
        "gradient": float(rng.uniform(0.05, 0.35)),
        "hotspot": [float(center[0] + rng.uniform(-40, 40)), float(center[1] + rng.uniform(-40, 40)),
                    float(rng.uniform(20, 60)), float(rng.uniform(0.0, 0.35))],
        "shadow": _sample_cast_shadow(rng, center) if rng.random() < 0.4 else None,
        "vignette": float(rng.uniform(0.0, 0.35)),
        "body_shadow": float(rng.uniform(0.25, 0.5)),
        "body_shadow_dir_deg": float(rng.uniform(0, 360)),
    }
    return {"mat": mat, "surround": surround, "clutter": clutter, "light": light}


def _sample_cast_shadow(rng: np.random.Generator, center) -> dict:
    """The shadow of the nurse or the phone: a large soft blob entering from one side."""
    a = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(25, 45)
    return {"center": [float(center[0] + dist * math.cos(a)), float(center[1] + dist * math.sin(a))],
            "axes": [float(rng.uniform(15, 35)), float(rng.uniform(25, 50))], "angle_deg": float(math.degrees(a)),
            "darkness": float(rng.uniform(0.15, 0.45)), "softness_cm": float(rng.uniform(3, 10))}


def _outline_point(rng: np.random.Generator, outline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A point on the body outline and the outward direction there."""
    i = int(rng.integers(0, len(outline)))
    p = outline[i]
    out = p - outline.mean(0)
    return p, out / (np.linalg.norm(out) + 1e-9)


def _sample_clutter(rng: np.random.Generator, outline: np.ndarray, near: bool) -> dict:
    kinds = ["towel", "cable", "clamp", "glove", "gauze"]
    kind = kinds[int(rng.choice(5, p=[0.25, 0.3, 0.15, 0.15, 0.15] if not near else [0.3, 0.3, 0.05, 0.3, 0.05]))]
    p, out = _outline_point(rng, outline)
    # Near-body clutter touches or overlaps the outline; the rest lies 8-30 cm away.
    gap = rng.uniform(-3.0, 1.5) if near else rng.uniform(8, 30)
    size_ref = {"towel": 14, "cable": 0, "clamp": 2, "glove": 5, "gauze": 5}[kind]
    pos = p + out * (gap + (size_ref if not near or kind in ("towel",) else 0))
    item = {"kind": kind, "near": bool(near), "pos": [float(pos[0]), float(pos[1])],
            "angle_deg": float(rng.uniform(0, 360)), "seed": int(rng.integers(0, 2**31))}
    if kind == "towel":
        item.update(color=list(TOWEL_COLORS[rng.integers(0, len(TOWEL_COLORS))]), size=[float(rng.uniform(18, 32)), float(rng.uniform(25, 40))],
                    layer="under")
    elif kind == "cable":
        pts = [pos + out * rng.uniform(30, 60)]
        for _ in range(3):
            pts.append(pts[-1] - out * rng.uniform(8, 20) + rng.normal(0, 8, 2))
        if near:  # make the cable run past/over the body edge
            pts[-1] = p - out * rng.uniform(1, 5)
        item.update(points=[list(map(float, q)) for q in pts], color=list(CABLE_COLORS[rng.integers(0, len(CABLE_COLORS))]),
                    width_cm=float(rng.uniform(0.35, 0.7)), layer="over" if near and rng.random() < 0.6 else "under")
    elif kind == "clamp":
        item.update(color=list(CLAMP_COLORS[rng.integers(0, len(CLAMP_COLORS))]), size=float(rng.uniform(4, 7)), layer="under")
    elif kind == "glove":
        # The hand reaches in from outside: fingertips at pos, wrist further out.
        reach = math.degrees(math.atan2(-out[1], -out[0])) + rng.normal(0, 20)
        item.update(color=list(GLOVE_COLORS[rng.integers(0, len(GLOVE_COLORS))]), angle_deg=float(reach),
                    scale=float(rng.uniform(0.9, 1.1)), layer="over")
    else:
        item.update(color=[248, 248, 246], size=float(rng.uniform(7, 11)), layer="under")
    return item


# ---------------------------------------------------------------- clutter geometry

def _bezier(points: np.ndarray, n: int = 60) -> np.ndarray:
    pts = np.asarray(points, float)
    t = np.linspace(0, 1, n)[:, None]
    k = len(pts) - 1
    out = np.zeros((n, 2))
    for i, p in enumerate(pts):
        out += math.comb(k, i) * (1 - t) ** (k - i) * t**i * p
    return out


def clutter_shapes(item: dict) -> list:
    """Bed-plane primitives of one clutter item (none of them belongs to the baby's mask)."""
    pos = np.asarray(item["pos"], float)
    a = math.radians(item["angle_deg"])
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    color = tuple(item["color"])
    kind = item["kind"]
    if kind == "towel":
        w, h = item["size"]
        rect = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]]) @ rot.T + pos
        fold = np.array([[-w / 2, h / 6], [w / 2, h / 6]]) @ rot.T + pos
        return [Shape("towel", rect, color, round=True, in_mask=False, texture="terry"),
                Stroke("towel_fold", fold, tuple(int(c * 0.8) for c in color), 0.4, 0.6)]
    if kind == "cable":
        curve = _bezier(np.asarray(item["points"]))
        return [Stroke("cable", curve, color, item["width_cm"], 1.0)]
    if kind == "clamp":
        s = item["size"]
        body = capsule(np.array([-s / 2, 0]) @ rot.T + pos, np.array([s / 2, 0]) @ rot.T + pos, 0.6, 0.5, 8)
        jaw = capsule(np.array([-s / 2, 0.9]) @ rot.T + pos, np.array([s * 0.3, 0.9]) @ rot.T + pos, 0.35, 0.3, 6)
        return [Shape("clamp", body, color, in_mask=False), Shape("clamp_jaw", jaw, color, in_mask=False)]
    if kind == "gauze":
        s = item["size"]
        sq = np.array([[-s / 2, -s / 2], [s / 2, -s / 2], [s / 2, s / 2], [-s / 2, s / 2]]) @ rot.T + pos
        return [Shape("gauze", sq, color, round=False, in_mask=False, texture="terry")]
    if kind == "glove":
        return _glove(pos, a, item["scale"], color)
    raise ValueError(kind)


def _glove(tip: np.ndarray, a: float, scale: float, color) -> list:
    """A gloved adult hand, fingertips at `tip`, reaching along angle a (the arm trails behind)."""
    d = np.array([math.cos(a), math.sin(a)])
    n = np.array([-d[1], d[0]])
    palm_c = tip - d * 11 * scale
    shapes = [Shape("glove_arm", capsule(palm_c - d * 45 * scale, palm_c - d * 4 * scale, 4.2 * scale, 4.0 * scale),
                    tuple(int(c * 0.92) for c in color), in_mask=False)]
    shapes.append(Shape("glove_palm", ellipse(palm_c, 4.6 * scale, 5.2 * scale, -math.atan2(d[0], d[1]), 28), color, in_mask=False))
    for k, (off, length) in enumerate(((-2.7, 6.2), (-0.9, 7.2), (0.9, 7.0), (2.6, 5.8))):
        base = palm_c + d * 3.5 * scale + n * off * scale
        shapes.append(Shape(f"glove_finger{k}", capsule(base, base + d * length * scale, 0.95 * scale, 0.85 * scale, 8),
                            color, in_mask=False))
    base = palm_c - d * 1.0 * scale - n * 4.0 * scale
    shapes.append(Shape("glove_thumb", capsule(base, base + (d * 0.6 - n * 0.8) * 6 * scale, 1.15 * scale, 1.0 * scale, 8),
                        color, in_mask=False))
    return shapes


# ---------------------------------------------------------------- the bed canvas

class BedCanvas:
    """A texture of the bed plane: pixel (i, j) is bed point (x0 + (j + .5)/ppc, y0 + (i + .5)/ppc)."""

    def __init__(self, x0: float, y0: float, ppc: float, rgb: np.ndarray, light: np.ndarray, light_ppc: float):
        self.x0, self.y0, self.ppc, self.rgb = x0, y0, ppc, rgb
        self.light, self.light_ppc = light, light_ppc

    @staticmethod
    def bed_from_pixels(x0: float, y0: float, ppc: float) -> np.ndarray:
        """3x3: canvas pixel (j, i, 1) -> bed point (cm); pixel centres sit at +0.5."""
        return np.array([[1 / ppc, 0, x0 + 0.5 / ppc], [0, 1 / ppc, y0 + 0.5 / ppc], [0, 0, 1]], dtype=np.float64)

    def rgb_to_bed(self) -> np.ndarray:
        return self.bed_from_pixels(self.x0, self.y0, self.ppc)

    def light_to_bed(self) -> np.ndarray:
        return self.bed_from_pixels(self.x0, self.y0, self.light_ppc)


def make_canvas(scene: dict, extent: tuple[float, float, float, float], ppc: float) -> BedCanvas:
    x0, y0, x1, y1 = extent
    w, h = max(8, int(math.ceil((x1 - x0) * ppc))), max(8, int(math.ceil((y1 - y0) * ppc)))
    rng = np.random.default_rng(scene["mat"]["texture_seed"])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    bx, by = x0 + (xs + 0.5) / ppc, y0 + (ys + 0.5) / ppc
    rgb = _mat_texture(scene, rng, bx, by, ppc)
    canvas = BedCanvas(x0, y0, ppc, rgb, None, 1.0)
    for item in scene["clutter"]:
        if item["layer"] == "under":
            paint_shapes_on_canvas(canvas, clutter_shapes(item), np.random.default_rng(item["seed"]))
    canvas.light, canvas.light_ppc = _light_map(scene, rng, extent)
    return canvas


def _mat_texture(scene: dict, rng: np.random.Generator, bx: np.ndarray, by: np.ndarray, ppc: float) -> np.ndarray:
    mat = scene["mat"]
    h, w = bx.shape
    a = math.radians(mat["angle_deg"])
    # mat-local coordinates (u across, v along)
    dx, dy = bx - mat["center"][0], by - mat["center"][1]
    u = dx * math.cos(a) + dy * math.sin(a)
    v = -dx * math.sin(a) + dy * math.cos(a)
    base = np.asarray(mat["color"], np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    kind = mat["kind"]
    if kind == "blanket":  # hospital receiving blanket: bands of pink and blue stripes
        c1, c2 = (np.asarray(c, np.float32) for c in mat["stripes"])
        period = 38.0
        ph = np.mod(v + 7.0, period)
        for lo, hi, col in ((0.0, 1.4, c1), (2.2, 3.0, c2), (3.8, 5.2, c1)):
            m = (ph >= lo) & (ph < hi)
            img[m] = img[m] * 0.15 + col * 0.85
    elif kind == "pattern":
        col = np.asarray(mat["stripes"][0], np.float32)
        if mat["pattern"] == 0:  # gingham checks
            cu = (np.mod(u, 3.0) < 1.5).astype(np.float32)
            cv = (np.mod(v, 3.0) < 1.5).astype(np.float32)
            k = (0.35 * cu + 0.35 * cv)[..., None]
            img = img * (1 - k) + col * k
        else:  # small printed dots / stars
            gu, gv = np.mod(u, 6.0) - 3.0, np.mod(v + (np.floor(u / 6.0) % 2) * 3.0, 6.0) - 3.0
            m = (gu**2 + gv**2) < (0.9 if mat["pattern"] == 1 else 0.5)
            img[m] = col * 0.9
    # Fabric weave and fibres (or vinyl grain for warmer mattresses).
    grain = rng.standard_normal((h, w)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), max(0.5, 0.08 * ppc))
    img *= (1 + (0.025 if kind == "warmer" else 0.05) * grain)[..., None]
    # Wrinkles and folds: shade a random height field by its slope (light from one side).
    if mat["wrinkles"] > 0:
        img *= (1 + mat["wrinkles"] * _fold_shading(rng, h, w, ppc))[..., None]
    # Outside the mat: the warmer tray / bassinet / table; a darker seam at the edge.
    half_w, half_h = mat["size"][0] / 2, mat["size"][1] / 2
    edge = np.maximum(np.abs(u) - half_w, np.abs(v) - half_h)
    surround = np.asarray(scene["surround"], np.float32) * (1 + 0.03 * grain[..., None])
    t = np.clip((edge + 0.6) / 1.2, 0, 1)[..., None]
    img = img * (1 - t) + surround * t
    seam = np.exp(-((edge - 0.0) ** 2) / (2 * 0.6**2))[..., None]
    img *= 1 - 0.35 * seam
    return np.clip(img, 0, 255).astype(np.uint8)


def _fold_shading(rng: np.random.Generator, h: int, w: int, ppc: float) -> np.ndarray:
    """Cloth folds: long soft ridges (anisotropic noise, stretched along one direction) lit from
    the side, so they read as creases in a sheet rather than blotches."""
    along = rng.uniform(14, 30) * ppc
    across = rng.uniform(4.0, 8.0) * ppc
    if rng.random() < 0.5:
        gh, gw = max(2, int(h / along) + 3), max(2, int(w / across) + 3)
    else:
        gh, gw = max(2, int(h / across) + 3), max(2, int(w / along) + 3)
    low = rng.standard_normal((gh, gw)).astype(np.float32)
    height = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    height += 0.35 * smooth_noise(rng, h, w, 6 * ppc)
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) + cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3)
    gx *= across / 6.0
    return np.clip(0.09 * gx, -0.15, 0.15)


def _light_map(scene: dict, rng: np.random.Generator, extent) -> tuple[np.ndarray, float]:
    """Multiplicative light on the bed at 1 px/cm: gradient, a lamp hotspot, a cast shadow."""
    x0, y0, x1, y1 = extent
    lp = 1.0
    w, h = max(4, int(math.ceil((x1 - x0) * lp))), max(4, int(math.ceil((y1 - y0) * lp)))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    bx, by = x0 + (xs + 0.5) / lp, y0 + (ys + 0.5) / lp
    light = scene["light"]
    cx, cy = scene["mat"]["center"]
    a = math.radians(light["gradient_dir_deg"])
    ramp = ((bx - cx) * math.cos(a) + (by - cy) * math.sin(a)) / 60.0
    gain = 1 + light["gradient"] * np.clip(ramp, -1.5, 1.5)
    hx, hy, hr, hs = light["hotspot"]
    gain += hs * np.exp(-((bx - hx) ** 2 + (by - hy) ** 2) / (2 * hr**2))
    sh = light["shadow"]
    if sh:
        m = np.zeros((h, w), np.float32)
        pts = ellipse(sh["center"], sh["axes"][0], sh["axes"][1], math.radians(sh["angle_deg"]), 40)
        cv2.fillPoly(m, [np.round((pts - [x0, y0]) * lp * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        m = cv2.GaussianBlur(m, (0, 0), sh["softness_cm"] * lp)
        gain *= 1 - sh["darkness"] * m
    return (gain * light["exposure"]).astype(np.float32), lp


def paint_shapes_on_canvas(canvas: BedCanvas, shapes: list, rng: np.random.Generator) -> None:
    """Paint under-the-baby clutter into the bed texture (it then warps with the mat)."""
    from neometer.synth.render import draw_shapes  # shared drawing routine

    h = np.linalg.inv(canvas.rgb_to_bed())
    draw_shapes(canvas.rgb, shapes, h, px_per_cm=canvas.ppc, noise=None)
