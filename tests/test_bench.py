"""The benchmark harness: parity metrics and verdicts, the planted-defect check (a perturbed
artifact must fail with its layer named), the shared result schema, the latency loop's run
count and thread count, and the phone/browser command construction with fake tools on PATH."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from neometer.bench import devices, parity
from neometer.bench.latency import time_runs
from neometer.bench.results import Row, result_json, validate_result, write_results
from neometer.bench.sysinfo import parse_cpuinfo
from neometer.errors import NeometerError


OUTPUTS = [{"name": "height_cm", "unit": "cm", "index": 0}, {"name": "weight_kg", "unit": "kg", "index": 1}]
RUN = {"id": "test-run", "date": "2025-01-01T00:00:00+00:00", "git_commit": None, "git_dirty": None}
DEVICE = {"kind": "host", "model": "test", "os": "Linux", "cpu": "cpu", "cpu_flags": ["avx2"], "cores": 2, "accelerator": None}


# --- parity metrics -------------------------------------------------------------------------

def test_raw_parity_reports_max_mean_and_snr_per_unit():
    ref = np.array([[50.0, 3.0], [48.0, 2.5], [52.0, 3.5]], np.float32)
    pred = ref + np.array([[0.02, 0.0], [-0.01, 0.004], [0.0, 0.0]], np.float32)
    raw = parity.raw_parity(ref, pred, OUTPUTS)
    assert raw["n"] == 3
    assert raw["max_abs_cm"] == pytest.approx(0.02, abs=1e-5)
    assert raw["mean_abs_cm"] == pytest.approx(0.01, abs=1e-5)
    assert raw["max_abs_kg"] == pytest.approx(0.004, abs=1e-5)
    assert 60 < raw["snr_db"] < 90
    assert parity.raw_parity(ref, ref.copy(), OUTPUTS)["snr_db"] is None  # identical: infinite SNR


def test_verdicts_follow_the_default_thresholds_per_precision():
    t = parity.Thresholds()
    ref = np.array([[50.0, 3.0], [48.0, 2.5]], np.float32)
    labels = np.array([[50.5, 3.1], [48.5, 2.4]], np.float32)  # both taller than predicted: MAE 0.5 cm
    off = ref + np.array([[0.02, 0.0], [0.0, 0.0]], np.float32)  # 0.02 cm: fails fp32, passes fp16
    assert parity.parity_block("fp32", ref, off, labels, OUTPUTS, t)["passed"] is False
    assert parity.parity_block("fp16", ref, off, labels, OUTPUTS, t)["passed"] is True
    kg_off = ref + np.array([[0.0, 0.002], [0.0, 0.0]], np.float32)  # 0.002 kg > 0.001 kg
    block = parity.parity_block("fp32", ref, kg_off, labels, OUTPUTS, t)
    assert not block["passed"] and "weight" in block["reasons"][0]
    # int8 is judged on the task: +0.2 cm brings predictions closer (MAE -0.2: passes although
    # max |Δ| is 0.2 cm); -0.2 cm makes the MAE 0.2 cm worse (> 0.15: fails)
    block = parity.parity_block("int8", ref, ref + np.array([0.2, 0.0], np.float32), labels, OUTPUTS, t)
    assert block["task"]["delta_mae_height_cm"] == pytest.approx(-0.2, abs=1e-4) and block["passed"] is True
    block = parity.parity_block("int8", ref, ref - np.array([0.2, 0.0], np.float32), labels, OUTPUTS, t)
    assert block["task"]["delta_mae_height_cm"] == pytest.approx(0.2, abs=1e-4) and block["passed"] is False
    nan = ref.copy()
    nan[0, 0] = np.nan
    assert parity.parity_block("fp32", ref, nan, labels, OUTPUTS, t)["passed"] is False


def test_thresholds_are_configurable_and_bad_ones_are_all_reported():
    t = parity.parse_thresholds(["fp32_max_abs_cm=0.05"])
    assert t.fp32_max_abs_cm == 0.05 and t.fp16_max_abs_cm == 0.1
    with pytest.raises(NeometerError) as err:
        parity.parse_thresholds(["nonsense=1", "fp16_max_abs_kg=abc"])
    assert len(err.value.problems) == 2


# --- latency loop ---------------------------------------------------------------------------

def test_time_runs_counts_the_runs_it_claims():
    calls = []
    timing = time_runs(lambda: calls.append(1), warmup=3, runs=7)
    assert timing.runs == 7 and len(timing.times_ms) == 7 and timing.warmup == 3
    assert len(calls) == 10


def test_time_runs_honours_min_and_max_seconds():
    ticks = iter(range(10_000))
    clock = lambda: float(next(ticks))  # noqa: E731 - each clock read advances 1 s
    calls = []
    capped = time_runs(lambda: calls.append(1), warmup=0, runs=50, max_secs=5, clock=clock)
    assert 1 <= capped.runs < 50 and len(calls) == capped.runs
    ticks = iter(range(10_000))
    extended = time_runs(lambda: None, warmup=0, runs=2, min_secs=20, clock=clock)
    assert extended.runs > 2


# --- machine info ---------------------------------------------------------------------------

def test_cpuinfo_flags_on_x86_and_arm():
    x86 = parse_cpuinfo("model name\t: Intel Xeon\nflags\t\t: fpu sse4_2 avx avx2 avx512_vnni avx_vnni\n")
    assert x86["cpu"] == "Intel Xeon" and {"avx2", "avx512_vnni", "avx_vnni"} <= set(x86["cpu_flags"])
    arm = parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd41\n")
    assert {"asimd", "asimddp", "i8mm"} <= set(arm["cpu_flags"]) and "avx2" not in arm["cpu_flags"]


# --- the shared result schema -----------------------------------------------------------------

def _row(status="passed", **kw) -> Row:
    lat = {"warmup": 2, "runs": 5, "p50_ms": 1.0, "p90_ms": 1.2, "min_ms": 0.9, "max_ms": 1.5, "mean_ms": 1.05,
           "load_ms": 10.0, "end_to_end_p50_ms": 20.0, "peak_memory_mb": 100.0, "threads_reported": 1}
    par = {"raw": {"n": 4, "max_abs_cm": 0.001, "mean_abs_cm": 0.0005, "max_abs_kg": 0.0001, "mean_abs_kg": 0.0,
                   "snr_db": 90.0}, "task": {"mae_height_cm": 1.2, "mae_weight_kg": 0.2}, "passed": status == "passed",
           "threshold": {"metric": "max_abs", "cm": 0.01, "kg": 0.001}, "divergence": None}
    return Row(kw.pop("format", "onnx"), "fp32", "torch.onnx", status, latency=lat, parity=par, size_bytes=1000, **kw)


def test_results_validate_against_the_schema_and_files_are_written(tmp_path):
    rows = [_row(), _row("failed_parity", reason="max |Δ| height 0.5 cm > 0.01 cm"),
            Row("tflite", "int8", "onnx2tf", "export_failed", reason="RuntimeError: boom"),
            _row("runtime_failed", reason="ImportError: x")]
    for r in rows:
        validate_result(result_json(r, RUN, DEVICE, {"python": "3.11"}))
    bad = result_json(rows[0], RUN, DEVICE, {})
    bad["status"], bad["latency"]["runs"] = "bogus", 0
    with pytest.raises(NeometerError) as err:
        validate_result(bad)
    assert len(err.value.problems) == 2
    out = write_results(rows, RUN, DEVICE, {"python": "3.11"}, {"runs": 5}, tmp_path)
    summary = json.loads((out / "results.json").read_text())
    assert [r["status"] for r in summary["results"]] == ["passed", "failed_parity", "export_failed", "not_run"]
    assert len(list((out / "rows").glob("*.json"))) == 4
    md = (tmp_path / "latest.md").read_text()
    assert "export failed: RuntimeError: boom" in md and "exported but failed parity" in md
    assert (out / "error_vs_latency.png").stat().st_size > 1000


# --- devices: command construction and parsing with fake tools --------------------------------

def _device_result(kind: str, **device) -> dict:
    return {"schema_version": 1, "run": RUN, "device": {"kind": kind, **device},
            "software": {"runtime": "litert", "runtime_version": "1.0"},
            "model": {"artifact": "regressor_fp32.tflite", "sha256": None, "format": "tflite", "precision": "fp32"},
            "latency": {"warmup": 5, "runs": 7, "threads": 2, "load_ms": 30.0, "p50_ms": 12.0, "p90_ms": 14.0,
                        "min_ms": 11.0, "max_ms": 20.0}, "status": "measured"}


def _fake_tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    return bin_dir


def test_android_runs_through_adb(fake_bin, tmp_path, monkeypatch):
    result = tmp_path / "phone_result.json"
    result.write_text(json.dumps(_device_result("android", model="Pixel 8", cpu_flags=["asimddp"])))
    monkeypatch.setenv("FAKE_RESULT", str(result))
    _fake_tool(fake_bin, "adb", """
        import os, shutil, sys
        args = sys.argv[1:]
        open(os.environ["FAKE_LOG"], "a").write(" ".join(args) + "\\n")
        if args == ["devices"]:
            print("List of devices attached\\nSERIAL123\\tdevice\\n")
        elif "pull" in args:
            shutil.copy(os.environ["FAKE_RESULT"], args[-1])
    """)
    model = tmp_path / "regressor_fp32.tflite"
    model.write_bytes(b"tfl3")
    got = devices.run_android(model, runs=7, threads=2, out=tmp_path / "got.json", poll_s=0)
    assert got["device"]["model"] == "Pixel 8"
    calls = (tmp_path / "calls.log").read_text().splitlines()
    remote = f"{devices.ANDROID_FILES}/regressor_fp32.tflite"
    assert f"-s SERIAL123 push {model} {remote}" in calls
    assert (f"-s SERIAL123 shell am start -W -n org.neometer.app/.BenchmarkActivity --es model {remote} "
            "--ei runs 7 --ei threads 2") in calls
    assert f"-s SERIAL123 pull {devices.ANDROID_RESULT} {tmp_path / 'got.json'}" in calls
    row = devices.result_to_row(got)
    assert row.threads == 2 and row.latency["p50_ms"] == 12.0


def test_android_without_phone_says_so(fake_bin, tmp_path):
    _fake_tool(fake_bin, "adb", """
        print("List of devices attached\\nOFFLINE1\\toffline\\n")
    """)
    with pytest.raises(devices.DeviceUnavailable, match="no Android phone"):
        devices.run_android(tmp_path / "m.tflite", 5, 1, tmp_path / "r.json")


def test_ios_runs_xcodebuild_with_the_result_path(fake_bin, tmp_path):
    _fake_tool(fake_bin, "xcodebuild", f"""
        import json, os, sys
        open(os.environ["FAKE_LOG"], "a").write(" ".join(sys.argv[1:]) + "\\n")
        assert os.environ["TEST_RUNNER_NEOMETER_BENCH_OUT"] == os.environ["NEOMETER_BENCH_OUT"]
        result = {json.dumps(_device_result("ios", model="iPhone 15 Pro"))!r}
        result = json.loads(result)
        result["latency"]["threads"] = int(os.environ["NEOMETER_BENCH_THREADS"])
        open(os.environ["NEOMETER_BENCH_OUT"], "w").write(json.dumps(result))
    """)
    got = devices.run_ios(tmp_path / "regressor_fp16.mlpackage", 9, 3, tmp_path / "ios.json",
                          destination="platform=iOS,id=abc")
    assert got["device"]["model"] == "iPhone 15 Pro" and got["latency"]["threads"] == 3
    call = (tmp_path / "calls.log").read_text().strip()
    assert call == ("test -scheme NeometerKit -only-testing:NeometerKitTests/BenchmarkTests "
                    "-destination platform=iOS,id=abc")


def test_browser_command_and_wrong_kind_is_rejected(fake_bin, tmp_path):
    script = tmp_path / "bench.mjs"
    script.write_text("// fake")
    cmd = devices.browser_command(Path("m.tflite"), Path("m.tflite.json"), 20, 4.0, Path("o.json"), "node", script)
    assert cmd == ["node", str(script), "--model", "m.tflite", "--card", "m.tflite.json", "--runs", "20",
                   "--throttle", "4", "--out", "o.json"]
    _fake_tool(fake_bin, "node", f"""
        import json, sys
        a = sys.argv
        r = {json.dumps(_device_result("browser"))!r}
        r = json.loads(r)
        r["device"]["throttle"] = float(a[a.index("--throttle") + 1])
        open(a[a.index("--out") + 1], "w").write(json.dumps(r))
    """)
    got = devices.run_browser(Path("m.tflite"), Path("m.tflite.json"), 5, tmp_path, script=script)
    assert [r["device"]["throttle"] for r in got] == [1.0, 4.0, 6.0]
    (tmp_path / "wrong.json").write_text(json.dumps(_device_result("android")))
    with pytest.raises(NeometerError, match="expected 'browser'"):
        devices.read_result(tmp_path / "wrong.json", "browser")
    with pytest.raises(devices.DeviceUnavailable, match="missing"):
        devices.check_browser(tmp_path / "nope.mjs")


def test_missing_devices_stop_with_one_line_and_nonzero_exit(fake_bin, tmp_path, monkeypatch, capsys):
    from neometer.cli import main

    monkeypatch.setattr(devices, "WEB_BENCH_SCRIPT", tmp_path / "web" / "scripts" / "bench.mjs")
    monkeypatch.setenv("PATH", str(fake_bin))  # no adb, no xcodebuild, no node
    for device, says in (("browser", "bench.mjs is missing"), ("android", "no Android phone"), ("ios", "xcodebuild")):
        assert main(["bench", "--device", device]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1, err


# --- the whole harness on a tiny model: a planted defect must fail, with its layer named -----

def _tiny_checkpoint(path: Path) -> Path:
    import warnings

    import torch

    from neometer.data.preprocess import PreprocessSpec
    from neometer.models.checkpoint import save_checkpoint
    from neometer.models.regressor import build_regressor

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_regressor("mobilenet_v2", 2, 0.35)
    with torch.no_grad():
        # Random init leaves BatchNorm's running statistics at 0/1, so activations fade to ~0 and
        # every image gives the bias; a few training-mode passes make the outputs depend on the
        # image, as a trained model's do, so that parity has something to compare.
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: the statistics of exactly these passes
        model.train()
        for _ in range(2):
            model(torch.randn(16, 3, 64, 64))
        model.eval()
        for bn in bns:
            bn.momentum = 0.1
        head = model.classifier[1]
        head.weight.mul_(torch.tensor([[20.0], [2.0]]))
        head.bias.copy_(torch.tensor([50.0, 3.3]))  # cm and kg scale outputs
    config = {"format": "neometer-checkpoint", "role": "regressor", "backbone": "mobilenet_v2", "width_mult": 0.35,
              "task": "multitask", "outputs": [{"name": "height_cm", "unit": "cm"}, {"name": "weight_kg", "unit": "kg"}],
              "img_size": 64, "preprocessing": PreprocessSpec(target_size=64).to_dict()}
    return save_checkpoint(path, model, config)


def _export(checkpoint: Path, fmt: str, precision: str, out_dir: Path) -> Path:
    """Through the export table's own exporter, as the harness does."""
    from neometer.bench.host import ensure_artifacts, select_targets
    from neometer.models.checkpoint import sha256_file

    sha = sha256_file(checkpoint)
    arts = ensure_artifacts(checkpoint, sha, select_targets([fmt], [precision], "auto"), out_dir, progress=False, calib=4)
    assert arts[0].card is not None, arts[0].error
    assert json.loads(arts[0].card.read_text())["model"]["source_checkpoint_sha256"] == sha
    return arts[0].card


