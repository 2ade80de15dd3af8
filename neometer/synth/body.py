"""A parametric newborn lying supine, seen from above, as 2D shapes in bed-plane centimetres.

The crown-heel length label fixes the segment lengths (head about a quarter of the length, trunk
from chin to hip joint 0.42 L, thigh 0.16 L, knee to heel 0.17 L). Newborns lie flexed: hips and
knees bent with the heels resting on the mattress, so the thighs are foreshortened and the
visible crown-heel extent is shorter than the label. Weight-for-length drives girth (trunk and
limb widths, skin folds), so the image carries information about weight beyond length.

`build_shapes(infant, pose, ...)` returns drawing primitives in back-to-front order; the
renderer projects them through the camera homography and draws them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Newborn skin tones (RGB), from very light to very dark; newborns are often pinker/redder.
SKIN_PALETTE = [
    (242, 204, 190), (238, 192, 174), (230, 180, 158), (218, 166, 138), (200, 146, 114),
    (174, 122, 92), (146, 100, 74), (118, 80, 60), (96, 64, 50),
]
HAIR_COLORS = [(38, 28, 22), (58, 40, 28), (92, 64, 40), (140, 104, 66), (24, 20, 20)]
DIAPER_STYLES = [
    {"base": (246, 246, 242), "band": (150, 200, 235), "print": (120, 180, 230)},
    {"base": (240, 244, 250), "band": (250, 210, 120), "print": (240, 190, 90)},
    {"base": (226, 238, 248), "band": (255, 255, 255), "print": (140, 190, 235)},
    {"base": (250, 250, 250), "band": (190, 230, 200), "print": (130, 200, 150)},
    {"base": (244, 236, 226), "band": (230, 180, 200), "print": (235, 160, 190)},
]
HAT_STYLES = [  # hospital beanie: base with stripes
    {"base": (244, 244, 240), "stripe": (236, 150, 170)},
    {"base": (244, 244, 240), "stripe": (120, 170, 225)},
    {"base": (200, 225, 245), "stripe": (200, 225, 245)},
    {"base": (250, 215, 225), "stripe": (250, 215, 225)},
    {"base": (235, 232, 210), "stripe": (210, 200, 160)},
]
CLAMP_COLORS = [(60, 120, 220), (245, 245, 245), (250, 215, 60), (235, 120, 160), (70, 180, 120)]
BAND_COLORS = [(245, 245, 245), (250, 190, 210), (170, 205, 245)]


@dataclass
class Shape:
    """A filled polygon in bed cm. `round` shapes get cylinder-like shading from their outline."""
    name: str
    poly: np.ndarray
    color: tuple
    round: bool = True
    in_mask: bool = True
    alpha: float = 1.0
    texture: str | None = None  # "hair", "knit", "fabric"


@dataclass
class Stroke:
    """A polyline in bed cm (creases, closed eyes, mouth, finger lines)."""
    name: str
    pts: np.ndarray
    color: tuple
    width_cm: float
    alpha: float = 1.0


@dataclass
class Infant:
    """Who the baby is: labels and appearance, shared by all of its recordings."""
    height_cm: float
    weight_kg: float
    sex: str
    gestational_age_weeks: float
    weight_for_length_z: float
    skin: tuple
    girth: float
    hair_amount: float
    hair_color: tuple
    eyes_open: bool
    diaper: dict
    hat: dict | None
    id_band: dict | None
    swaddle: dict | None
    clamp_color: tuple

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _jitter_color(rng: np.random.Generator, color, amount: float) -> tuple:
    c = np.asarray(color, float) + rng.normal(0, amount, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def sample_infant(rng: np.random.Generator, labels: dict, long_diaper: bool = False, hat: bool | None = None,
                  swaddle: bool | None = None) -> Infant:
    """Appearance of one newborn. Draws happen unconditionally so overrides keep the stream."""
    tone = rng.integers(0, len(SKIN_PALETTE))
    redness = rng.uniform(0.0, 1.0)
    skin = np.asarray(SKIN_PALETTE[tone], float)
    skin = skin + redness * np.array([6, -10, -8]) + rng.normal(0, 4, 3)
    z = labels["weight_for_length_z"]
    girth = float(np.clip(1.0 + 0.085 * z, 0.78, 1.26))
    hair_amount, hair_color = rng.uniform(0, 1), HAIR_COLORS[rng.integers(0, len(HAIR_COLORS))]
    eyes_open = bool(rng.random() < 0.15)
    style = DIAPER_STYLES[rng.integers(0, len(DIAPER_STYLES))]
    diaper = {
        "style": {k: list(v) for k, v in style.items()},
        "long": bool(long_diaper),
        # Where the waistband sits (fraction of L above the hip joint) and how far the leg
        # cuffs reach down the thighs (fraction of thigh length). Long diapers reach higher and lower.
        "waist": float(rng.uniform(0.16, 0.2) if long_diaper else rng.uniform(0.1, 0.135)),
        "leg": float(rng.uniform(0.55, 0.8) if long_diaper else rng.uniform(0.18, 0.34)),
        "printed": bool(rng.random() < 0.5),
    }
    want_hat, hat_style, hat_depth = rng.random() < 0.35, rng.integers(0, len(HAT_STYLES)), rng.uniform(0.3, 0.55)
    hat = hat if hat is not None else want_hat
    hat_spec = {"style": {k: list(v) for k, v in HAT_STYLES[hat_style].items()}, "depth": float(hat_depth)} if hat else None
    want_band, band_limb, band_color = rng.random() < 0.6, rng.integers(0, 4), rng.integers(0, len(BAND_COLORS))
    band = {"limb": ["left_wrist", "right_wrist", "left_ankle", "right_ankle"][band_limb],
            "color": list(BAND_COLORS[band_color])} if want_band else None
    want_swaddle, swaddle_color = rng.random() < 0.06, _jitter_color(rng, (236, 232, 226), 12)
    swaddle = swaddle if swaddle is not None else want_swaddle
    swaddle_spec = {"color": list(swaddle_color), "stripes": True} if swaddle else None
    clamp = CLAMP_COLORS[rng.integers(0, len(CLAMP_COLORS))]
    return Infant(
        height_cm=labels["height_cm"], weight_kg=labels["weight_kg"], sex=labels["sex"],
        gestational_age_weeks=labels["gestational_age_weeks"], weight_for_length_z=z,
        skin=tuple(int(v) for v in np.clip(skin, 0, 255)), girth=girth, hair_amount=float(hair_amount),
        hair_color=tuple(hair_color), eyes_open=eyes_open, diaper=diaper, hat=hat_spec, id_band=band,
        swaddle=swaddle_spec, clamp_color=tuple(clamp))


# ---------------------------------------------------------------- pose

POSE_RANGES = {  # degrees; sampled uniformly, per side where it applies
    "shoulder": (15, 110),  # upper arm angle from "along the body towards the feet", outwards
    "elbow": (20, 140),  # forearm bends back towards the midline / the head
    "arm_lift": (0, 35),  # out of the bed plane: foreshortens the arm
    "hip_abduction": (8, 50),  # thigh angle outwards from the body axis (frog legs)
    "hip_flexion": (15, 75),  # thigh raised off the mattress: foreshortened
    "shin_inward": (-5, 60),  # shins turn back towards the midline (feet together)
    "head_turn": (-40, 40),  # face turned left/right
    "head_tilt": (-12, 12),  # in-plane bend of the neck
    "trunk_bend": (-6, 6),  # in-plane curve of the trunk
}
SIDED = ("shoulder", "elbow", "arm_lift", "hip_abduction", "hip_flexion", "shin_inward")


def sample_pose(rng: np.random.Generator) -> dict:
    pose = {}
    for name, (lo, hi) in POSE_RANGES.items():
        if name in SIDED:
            base = rng.uniform(lo, hi)
            # the two sides are similar but not mirror images
            pose[name] = [float(np.clip(base + rng.normal(0, (hi - lo) * 0.15), lo, hi)) for _ in range(2)]
        else:
            pose[name] = float(rng.uniform(lo, hi))
    for side in range(2):  # a hand cannot bend back further than the arm allows
        pose["elbow"][side] = min(pose["elbow"][side], pose["shoulder"][side] + 70)
    return pose


def sample_motion(rng: np.random.Generator) -> dict:
    """Limb motion for videos: each joint oscillates; some babies sleep, some kick."""
    activity = float(rng.choice([0.15, 0.5, 1.0], p=[0.4, 0.35, 0.25]))
    motion = {"activity": activity, "breath_hz": float(rng.uniform(0.7, 1.0)), "joints": {}}
    for name, (lo, hi) in POSE_RANGES.items():
        n = 2 if name in SIDED else 1
        motion["joints"][name] = [
            {"amp": float(activity * (hi - lo) * rng.uniform(0.05, 0.18)), "hz": float(rng.uniform(0.2, 1.0)),
             "phase": float(rng.uniform(0, 2 * math.pi))} for _ in range(n)]
    return motion


def pose_at(pose: dict, motion: dict | None, t: float) -> dict:
    if motion is None:
        return pose
    out = {}
    for name, value in pose.items():
        waves = motion["joints"][name]
        lo, hi = POSE_RANGES[name]
        if isinstance(value, list):
            out[name] = [float(np.clip(v + w["amp"] * math.sin(2 * math.pi * w["hz"] * t + w["phase"]), lo, hi))
                         for v, w in zip(value, waves)]
        else:
            w = waves[0]
            out[name] = float(np.clip(value + w["amp"] * math.sin(2 * math.pi * w["hz"] * t + w["phase"]), lo, hi))
    return out


# ---------------------------------------------------------------- geometry helpers

def ellipse(center, ax: float, ay: float, angle: float = 0.0, n: int = 40, a0: float = 0, a1: float = 2 * math.pi):
    t = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * math.pi - 1e-6)
    pts = np.stack([ax * np.cos(t), ay * np.sin(t)], 1)
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]]) + np.asarray(center, float)


def capsule(p0, p1, r0: float, r1: float, n: int = 10) -> np.ndarray:
    """Tapered capsule from p0 (radius r0) to p1 (radius r1)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    a = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    t1 = np.linspace(a - math.pi / 2, a + math.pi / 2, n)
    t0 = np.linspace(a + math.pi / 2, a + 3 * math.pi / 2, n)
    return np.concatenate([p1 + r1 * np.stack([np.cos(t1), np.sin(t1)], 1),
                           p0 + r0 * np.stack([np.cos(t0), np.sin(t0)], 1)])


