"""The Android and iOS shells read the golden vectors and model cards by path; this checks, on a
machine without Xcode or the Android SDK, that everything they read exists and validates, so the
Python and Swift/Java sides cannot drift apart silently."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
CARDS = ROOT / "android" / "core" / "src" / "test" / "resources" / "cards"
SWIFT_TESTS = ROOT / "ios" / "Tests" / "NeometerKitTests"
SWIFT_SOURCES = ROOT / "ios" / "Sources" / "NeometerKit"
JAVA_TESTS = ROOT / "android" / "core" / "src" / "test" / "java"
ARTIFACT_CARD = re.compile(r".+\.(tflite|pte|mlpackage|mlmodel|onnx|safetensors|pt)\.json$")
FAILURE_KEYS = ("no_body", "body_out_of_frame", "camera_tilted", "mask_uncertain", "too_few_good_frames")


def _schema(name: str) -> dict:
    return json.loads((ROOT / "schemas" / name).read_text())


@pytest.fixture(scope="module")
def manifest() -> dict:
    path = GOLDEN / "manifest.json"
    if not path.exists():
        from neometer.golden import write_golden
        write_golden(GOLDEN)
    return json.loads(path.read_text())


def _cards() -> list[Path]:
    cards = sorted(CARDS.glob("*.json"))
    cards += sorted(p for p in ROOT.glob("models/*/export/*.json") if ARTIFACT_CARD.match(p.name))
    return cards


@pytest.mark.parametrize("card_path", _cards(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_card_the_shells_read_validates(card_path: Path) -> None:
    card = json.loads(card_path.read_text())
    jsonschema.validate(card, _schema("model_card.schema.json"))
    assert card_path.name == card["artifact"]["file"] + ".json", "a card is named after its artifact"


def test_fixture_cards_cover_the_formats_and_use_the_current_preprocessing(manifest: dict) -> None:
    from neometer.data.preprocess import PreprocessSpec
    from neometer.measure.gates import QualityThresholds

    cards = [json.loads(p.read_text()) for p in sorted(CARDS.glob("*.json"))]
    assert {c["format"] for c in cards} >= {"tflite", "executorch", "coreml", "onnx", "pytorch"}
    assert {c["input"]["layout"] for c in cards} == {"NCHW", "NHWC"}
    for c in cards:
        pre = dict(PreprocessSpec().to_dict())
        if c["role"] == "segmenter":
            pre["background_removal"] = c["preprocessing"]["background_removal"]
        assert c["preprocessing"] == pre, f"{c['name']}: fixture preprocessing is stale; regenerate the fixture cards"
        if "quality" in c:
            assert c["quality"] == QualityThresholds().to_dict()
    assert manifest["preprocessing"] == PreprocessSpec().to_dict()


def test_golden_tensor_files_exist_with_their_declared_size(manifest: dict) -> None:
    tensors = []
    for img in manifest["images"]:
        tensors += [img[k] for k in ("source_rgb_u8", "letterboxed_u8", "input_nchw_f32", "mask_letterboxed_f32") if img.get(k)]
        assert (GOLDEN / img["image"]).exists()
        if img["mask"]:
            assert (GOLDEN / img["mask"]).exists() and "mask_letterboxed_f32" in img
    tensors += [g["mask"] for g in manifest["gates"]]
    for t in tensors:
        f = GOLDEN / t["file"]
        assert f.exists(), f
        assert f.stat().st_size == int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize, f
    for a in manifest["artifacts"]:
        assert (ROOT / a["path"]).exists(), a
        assert all(a["card"] in img["outputs"] for img in manifest["images"])


def test_golden_images_cover_gray_alpha_portrait_landscape_and_masks(manifest: dict) -> None:
    imgs = manifest["images"]
    assert any(i["channels"] == 1 for i in imgs) and any(i["channels"] == 4 for i in imgs)
    assert any(i["src_h"] > i["src_w"] for i in imgs) and any(i["src_w"] > i["src_h"] for i in imgs)
    assert any(i["mask"] for i in imgs)
    gate_failures = {f for g in manifest["gates"] for f in g["expected"]["failures"]}
    assert gate_failures >= set(FAILURE_KEYS[:4])


def _swift_coding_keys(text: str) -> set[str]:
    keys = set(re.findall(r'case \w+ = "([a-z0-9_]+)"', text))
    for block in re.findall(r"enum CodingKeys: String, CodingKey \{(.*?)\n\s*\}", text, re.S):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("case ") and "=" not in line:
                keys |= {k.strip() for k in line[5:].split(",")}
    return keys


def _all_keys(node) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _all_keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _all_keys(v)}
    return set()


def test_every_manifest_key_the_swift_tests_decode_is_in_the_manifest(manifest: dict) -> None:
    keys = _swift_coding_keys((SWIFT_TESTS / "GoldenSupport.swift").read_text())
    keys |= _swift_coding_keys((SWIFT_SOURCES / "Measure.swift").read_text())  # Measurement, read from expected
    keys |= {"preprocessing", "quality"}
    assert {"src_w", "source_rgb_u8", "letterboxed_u8", "input_nchw_f32", "tilt_deg", "body_fraction"} <= keys
    missing = keys - _all_keys(manifest)
    assert not missing, f"the Swift tests decode keys the golden manifest lacks: {sorted(missing)}"


def test_every_card_key_swift_decodes_is_in_the_schema() -> None:
    schema = _schema("model_card.schema.json")
    keys = _swift_coding_keys((SWIFT_SOURCES / "ModelCard.swift").read_text())
    from neometer.measure.gates import QualityThresholds

    known = _all_keys(schema)  # property names appear as keys of "properties" objects
    known |= set(QualityThresholds().to_dict())  # the schema leaves "quality" open: Python defines it
    missing = keys - known
    assert not missing, f"ModelCard.swift decodes keys the model-card schema does not define: {sorted(missing)}"


def test_paths_the_swift_and_java_tests_read_exist() -> None:
    pattern = re.compile(r'"(?:\.\./)*((?:tests|schemas|android|ios)/[\w./-]+)"')
    referenced = set()
    for src in list(SWIFT_TESTS.glob("*.swift")) + list(JAVA_TESTS.rglob("*.java")):
        referenced |= set(pattern.findall(src.read_text()))
    assert {"tests/golden", "tests/golden/manifest.json", "android/core/src/test/resources/cards"} <= referenced
    missing = sorted(p for p in referenced if not (ROOT / p).exists())
    assert not missing, f"the shell tests read files that do not exist: {missing}"


def test_every_message_key_has_strings_in_both_apps() -> None:
    from neometer.measure import gates

    keys = {gates.NO_BODY, gates.OUT_OF_FRAME, gates.TILTED, gates.MASK_UNCERTAIN, gates.TOO_FEW_FRAMES}
    assert keys == set(FAILURE_KEYS)
    for strings in (ROOT / "android/app/src/main/res/values/strings.xml", ROOT / "android/app/src/main/res/values-zh/strings.xml"):
        names = set(re.findall(r'<string name="msg_([a-z_]+)"', strings.read_text()))
        assert keys <= names, f"{strings.relative_to(ROOT)} lacks {sorted(keys - names)}"
    for strings in sorted((ROOT / "ios/App/NeometerApp").glob("*.lproj/Localizable.strings")):
        names = set(re.findall(r'^"msg\.([a-z_]+)"', strings.read_text(), re.M))
        assert keys <= names, f"{strings.relative_to(ROOT)} lacks {sorted(keys - names)}"


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac is not installed (make setup installs it)")
def test_java_bench_result_validates_against_the_shared_schema(tmp_path: Path) -> None:
    sources = sorted(str(p) for p in (ROOT / "android/core/src/main/java").rglob("*.java"))
    subprocess.run(["javac", "--release", "17", "-d", str(tmp_path), *sources], check=True, capture_output=True)
    card = CARDS / "regressor_fp32.tflite.json"
    out = subprocess.run(["java", "-cp", str(tmp_path), "org.neometer.core.Main", "bench-json", str(card), "3.5", "4", "12"],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    jsonschema.validate(result, _schema("bench_result.schema.json"))
    assert result["latency"]["p50_ms"] == 4.0 and result["model"]["format"] == "tflite"
    bad = subprocess.run(["java", "-cp", str(tmp_path), "org.neometer.core.Main", "check-card", str(ROOT / "schemas/bench_result.schema.json")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "missing" in bad.stderr