def _perturbed_copy(card_path: Path, out_dir: Path, factor: float = 1.3) -> tuple[Path, str]:
    """The planted defect: a copy of an ONNX artifact with one mid-network convolution's weights
    off by 30 %, its card otherwise unchanged (as a converter bug would leave it)."""
    import onnx
    from onnx import numpy_helper

    from neometer.models.checkpoint import sha256_file

    card = json.loads(card_path.read_text())
    src = card_path.parent / card["artifact"]["file"]
    model = onnx.load(str(src))
    node = next(n for n in model.graph.node if n.op_type == "Conv" and "features.5/" in n.name)
    weight = next(i for i in model.graph.initializer if i.name == node.input[1])
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * np.float32(factor), weight.name))
    out_dir.mkdir(parents=True)
    dst = out_dir / src.name
    onnx.save(model, str(dst))
    card["artifact"].update(sha256=sha256_file(dst), size_bytes=dst.stat().st_size)
    (out_dir / f"{src.name}.json").write_text(json.dumps(card))
    return out_dir / f"{src.name}.json", node.name


def test_harness_fails_a_perturbed_artifact_and_names_the_layer(tmp_path, capsys):
    from neometer.cli import main

    clean = _tiny_checkpoint(tmp_path / "clean" / "model.safetensors")
    good_card = _export(clean, "onnx", "fp32", tmp_path / "clean" / "export")
    bad_card, perturbed_layer = _perturbed_copy(good_card, tmp_path / "bad")

    common = ["bench", "--weights", str(clean), "--threads", "2", "--runs", "4", "--warmup", "1", "--e2e-runs", "2",
              "--n-images", "6", "--out", str(tmp_path / "results"), "--ci", "--quiet"]
    rc = main(common + ["--artifacts", str(good_card), str(bad_card), "--no-reference-latency"])
    out = capsys.readouterr().out
    assert rc == 1  # --ci: one artifact failed
    results = json.loads(next((tmp_path / "results").glob("*/results.json")).read_text())["results"]
    for r in results:
        validate_result(r)
    good, bad_row = results
    assert good["status"] == "passed" and good["parity"]["raw"]["max_abs_cm"] <= 0.01
    assert bad_row["status"] == "failed_parity" and bad_row["parity"]["raw"]["max_abs_cm"] > 0.01
    div = bad_row["parity"]["divergence"]
    assert div["layer"] == perturbed_layer and div["op"] == "Conv", div
    assert f"first diverging layer: {perturbed_layer} (Conv)" in out
    # the latency loop counted what it claims and the thread count reached the runtime
    lat = good["latency"]
    assert lat["runs"] == 4 and lat["threads"] == 2 and lat["threads_reported"] == 2
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["max_ms"]
    assert lat["end_to_end_p50_ms"] > lat["min_ms"] and lat["load_ms"] > 0
    # the verdicts went into the model cards
    assert json.loads(good_card.read_text())["parity"]["passed"] is True
    assert json.loads(bad_card.read_text())["parity"]["passed"] is False


