"""A pinhole phone camera above the bed plane, and the homography it induces.

World: the bed plane is z = 0 (units cm), z points up towards the camera. Camera frame: x right,
y down, z along the optical axis. The field of view is given for the image's long side (phones
quote 65-75 degrees). The camera sits `height_cm` above the bed, its optical axis tilted
`tilt_deg` away from the nadir towards azimuth `tilt_azimuth_deg`, rolled `roll_deg` about the
optical axis, and aimed at bed point `target_xy`. Because every bed point maps through one
homography, perspective is exact: scale in pixels per cm changes across a tilted image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

PHONE_RESOLUTION = (1080, 1920)  # short, long side of the phone's video frame


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float64)


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


@dataclass
class Camera:
    width: int
    height: int
    fov_deg: float = 70.0  # across the long side
    height_cm: float = 50.0
    tilt_deg: float = 0.0
    tilt_azimuth_deg: float = 0.0
    roll_deg: float = 0.0
    target_x: float = 0.0
    target_y: float = 0.0

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @property
    def focal_px(self) -> float:
        return 0.5 * max(self.width, self.height) / math.tan(math.radians(self.fov_deg) / 2)

    def intrinsics(self) -> np.ndarray:
        f = self.focal_px
        return np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1]], dtype=np.float64)

    def axes_in_world(self) -> np.ndarray:
        """Columns: the camera's x, y, z axes in world coordinates."""
        nadir = np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=np.float64)
        return (_rot_z(math.radians(self.tilt_azimuth_deg)) @ _rot_x(math.radians(self.tilt_deg))
                @ nadir @ _rot_z(math.radians(self.roll_deg)))

    def center_in_world(self) -> np.ndarray:
        axes = self.axes_in_world()
        along = self.height_cm / max(1e-9, -axes[2, 2])  # distance to the target along the axis
        return np.array([self.target_x, self.target_y, 0.0]) - along * axes[:, 2]

    def homography(self) -> np.ndarray:
        """3x3 H: bed point (x, y, 1) in cm -> image pixel (homogeneous)."""
        rot = self.axes_in_world().T  # world -> camera
        t = -rot @ self.center_in_world()
        h = self.intrinsics() @ np.column_stack([rot[:, 0], rot[:, 1], t])
        return h / h[2, 2]

    def px_per_cm_at(self, x: float, y: float) -> float:
        """Local image scale at a bed point (square root of the Jacobian's determinant)."""
        jac = homography_jacobian(self.homography(), x, y)
        return float(math.sqrt(abs(np.linalg.det(jac))))


def project(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bed points (N, 2) in cm -> image points (N, 2) in pixels."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    hom = pts @ h[:, :2].T + h[:, 2]
    return hom[:, :2] / hom[:, 2:3]


def homography_jacobian(h: np.ndarray, x: float, y: float) -> np.ndarray:
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w
    v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w
    return np.array([[(h[0, 0] - u * h[2, 0]) / w, (h[0, 1] - u * h[2, 1]) / w],
                     [(h[1, 0] - v * h[2, 0]) / w, (h[1, 1] - v * h[2, 1]) / w]])


def image_size(long_side: int, orientation: str) -> tuple[int, int]:
    """(width, height) with the phone's 9:16 aspect, both even (video codecs need it)."""
    short = int(round(long_side * PHONE_RESOLUTION[0] / PHONE_RESOLUTION[1] / 2) * 2)
    long_side = int(round(long_side / 2) * 2)
    return (short, long_side) if orientation == "portrait" else (long_side, short)