def _unit(angle_rad: float) -> np.ndarray:
    return np.array([math.sin(angle_rad), math.cos(angle_rad)])  # 0 rad = towards the feet (+y)


def _shade(color, k: float) -> tuple:
    return tuple(int(np.clip(c * k, 0, 255)) for c in color)


def _mix(a, b, t: float) -> tuple:
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))


def _across(p0, p1, at: float, half: float, bulge: float = 0.0, n: int = 7) -> np.ndarray:
    """A short line across segment p0->p1 at fraction `at` (a skin crease)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = (p1 - p0) / (np.linalg.norm(p1 - p0) + 1e-9)
    nrm = np.array([-d[1], d[0]])
    c = p0 + at * (p1 - p0)
    s = np.linspace(-1, 1, n)
    return c + np.outer(s * half, nrm) + np.outer(bulge * (1 - s**2), d)


# ---------------------------------------------------------------- the body

@dataclass
class Skeleton:
    """Joint positions in body coordinates (cm; origin mid-hip, +y towards the feet)."""
    L: float
    joints: dict = field(default_factory=dict)
    radii: dict = field(default_factory=dict)


def skeleton(infant: Infant, pose: dict) -> Skeleton:
    L, g = infant.height_cm, infant.girth
    sk = Skeleton(L)
    j, r = sk.joints, sk.radii
    bend = math.radians(pose["trunk_bend"])
    j["hip"] = np.array([0.0, 0.0])
    j["chin"] = np.array([math.sin(bend) * 0.42 * L, -math.cos(bend) * 0.42 * L])
    tilt = math.radians(pose["head_tilt"]) + bend
    j["head_c"] = j["chin"] + 0.125 * L * np.array([math.sin(tilt), -math.cos(tilt)])
    j["head_angle"] = tilt
    for side, s in (("right", 1.0), ("left", -1.0)):
        i = 0 if side == "right" else 1
        sh = j["chin"] * 0.88 + np.array([s * 0.098 * L, 0.0])
        th = math.radians(pose["shoulder"][i])
        lift = math.cos(math.radians(pose["arm_lift"][i]))
        elbow = sh + 0.135 * L * lift * np.array([s * math.sin(th), math.cos(th)])
        fa = th - math.radians(pose["elbow"][i])
        wrist = elbow + 0.1 * L * lift * np.array([s * math.sin(fa), math.cos(fa)])
        j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"] = sh, elbow, wrist
        j[f"{side}_fist_dir"] = np.array([s * math.sin(fa), math.cos(fa)])
        hip = np.array([s * 0.056 * L, 0.0])
        ab, fl = math.radians(pose["hip_abduction"][i]), math.radians(pose["hip_flexion"][i])
        thigh, shin = 0.16 * L, 0.17 * L
        knee = hip + thigh * math.cos(fl) * np.array([s * math.sin(ab), math.cos(ab)])
        # The heel rests on the mattress: the shin slopes down from the raised knee.
        elev = math.asin(min(1.0, thigh * math.sin(fl) / shin))
        sa = ab - math.radians(pose["shin_inward"][i])
        heel = knee + shin * math.cos(elev) * np.array([s * math.sin(sa), math.cos(sa)])
        j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_heel"] = hip, knee, heel
        j[f"{side}_shin_dir"] = np.array([s * math.sin(sa), math.cos(sa)])
        j[f"{side}_side"] = s
    r["upper_arm"], r["forearm"] = 0.04 * L * g, 0.035 * L * g
    r["thigh"], r["shin"], r["ankle"] = 0.054 * L * g, 0.04 * L * g, 0.027 * L * g
    r["wrist"] = 0.026 * L * g
    return sk


def trunk_outline(L: float, g: float, breath: float, chin, bend: float, scale: float = 1.0) -> np.ndarray:
    """Smooth trunk outline from the neck to the crotch; the belly is the widest part."""
    # (fraction of L below the chin, half-width as fraction of L)
    prof = np.array([[0.0, 0.05], [0.02, 0.085], [0.05, 0.112], [0.1, 0.114], [0.16, 0.112],
                     [0.24, 0.118], [0.3, 0.116], [0.36, 0.104], [0.41, 0.088], [0.445, 0.06], [0.46, 0.0]])
    ys = np.linspace(0, 0.46, 48)
    hw = np.interp(ys, prof[:, 0], prof[:, 1])
    hw = np.convolve(np.pad(hw, 3, mode="edge"), np.ones(7) / 7, mode="valid")
    widen = np.where(ys > 0.08, g * (1 + breath * 0.02), 1.0 + 0.3 * (g - 1))  # girth widens the belly more
    hw = hw * widen * scale
    hw[-1] = 0.0
    along = ys * L * (0.96 + 0.04 * scale) + (1 - scale) * 0.02 * L
    # A slight in-plane curve: offset each row sideways along the bend.
    side_shift = np.sin(bend) * (along - along[-1]) * 0.3
    right = np.stack([hw * L + side_shift, along], 1)
    left = np.stack([-hw * L + side_shift, along], 1)[::-1]
    pts = np.concatenate([right, left])
    return pts + np.array([chin[0], chin[1]]) * np.array([1, 1])


def build_shapes(infant: Infant, pose: dict, breath: float = 0.0) -> list:
    """All primitives of the baby in body coordinates, back to front."""
    sk = skeleton(infant, pose)
    crease = _shade(infant.skin, 0.72)
    out: list = []
    legs = _legs(infant, sk, crease)
    arms = _arms(infant, sk, crease)
    trunk = _trunk(infant, sk, pose, breath, crease)
    # Legs under the diaper, the diaper over the hips and thighs, arms over the chest.
    out += legs + trunk + _diaper(infant, sk, pose) + arms + _head(infant, sk, pose)
    if infant.swaddle:
        out += _swaddle(infant, sk)
    if infant.id_band:
        out += _id_band(infant, sk)
    return out


def _legs(infant: Infant, sk: Skeleton, crease) -> list:
    j, r, L, skin = sk.joints, sk.radii, sk.L, infant.skin
    out = []
    for side in ("right", "left"):
        s = j[f"{side}_side"]
        hip, knee, heel = j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_heel"]
        sd = j[f"{side}_shin_dir"]
        out.append(Shape(f"{side}_shin", capsule(knee, heel, r["shin"] * 0.95, r["ankle"]), skin))
        # Foot: toes point outwards and up (foreshortened), sole towards the other foot.
        foot_dir = sd * 0.45 + np.array([s, 0.0]) * 0.9
        foot_dir /= np.linalg.norm(foot_dir)
        toe = heel + foot_dir * 0.085 * L
        out.append(Shape(f"{side}_foot", capsule(heel, toe, r["ankle"] * 1.05, r["ankle"] * 1.25), _shade(skin, 1.02)))
        nrm = np.array([-foot_dir[1], foot_dir[0]])
        for k in range(5):
            c = toe + foot_dir * r["ankle"] * 0.9 + nrm * (k - 2) * r["ankle"] * 0.42
            out.append(Shape(f"{side}_toe{k}", ellipse(c, r["ankle"] * 0.24, r["ankle"] * 0.24, 0, 12),
                             _shade(skin, 1.0 + 0.02 * k)))
        out.append(Shape(f"{side}_thigh", capsule(hip, knee, r["thigh"], r["shin"] * 1.02), skin))
        # Chubby thighs show skin folds; heavier-for-length babies show more.
        n_folds = 1 + int(infant.girth > 1.05) + int(infant.girth > 1.14)
        for k in range(n_folds):
            out.append(Stroke(f"{side}_thigh_fold{k}", _across(hip, knee, 0.45 + 0.17 * k, r["thigh"] * 0.8, 0.25),
                              crease, 0.09, 0.55))
        out.append(Stroke(f"{side}_ankle_crease", _across(knee, heel, 0.9, r["ankle"] * 0.9, -0.15), crease, 0.08, 0.6))
    return out


def _arms(infant: Infant, sk: Skeleton, crease) -> list:
    j, r, L, skin = sk.joints, sk.radii, sk.L, infant.skin
    out = []
    for side in ("right", "left"):
        sh, el, wr = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]
        d = j[f"{side}_fist_dir"]
        out.append(Shape(f"{side}_upper_arm", capsule(sh, el, r["upper_arm"], r["forearm"] * 1.05), skin))
        out.append(Shape(f"{side}_forearm", capsule(el, wr, r["forearm"], r["wrist"]), skin))
        fist_c = wr + d * 0.03 * L
        ang = math.atan2(d[0], d[1])
        out.append(Shape(f"{side}_hand", ellipse(fist_c, 0.021 * L, 0.031 * L, -ang, 24), _shade(skin, 1.03)))
        nrm = np.array([-d[1], d[0]])
        for k in range(3):  # curled fingers of a fist
            c = fist_c + d * 0.012 * L + nrm * (k - 1) * 0.012 * L
            out.append(Stroke(f"{side}_finger{k}", np.stack([c - d * 0.012 * L, c + d * 0.008 * L]), crease, 0.06, 0.5))
        thumb = wr + d * 0.025 * L - nrm * 0.017 * L * j[f"{side}_side"]
        out.append(Shape(f"{side}_thumb", ellipse(thumb, 0.008 * L, 0.014 * L, -ang + 0.4, 14), skin))
        out.append(Stroke(f"{side}_wrist_crease", _across(el, wr, 0.95, r["wrist"] * 0.9, 0.1), crease, 0.08, 0.6))
        out.append(Stroke(f"{side}_elbow_crease", _across(sh, el, 0.97, r["forearm"] * 0.7, 0.2), crease, 0.07, 0.45))
    return out


def _trunk(infant: Infant, sk: Skeleton, pose: dict, breath: float, crease) -> list:
    j, L, g, skin = sk.joints, sk.L, infant.girth, infant.skin
    bend = math.radians(pose["trunk_bend"])
    out = [Shape("trunk", trunk_outline(L, g, breath, j["chin"], bend), skin)]
    chin = j["chin"]
    for s in (1, -1):  # nipples
        out.append(Shape(f"nipple{s}", ellipse(chin + np.array([s * 0.052 * L, 0.1 * L]), 0.006 * L, 0.005 * L, 0, 12),
                         _mix(skin, (190, 100, 100), 0.35), round=False))
    # Umbilical stump with its plastic clamp, just above the diaper.
    navel = chin + np.array([0.004 * L, 0.3 * L])
    stump_end = navel + np.array([0.03 * L, 0.035 * L])
    out.append(Shape("cord_stump", capsule(navel, stump_end, 0.007 * L, 0.006 * L), (190, 170, 110)))
    c = stump_end
    out.append(Shape("cord_clamp", capsule(c - np.array([0.028 * L, -0.012 * L]), c + np.array([0.028 * L, -0.012 * L]),
                                           0.008 * L, 0.008 * L), infant.clamp_color))
    return out


def _diaper(infant: Infant, sk: Skeleton, pose: dict) -> list:
    j, r, L = sk.joints, sk.radii, sk.L
    d = infant.diaper
    st = {k: tuple(v) for k, v in d["style"].items()}
    top = -d["waist"] * L
    bend = math.radians(pose["trunk_bend"])
    outline = trunk_outline(L, infant.girth, 0.0, j["chin"], bend, scale=1.06)
    # Keep the part of the trunk outline below the waistband.
    keep = outline[outline[:, 1] >= top]
    right = keep[keep[:, 0] >= keep[:, 0].mean()]
    left = keep[keep[:, 0] < keep[:, 0].mean()]
    body = np.concatenate([right[np.argsort(right[:, 1])], left[np.argsort(-left[:, 1])]])
    parts = [body]
    cuffs = []
    for side in ("right", "left"):
        hip, knee = j[f"{side}_hip"], j[f"{side}_knee"]
        cuff = hip + d["leg"] * (knee - hip)
        parts.append(capsule(hip * 0.5, cuff, r["thigh"] * 1.08, r["thigh"] * 1.06))
        cuffs.append(Stroke(f"diaper_{side}_cuff", _across(hip, cuff, 1.0, r["thigh"] * 1.0, 0.3),
                            _shade(st["base"], 0.82), 0.12, 0.7))
    out = [Shape("diaper", union_polygon(parts), st["base"], texture="fabric")] + cuffs
    # Waistband and side tabs.
    ys = body[:, 1]
    band_y = ys.min()
    w_right, w_left = body[:, 0].max(), body[:, 0].min()
    band = np.array([[w_left, band_y], [w_right, band_y], [w_right, band_y + 0.035 * L], [w_left, band_y + 0.035 * L]])
    out.append(Shape("diaper_band", band, st["band"], round=False))
    for s, x in ((1, w_right), (-1, w_left)):
        tab = np.array([[x - s * 0.05 * L, band_y + 0.01 * L], [x, band_y + 0.005 * L], [x, band_y + 0.05 * L],
                        [x - s * 0.05 * L, band_y + 0.045 * L]])
        out.append(Shape(f"diaper_tab{s}", tab, _shade(st["band"], 0.97), round=False))
    if d["printed"]:
        rng = np.random.default_rng(int(st["print"][0]) * 7 + int(L * 10))
        for k in range(10):
            p = np.array([rng.uniform(w_left * 0.7, w_right * 0.7), rng.uniform(band_y + 0.06 * L, 0.0)])
            out.append(Shape(f"diaper_print{k}", ellipse(p, 0.008 * L, 0.008 * L, 0, 10), st["print"], round=False, alpha=0.8))
    return out


def _head(infant: Infant, sk: Skeleton, pose: dict) -> list:
    j, L, skin = sk.joints, sk.L, infant.skin
    c, ang = j["head_c"], j["head_angle"]
    ax, ay = 0.1 * L * (1 + 0.25 * (infant.girth - 1)), 0.125 * L
    turn = math.radians(pose["head_turn"])
    ca, sa = math.cos(ang), math.sin(ang)
    rot = np.array([[ca, -sa], [sa, ca]])

    def at(u, v):  # head-local (u across, v crown -1 .. chin +1) -> body coords
        return c + rot @ np.array([u * ax, v * ay])

    def pts(arr):
        arr = np.asarray(arr, float)
        return c + (arr * np.array([ax, ay])) @ rot.T

    out = []
    # Ears at the sides; the one the face turns away from shows more.
    for s in (1, -1):
        show = 0.9 + 0.12 * s * math.sin(turn)
        out.append(Shape(f"ear{s}", ellipse(at(s * show, 0.1), 0.022 * L, 0.036 * L, -ang, 20), _shade(skin, 0.95)))
    out.append(Shape("head", ellipse(c, ax, ay, -ang, 56), skin))
    u_off, u_k = 0.55 * math.sin(turn), math.cos(turn)
    fu = lambda u: u * u_k + u_off  # noqa: E731  face feature shift for a turned head
    if infant.hair_amount > 0.15 and not infant.hat:
        t = np.linspace(math.pi * 1.05, math.pi * 1.95, 30)
        hairline = 0.05 - 0.5 * infant.hair_amount * 0.3
        cap = np.concatenate([np.stack([0.97 * np.cos(t), 0.97 * np.sin(t)], 1),
                              np.stack([np.linspace(0.8, -0.8, 12), hairline - 0.25 * (1 - np.linspace(-1, 1, 12) ** 2)], 1)])
        out.append(Shape("hair", pts(cap), infant.hair_color, round=False, alpha=0.35 + 0.5 * infant.hair_amount,
                         texture="hair"))
    dark = _shade(skin, 0.55)
    for s in (1, -1):
        u = fu(s * 0.36)
        if infant.eyes_open:
            out.append(Shape(f"eye{s}", pts(ellipse((u, 0.2), 0.11, 0.05, 0, 16)), (40, 32, 30), round=False))
        else:
            arc = np.stack([np.linspace(u - 0.13, u + 0.13, 9), 0.2 + 0.035 * (1 - np.linspace(-1, 1, 9) ** 2)], 1)
            out.append(Stroke(f"eye{s}", pts(arc), dark, 0.11, 0.9))
        brow = np.stack([np.linspace(u - 0.14, u + 0.14, 7), 0.06 - 0.03 * (1 - np.linspace(-1, 1, 7) ** 2)], 1)
        out.append(Stroke(f"brow{s}", pts(brow), _shade(skin, 0.8), 0.1, 0.35))
        out.append(Shape(f"cheek{s}", pts(ellipse((fu(s * 0.5), 0.5), 0.2, 0.15, 0, 16)), _mix(skin, (225, 120, 120), 0.35),
                         round=False, alpha=0.35))
    out.append(Shape("nose", pts(ellipse((fu(0), 0.45), 0.09, 0.07, 0, 16)), _shade(skin, 1.04)))
    for s in (1, -1):
        out.append(Shape(f"nostril{s}", pts(ellipse((fu(s * 0.04), 0.5), 0.022, 0.015, 0, 8)), dark, round=False, alpha=0.7))
    mouth = np.stack([np.linspace(fu(-0.12), fu(0.12), 9), 0.7 + 0.03 * (1 - np.linspace(-1, 1, 9) ** 2)], 1)
    out.append(Stroke("mouth", pts(mouth), _mix(skin, (150, 60, 60), 0.5), 0.13, 0.85))
    chin_fold = np.stack([np.linspace(-0.45, 0.45, 11), 0.93 + 0.04 * (1 - np.linspace(-1, 1, 11) ** 2)], 1)
    out.append(Stroke("chin_fold", pts(chin_fold), _shade(skin, 0.75), 0.1, 0.5))
    if infant.hat:
        st = {k: tuple(v) for k, v in infant.hat["style"].items()}
        edge = -1 + 2 * infant.hat["depth"] * 0.9
        t = np.linspace(-math.pi / 2 - math.acos(np.clip(edge, -1, 1)) + 0.0, -math.pi / 2 + math.acos(np.clip(-edge, -1, 1)), 2)
        t = np.linspace(math.pi + math.asin(np.clip(-edge, -1, 1)) * -1, 2 * math.pi - math.asin(np.clip(-edge, -1, 1)) * -1, 36)
        arc = np.stack([1.05 * np.cos(t), 1.05 * np.sin(t) - 0.02], 1)
        cap = np.concatenate([arc, [[arc[-1, 0], edge + 0.05], [arc[0, 0], edge + 0.05]]])
        out.append(Shape("hat", pts(cap), st["base"], texture="knit"))
        brim = np.array([[arc[0, 0] * 1.0, edge - 0.16], [arc[-1, 0], edge - 0.16], [arc[-1, 0], edge + 0.06],
                         [arc[0, 0], edge + 0.06]])
        out.append(Shape("hat_brim", pts(brim), _shade(st["base"], 0.96), texture="knit"))
        if st["stripe"] != st["base"]:
            for k, v in enumerate((edge - 0.35, edge - 0.6)):
                half = math.sqrt(max(0.0, 1 - (v + 0.02) ** 2)) * 1.03
                band = np.array([[-half, v - 0.06], [half, v - 0.06], [half, v + 0.06], [-half, v + 0.06]])
                out.append(Shape(f"hat_stripe{k}", pts(band), st["stripe"], round=False, alpha=0.9))
    return out


def _swaddle(infant: Infant, sk: Skeleton) -> list:
    """A blanket wrapped over the lower body: the legs disappear into it."""
    j, L = sk.joints, sk.L
    pts = [j["right_hip"], j["left_hip"], j["right_knee"], j["left_knee"], j["right_heel"], j["left_heel"],
           j["chin"] * 0.45]
    pts = np.array(pts)
    hull = _convex_hull(np.concatenate([ellipse(p, 0.07 * L, 0.07 * L, 0, 16) for p in pts]))
    color = tuple(infant.swaddle["color"])
    out = [Shape("swaddle", hull, color, texture="fabric")]
    y0 = hull[:, 1].min()
    for k, col in enumerate(((236, 150, 170), (120, 170, 225))):
        y = y0 + (0.06 + 0.04 * k) * L
        row = hull[np.abs(hull[:, 1] - y) < 0.2 * L]
        if len(row):
            x0, x1 = row[:, 0].min(), row[:, 0].max()
            out.append(Stroke(f"swaddle_stripe{k}", np.array([[x0 * 0.9, y], [x1 * 0.9, y]]), col, 0.012 * L, 0.9))
    return out


def _id_band(infant: Infant, sk: Skeleton) -> list:
    j, r, L = sk.joints, sk.radii, sk.L
    limb = infant.id_band["limb"]
    side = limb.split("_")[0]
    if limb.endswith("wrist"):
        a, b, rad = j[f"{side}_elbow"], j[f"{side}_wrist"], r["wrist"]
    else:
        a, b, rad = j[f"{side}_knee"], j[f"{side}_heel"], r["ankle"]
    p0, p1 = np.asarray(a), np.asarray(b)
    d = (p1 - p0) / (np.linalg.norm(p1 - p0) + 1e-9)
    nrm = np.array([-d[1], d[0]])
    c = p0 + 0.78 * (p1 - p0)
    w, h = rad * 1.25, 0.012 * L
    band = np.array([c - nrm * w - d * h, c + nrm * w - d * h, c + nrm * w + d * h, c - nrm * w + d * h])
    label = np.array([c - nrm * w * 0.5 - d * h * 0.7, c + nrm * w * 0.5 - d * h * 0.7,
                      c + nrm * w * 0.5 + d * h * 0.7, c - nrm * w * 0.5 + d * h * 0.7])
    color = tuple(infant.id_band["color"])
    return [Shape("id_band", band, color), Shape("id_label", label, (252, 252, 250), round=False)]


def union_polygon(polys: list, res: float = 5.0) -> np.ndarray:
    """Outline of the union of polygons (cm), via a small raster: one smooth outline to shade."""
    import cv2
    allp = np.concatenate(polys)
    lo = allp.min(0) - 1.0
    size = np.ceil((allp.max(0) + 1.0 - lo) * res).astype(int) + 1
    canvas = np.zeros((size[1], size[0]), np.uint8)
    for p in polys:
        cv2.fillPoly(canvas, [np.round((p - lo) * res * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    contours, _ = cv2.findContours(canvas, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    k = 5  # smooth the pixel staircase
    c = np.stack([np.convolve(np.pad(c[:, i], k, mode="wrap"), np.ones(2 * k + 1) / (2 * k + 1), "valid")
                  for i in range(2)], 1)
    return c[::2] / res + lo


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def to_bed(shapes: list, yaw_deg: float, center_xy) -> list:
    """Place the body on the bed: rotate by yaw and move the mid-trunk to center_xy."""
    a = math.radians(yaw_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    off = np.asarray(center_xy, float)
    placed = []
    for s in shapes:
        if isinstance(s, Shape):
            placed.append(Shape(s.name, s.poly @ rot.T + off, s.color, s.round, s.in_mask, s.alpha, s.texture))
        else:
            placed.append(Stroke(s.name, s.pts @ rot.T + off, s.color, s.width_cm, s.alpha))
    return placed


def body_axis_points(infant: Infant, pose: dict) -> tuple[np.ndarray, np.ndarray]:
    """Crown and mid-heel in body coordinates (for framing and the visible-extent figure)."""
    sk = skeleton(infant, pose)
    j = sk.joints
    crown = j["head_c"] + 0.125 * infant.height_cm * np.array([math.sin(j["head_angle"]), -math.cos(j["head_angle"])])
    heels = (j["right_heel"] + j["left_heel"]) / 2
    return crown, heels


MID_TRUNK_FRACTION = 0.2  # mid-trunk sits 0.2 L above the hip joint: the body's placement origin