def test_reference_worker_applies_threads_in_its_own_process(tmp_path):
    from neometer.bench.latency import run_worker

    ckpt = _tiny_checkpoint(tmp_path / "model.safetensors")
    x = np.random.default_rng(0).normal(size=(3, 3, 64, 64)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    res = run_worker(tmp_path / "in.npz", tmp_path / "w.json", threads=2, checkpoint=ckpt, warmup=2, runs=3,
                     e2e_runs=0)
    assert res.ok, res.error
    assert res.stats["threads_reported"] == 2 and res.stats["runs"] == 3 and len(res.stats["times_ms"]) == 3
    assert res.predictions.shape == (3, 2) and np.ptp(res.predictions[:, 0]) > 0  # image-dependent outputs


def test_first_divergence_matches_by_value_across_layouts():
    from neometer.bench.localize import first_divergence

    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=s).astype(np.float32) for s in ((1, 4, 6, 6), (1, 8, 3, 3), (1, 2)))
    reference = [("conv1", a), ("block2", b), ("head", c)]
    nhwc = lambda t: np.transpose(t, (0, 2, 3, 1))  # noqa: E731 - LiteRT keeps activations NHWC
    clean = [("CONV_2D:0", "CONV_2D", nhwc(a)), ("RESHAPE:1", "RESHAPE", rng.normal(size=(7,))),
             ("DEPTHWISE:2", "DEPTHWISE_CONV_2D", nhwc(b)), ("FC:3", "FULLY_CONNECTED", c)]
    d = first_divergence(clean, reference, 1e-3, "test")
    assert d.layer is None and d.compared == 3  # the reshape has no same-size reference: skipped
    broken = list(clean)
    broken[2] = ("DEPTHWISE:2", "DEPTHWISE_CONV_2D", nhwc(b) * 1.1)
    d = first_divergence(broken, reference, 1e-3, "test")
    assert (d.layer, d.op, d.index) == ("DEPTHWISE:2", "DEPTHWISE_CONV_2D", 2) and d.rel_err == pytest.approx(0.1, rel=1e-3)
    assert d.message() == "first diverging layer: DEPTHWISE:2 (DEPTHWISE_CONV_2D) rel err 0.1"


