"""Ground-truth labels of a synthetic newborn.

Length ~ N(49.5, 1.9) cm clipped to [44, 56] (term newborns; WHO birth medians 49.9 cm boys,
49.1 cm girls). Weight = 0.166 * L - 4.9 + residual, with the residual's SD chosen so that the
weight SD is 0.45 kg and corr(L, W) = 0.166 * 1.9 / 0.45 = 0.70 - close to the paper's fitted
W = 0.168 * H - 5.16. The residual (weight-for-length z) is what the body's girth shows, so an
image carries information about weight beyond length.
"""

from __future__ import annotations

import math

import numpy as np

LENGTH_MEAN_CM = 49.5
LENGTH_SD_CM = 1.9
LENGTH_RANGE_CM = (44.0, 56.0)
WEIGHT_SLOPE = 0.166  # kg per cm
WEIGHT_INTERCEPT = -4.9  # kg
WEIGHT_SD_KG = 0.45
WEIGHT_RESIDUAL_SD_KG = math.sqrt(WEIGHT_SD_KG**2 - (WEIGHT_SLOPE * LENGTH_SD_CM) ** 2)
WEIGHT_RANGE_KG = (1.9, 5.2)
# WHO child growth standards, birth medians: boys 49.9 cm, girls 49.1 cm -> +-0.4 cm around the
# mean; the weight difference (3.35 vs 3.23 kg) follows from the length difference via the slope.
SEX_LENGTH_SHIFT_CM = {"M": 0.4, "F": -0.4}
SEXES = ("M", "F")


def expected_weight_kg(height_cm: float) -> float:
    return WEIGHT_SLOPE * height_cm + WEIGHT_INTERCEPT


def sample_labels(rng: np.random.Generator, height_cm: float | None = None, weight_kg: float | None = None,
                  sex: str | None = None) -> dict:
    """One newborn's labels. Every random draw happens whether or not it is overridden, so an
    override changes only the overridden value and leaves the rest of the stream as it was."""
    draw_sex, z_len, z_res, z_ga = rng.integers(0, 2), rng.standard_normal(), rng.standard_normal(), rng.standard_normal()
    sex = sex if sex is not None else SEXES[int(draw_sex)]
    within_sex_sd = math.sqrt(LENGTH_SD_CM**2 - 0.4**2)
    if height_cm is None:
        height_cm = LENGTH_MEAN_CM + SEX_LENGTH_SHIFT_CM.get(sex, 0.0) + within_sex_sd * z_len
        height_cm = float(np.clip(height_cm, *LENGTH_RANGE_CM))
    if weight_kg is None:
        weight_kg = expected_weight_kg(height_cm) + WEIGHT_RESIDUAL_SD_KG * z_res
        weight_kg = float(np.clip(weight_kg, *WEIGHT_RANGE_KG))
    # Longer babies tend to be born later; term range with a few late-preterm / post-term.
    ga = float(np.clip(39.3 + 0.5 * (height_cm - LENGTH_MEAN_CM) / LENGTH_SD_CM + 1.0 * z_ga, 35.0, 42.0))
    return {
        "height_cm": round(float(height_cm), 2),
        "weight_kg": round(float(weight_kg), 3),
        "sex": sex,
        "gestational_age_weeks": round(ga, 1),
        "weight_for_length_z": round(weight_for_length_z(height_cm, weight_kg), 3),
    }


def weight_for_length_z(height_cm: float, weight_kg: float) -> float:
    """How heavy the baby is for its length, in residual SDs: drives girth in the body model."""
    return float((weight_kg - expected_weight_kg(height_cm)) / WEIGHT_RESIDUAL_SD_KG)
