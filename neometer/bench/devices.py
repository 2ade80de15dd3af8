"""The benchmark off the host: the app shells measure themselves and write a result JSON in
the shared schema; this module builds the commands that start them and reads what they wrote.

- browser: `node web/scripts/bench.mjs --model M --card C --runs N --throttle R --out J`
  (the web shell's benchmark page in headless Chromium, 1 thread, CDP CPU throttling);
- android: adb push, `am start -W -n org.neometer.app/.BenchmarkActivity ...`, adb pull;
- ios: `xcodebuild test -scheme NeometerKit -only-testing:NeometerKitTests/BenchmarkTests`,
  result path in NEOMETER_BENCH_OUT.

Where the browser script, a phone or macOS is missing, the run stops with one line naming
what is missing (a NeometerError, exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from neometer.errors import NeometerError

REPO_ROOT = Path(__file__).resolve().parents[2]

# Lighthouse's CPU throttling conventions: 1x (this machine), 4x (mid-tier phone), 6x (low-end).
BROWSER_THROTTLES = (1.0, 4.0, 6.0)
WEB_BENCH_SCRIPT = REPO_ROOT / "web" / "scripts" / "bench.mjs"

ANDROID_PACKAGE = "org.neometer.app"
ANDROID_ACTIVITY = f"{ANDROID_PACKAGE}/.BenchmarkActivity"
ANDROID_FILES = f"/sdcard/Android/data/{ANDROID_PACKAGE}/files/bench"
ANDROID_RESULT = f"{ANDROID_FILES}/result.json"

IOS_SCHEME = "NeometerKit"
IOS_TEST = "NeometerKitTests/BenchmarkTests"
IOS_DEFAULT_DESTINATION = "platform=macOS"


class DeviceUnavailable(NeometerError):
    """The device (or the shell's benchmark entry) is not present on this machine."""


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except FileNotFoundError:
        raise DeviceUnavailable(f"{cmd[0]} not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise NeometerError(f"`{' '.join(cmd[:4])} ...` did not finish within {timeout:.0f} s") from None


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise NeometerError(f"{what} failed (exit {proc.returncode}): {tail[0][:300]}")


def read_result(path: Path, kind: str) -> dict:
    """A shell's result JSON: parsed, checked against the shared schema and the device kind."""
    from neometer.bench.results import validate_result

    try:
        result = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise NeometerError(f"{path}: not a readable result JSON ({exc}); rerun the {kind} benchmark") from None
    validate_result(result, str(path))
    if result["device"]["kind"] != kind:
        raise NeometerError(f"{path}: device.kind is '{result['device']['kind']}', expected '{kind}'")
    return result


# --- browser ----------------------------------------------------------------------------

def browser_command(model: Path, card: Path, runs: int, throttle: float, out: Path, node: str = "node",
                    script: Path = WEB_BENCH_SCRIPT) -> list[str]:
    return [node, str(script), "--model", str(model), "--card", str(card), "--runs", str(runs),
            "--throttle", f"{throttle:g}", "--out", str(out)]


def check_browser(script: Path | None = None) -> str:
    script = Path(script or WEB_BENCH_SCRIPT)
    if not script.is_file():
        raise DeviceUnavailable(f"{script.relative_to(REPO_ROOT) if script.is_relative_to(REPO_ROOT) else script} "
                                "is missing: the web shell's benchmark script is needed for --device browser")
    node = shutil.which("node")
    if node is None:
        raise DeviceUnavailable("node is not on PATH: --device browser needs Node.js (make setup)")
    return node


def run_browser(model: Path, card: Path, runs: int, out_dir: Path, throttles=BROWSER_THROTTLES,
                timeout_s: float = 600.0, script: Path | None = None) -> list[dict]:
    node = check_browser(script)
    script = Path(script or WEB_BENCH_SCRIPT)
    results = []
    for rate in throttles:
        out = Path(out_dir) / f"browser_{Path(model).stem}_x{rate:g}.json"
        proc = _run(browser_command(model, card, runs, rate, out, node, script), timeout_s, cwd=REPO_ROOT)
        _check(proc, f"web benchmark at {rate:g}x throttle")
        results.append(read_result(out, "browser"))
    return results


# --- android ----------------------------------------------------------------------------

def adb_devices(adb: str = "adb") -> list[str]:
    """Serials of attached, authorised devices (`adb devices` lines ending in 'device')."""
    proc = _run([adb, "devices"], 30)
    _check(proc, "adb devices")
    return parse_adb_devices(proc.stdout)


def parse_adb_devices(text: str) -> list[str]:
    serials = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[1] == "device":
            serials.append(parts[0])
    return serials


def android_commands(model: Path, runs: int, threads: int, serial: str | None = None, adb: str = "adb",
                     card: Path | None = None) -> dict[str, list[list[str]]]:
    """The adb commands of one Android run, in order: push, start, pull."""
    base = [adb] + (["-s", serial] if serial else [])
    remote_model = f"{ANDROID_FILES}/{Path(model).name}"
    push = [base + ["shell", "mkdir", "-p", ANDROID_FILES], base + ["shell", "rm", "-f", ANDROID_RESULT],
            base + ["push", str(model), remote_model]]
    if card is not None:
        push.append(base + ["push", str(card), f"{ANDROID_FILES}/{Path(card).name}"])
    start = [base + ["shell", "am", "start", "-W", "-n", ANDROID_ACTIVITY, "--es", "model", remote_model,
                     "--ei", "runs", str(runs), "--ei", "threads", str(threads)]]
    return {"push": push, "start": start, "poll": [base + ["shell", "ls", ANDROID_RESULT]],
            "pull": [base + ["pull", ANDROID_RESULT]]}


def run_android(model: Path, runs: int, threads: int, out: Path, card: Path | None = None, adb: str = "adb",
                timeout_s: float = 600.0, poll_s: float = 1.0) -> dict:
    if shutil.which(adb) is None:
        raise DeviceUnavailable("adb is not on PATH: --device android needs the Android platform tools and a phone")
    serials = adb_devices(adb)
    if not serials:
        raise DeviceUnavailable("no Android phone attached (adb devices lists none): connect one with USB debugging on")
    cmds = android_commands(model, runs, threads, serials[0], adb, card)
    for cmd in cmds["push"] + cmds["start"]:
        _check(_run(cmd, 120), " ".join(cmd[3:6]))
    deadline = time.monotonic() + timeout_s
    while _run(cmds["poll"][0], 30).returncode != 0:  # am start -W returns at launch, not at the end
        if time.monotonic() > deadline:
            raise NeometerError(f"the Android benchmark wrote no {ANDROID_RESULT} within {timeout_s:.0f} s")
        time.sleep(poll_s)
    _check(_run(cmds["pull"][0] + [str(out)], 60), "adb pull")
    return read_result(out, "android")


# --- ios --------------------------------------------------------------------------------

def ios_command(destination: str = IOS_DEFAULT_DESTINATION, xcodebuild: str = "xcodebuild") -> list[str]:
    return [xcodebuild, "test", "-scheme", IOS_SCHEME, f"-only-testing:{IOS_TEST}", "-destination", destination]


def ios_env(out: Path, model: Path, runs: int, threads: int, card: Path | None = None) -> dict:
    """Test settings by environment; xcodebuild forwards TEST_RUNNER_X to the test process as X."""
    values = {"NEOMETER_BENCH_OUT": str(out), "NEOMETER_BENCH_MODEL": str(model), "NEOMETER_BENCH_RUNS": str(runs),
              "NEOMETER_BENCH_THREADS": str(threads)}
    if card is not None:
        values["NEOMETER_BENCH_CARD"] = str(card)
    env = dict(os.environ)
    for k, v in values.items():
        env[k] = v
        env[f"TEST_RUNNER_{k}"] = v
    return env


def ios_project_dir() -> Path:
    for cand in (REPO_ROOT / "ios" / "NeometerKit", REPO_ROOT / "ios"):
        if cand.is_dir():
            return cand
    return REPO_ROOT


def run_ios(model: Path, runs: int, threads: int, out: Path, card: Path | None = None,
            destination: str = IOS_DEFAULT_DESTINATION, xcodebuild: str = "xcodebuild", timeout_s: float = 1800.0) -> dict:
    if shutil.which(xcodebuild) is None:
        raise DeviceUnavailable("xcodebuild is not on PATH: --device ios needs macOS with Xcode (and a phone or simulator)")
    Path(out).unlink(missing_ok=True)
    proc = _run(ios_command(destination, xcodebuild), timeout_s, env=ios_env(out, model, runs, threads, card),
                cwd=ios_project_dir())
    _check(proc, "xcodebuild test")
    if not Path(out).is_file():
        raise NeometerError(f"xcodebuild test passed but wrote no {out}: does BenchmarkTests read NEOMETER_BENCH_OUT?")
    return read_result(out, "ios")


def result_to_row(result: dict):
    """A shell's result JSON -> a table row."""
    from neometer.bench.results import Row

    model, soft, lat = result["model"], result.get("software") or {}, result.get("latency") or {}
    throttle = (result.get("device") or {}).get("throttle")
    converter = (soft.get("converter") or "–") + (f" @{throttle:g}x CPU" if throttle else "")
    return Row(format=model["format"], precision=model["precision"], converter=converter,
               status=result.get("status") or "measured", artifact=model.get("artifact"), sha256=model.get("sha256"),
               size_bytes=model.get("size_bytes"), threads=int(lat.get("threads") or 1), latency=lat or None,
               parity=result.get("parity"), runtime=soft.get("runtime"),
               notes=list(result.get("notes") or []) + ([f"throttle {result['device']['throttle']:g}x"]
                                                       if result["device"].get("throttle") else []))