def test_fp16_weight_reference_separates_converter_error_from_fp16_rounding(tmp_path):
    import torch

    from neometer.bench.precision import explain_fp16, fp16_weight_model, fp16_weight_reference
    from neometer.export.fixtures import make_tiny_regressor
    from neometer.models.checkpoint import load_checkpoint

    model, config = load_checkpoint(make_tiny_regressor(tmp_path / "m.safetensors"))
    with torch.no_grad():  # BatchNorm statistics a trained model would have, so folding changes the weights
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.01, 3.0)
                m.running_mean.uniform_(-0.5, 0.5)
    model = model.float().eval()
    sim_model = fp16_weight_model(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sim_model.modules())  # folded, as converters do
    assert all(torch.equal(p, p.half().float()) for p in sim_model.parameters())  # every weight is an fp16 value
    x = np.random.default_rng(0).normal(size=(6, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    sim = fp16_weight_reference(model, x)
    assert np.abs(sim - ref).max() > 0  # rounding the folded weights moves the outputs by itself
    outputs = config["outputs"]
    for i, o in enumerate(outputs):
        o["index"] = i
    exact = explain_fp16(sim, sim + np.float32(1e-5), outputs, parity.Thresholds())
    assert exact["converter_exact"] is True and "not the converter" in exact["text"]
    broken = explain_fp16(sim, sim + np.array([0.05, 0.0], np.float32), outputs, parity.Thresholds())
    assert broken["converter_exact"] is False and "converter changed the numbers" in broken["text"]
