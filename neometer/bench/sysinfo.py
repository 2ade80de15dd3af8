"""The machine and software a benchmark ran on, recorded in every result file.

Latency numbers mean nothing without the CPU (its SIMD flags decide which kernels XNNPACK and
onnxruntime pick: AVX2, VNNI on x86; dot-product on ARM), the core count, and the exact
runtime and converter versions; parity numbers mean nothing without the git commit."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The CPU features that change which int8/fp16/fp32 kernels a runtime uses.
INTERESTING_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "amx_int8",  # x86
    "neon", "asimd", "asimdhp", "asimddp", "i8mm", "sve", "bf16",  # ARM (asimddp = NEON dot-product)
)

# Distribution names of everything that can change a benchmark number.
PACKAGES = (
    "torch", "torchvision", "numpy", "onnx", "onnxruntime", "onnx2tf", "ai-edge-litert",
    "litert-torch", "tensorflow", "executorch", "coremltools", "opencv-python-headless",
)


def parse_cpuinfo(text: str) -> dict:
    """/proc/cpuinfo text -> {"cpu": model name, "cpu_flags": [interesting flags]}.
    x86 says "model name" and "flags"; ARM says "Features" and often has no model name."""
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "hardware", "cpu model") and value and model is None:
            model = value
        elif key in ("flags", "features"):
            flags.update(value.split())
    return {"cpu": model, "cpu_flags": [f for f in INTERESTING_FLAGS if f in flags]}


@lru_cache(maxsize=1)
def cpu_info() -> dict:
    try:
        info = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:  # macOS, Windows: no /proc
        info = {"cpu": None, "cpu_flags": []}
    if not info["cpu"]:
        info["cpu"] = _sysctl("machdep.cpu.brand_string") or platform.processor() or platform.machine()
    if not info["cpu_flags"] and platform.system() == "Darwin" and platform.machine() == "arm64":
        # Apple silicon: every M-series core has NEON with dot-product and i8mm is M2+.
        info["cpu_flags"] = ["neon", "asimd", "asimddp"] + (["i8mm"] if _sysctl("hw.optional.arm.FEAT_I8MM") == "1" else [])
    return info


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def core_count() -> int:
    """Cores this process may use (the affinity mask, which containers shrink), not the host's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def os_name() -> str:
    if platform.system() == "Darwin":
        return f"macOS {platform.mac_ver()[0]} ({platform.machine()})"
    return f"{platform.system()} {platform.release()} ({platform.machine()})"


def package_versions(names=PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_state(root: Path = REPO_ROOT) -> tuple[str | None, bool | None]:
    """(commit sha, dirty?) of the checkout; (None, None) outside git or before the first commit."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)

    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None, None
    commit = head.stdout.strip() if head.returncode == 0 else None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return commit, dirty


def host_device() -> dict:
    """The `device` block of a host result (schema contract 2)."""
    info = cpu_info()
    return {"kind": "host", "model": platform.node() or None, "os": os_name(), "cpu": info["cpu"],
            "cpu_flags": info["cpu_flags"], "cores": core_count(), "accelerator": None}


def run_block(run_id: str) -> dict:
    commit, dirty = git_state()
    return {"id": run_id, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": commit, "git_dirty": dirty}


def new_run_id() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
