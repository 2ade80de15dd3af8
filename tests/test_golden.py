"""The golden vectors every shell tests against must be what the current Python computes:
regenerating them into a temporary folder must give the committed files. When this fails, the
preprocessing, the gates or the aggregation changed: run `make golden` and commit the result,
so the web, Android and iOS tests check the new behaviour."""

import json
from pathlib import Path

import numpy as np
import pytest

from neometer.golden import GOLDEN_DIR, write_golden

COMMITTED = json.loads((GOLDEN_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("golden")
    return out, write_golden(out, cards=[])


def _tensor(root: Path, entry: dict) -> np.ndarray:
    return np.fromfile(root / entry["file"], dtype=np.dtype(entry["dtype"]).newbyteorder("<")).reshape(entry["shape"])


def test_preprocessing_parameters_and_thresholds_are_current(fresh):
    _, manifest = fresh
    assert COMMITTED["preprocessing"] == manifest["preprocessing"], "run `make golden`: preprocessing changed"
    assert COMMITTED["preprocessing_fingerprint"] == manifest["preprocessing_fingerprint"]
    assert COMMITTED["quality"] == manifest["quality"], "run `make golden`: quality thresholds changed"


def test_every_golden_tensor_matches_a_fresh_computation(fresh):
    root, manifest = fresh
    committed = {e["name"]: e for e in COMMITTED["images"]}
    assert sorted(committed) == sorted(e["name"] for e in manifest["images"])
    for entry in manifest["images"]:
        old = committed[entry["name"]]
        for key in ("source_rgb_u8", "letterboxed_u8", "input_nchw_f32", "mask_letterboxed_f32"):
            if key not in entry:
                assert key not in old
                continue
            np.testing.assert_array_equal(_tensor(GOLDEN_DIR, old[key]), _tensor(root, entry[key]),
                                          err_msg=f"{entry['name']} {key} is stale: run `make golden`")
        assert old["letterbox"] == entry["letterbox"]


def test_gate_and_aggregation_cases_match(fresh):
    _, manifest = fresh
    assert [g["expected"] for g in COMMITTED["gates"]] == [g["expected"] for g in manifest["gates"]]
    assert [a["expected"] for a in COMMITTED["aggregation"]] == [a["expected"] for a in manifest["aggregation"]]


def test_artifact_outputs_are_what_the_artifacts_compute():
    """Each artifact's recorded outputs are reproduced by running it now (LiteRT on the host)."""
    from neometer.runtime import load_runner

    root = GOLDEN_DIR.parents[1]
    assert COMMITTED["artifacts"], "no artifact outputs in the golden vectors: export the demo model, then `make golden`"
    for art in COMMITTED["artifacts"]:
        runner = load_runner(root / art["path"], threads=1)
        for entry in COMMITTED["images"]:
            expected = np.asarray(entry["outputs"][art["card"]])
            got = np.asarray(runner.predict(_tensor(GOLDEN_DIR, entry["input_nchw_f32"])), np.float64).reshape(-1)
            np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=f"{art['card']} on {entry['name']}")
