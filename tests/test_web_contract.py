"""The web app's side of the contracts, checked from Python (no browser needed): every quality
gate the Python reference can raise has a message in both languages, and the web sources do not
copy the preprocessing constants (they read them from the model card at run time)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from neometer.data.preprocess import PreprocessSpec
from neometer.measure import gates

WEB = Path(__file__).resolve().parents[1] / "web"
GATE_KEYS = [gates.NO_BODY, gates.OUT_OF_FRAME, gates.TILTED, gates.MASK_UNCERTAIN, gates.TOO_FEW_FRAMES]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_gate_has_a_message(lang):
    strings = json.loads((WEB / "public" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    missing = [k for k in GATE_KEYS if not strings.get(k, "").strip()]
    assert not missing, f"{lang}.json lacks messages for {missing}"


def test_languages_have_the_same_keys():
    en = json.loads((WEB / "public" / "i18n" / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((WEB / "public" / "i18n" / "zh-CN.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh)


def test_js_mirrors_the_gate_keys():
    gates_js = (WEB / "src" / "gates.js").read_text()
    for key in GATE_KEYS:
        assert f"'{key}'" in gates_js, f"web/src/gates.js does not know the gate {key}"


def test_web_sources_read_preprocessing_from_the_card():
    spec = PreprocessSpec()
    constants = [str(v) for v in (*spec.mean, *spec.std)]
    for path in sorted((WEB / "src").glob("*.js")):
        text = path.read_text()
        found = [c for c in constants if re.search(rf"(?<![\d.]){re.escape(c)}(?!\d)", text)]
        assert not found, f"{path.name} copies preprocessing constants {found}: read them from the model card"
