"""Contact sheet of synthetic frames with their labels, for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from neometer.synth import render


def contact_sheet(seed: int = 0, long_side: int = 480, cols: int = 4, rows: int = 3, rates: dict | None = None,
                  overrides: list[dict] | None = None) -> np.ndarray:
    cell = long_side
    sheet = np.full((rows * (cell + 8) + 8, cols * (cell + 8) + 8, 3), 30, np.uint8)
    for k in range(rows * cols):
        ov = dict(overrides[k]) if overrides and k < len(overrides) else {}
        if rates:
            ov["rates"] = rates
        rgb, mask, lab = render.sample_frame((seed, k), **_size(long_side, k), **ov)
        h, w = rgb.shape[:2]
        tile = np.full((cell, cell, 3), 30, np.uint8)
        y0, x0 = (cell - h) // 2, (cell - w) // 2
        tile[y0:y0 + h, x0:x0 + w] = rgb
        contour, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(tile[y0:y0 + h, x0:x0 + w], contour, -1, (60, 255, 60), 1, cv2.LINE_AA)
        text = f"{lab['height_cm']:.1f} cm  {lab['weight_kg']:.2f} kg  tilt {lab['tilt_deg']:.0f}"
        tags = ",".join(lab["tags"]) or "-"
        for j, line in enumerate((text, tags)):
            org = (x0 + 6, y0 + 18 + 18 * j)
            cv2.putText(tile, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tile, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(k, cols)
        sheet[8 + r * (cell + 8):8 + r * (cell + 8) + cell, 8 + c * (cell + 8):8 + c * (cell + 8) + cell] = tile
    return sheet


def _size(long_side: int, k: int) -> dict:
    from neometer.synth.camera import image_size

    w, h = image_size(long_side, "portrait" if k % 3 != 1 else "landscape")
    return {"width": w, "height": h}


def write_preview(path, seed: int = 0, long_side: int = 480, rates: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(seed, long_side, rates=rates)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    os.replace(tmp, path)
    return path
