"""Export orchestration: checkpoint(s) -> every selected row of the target table -> artifact +
export check in its own runtime + validated model card, each written atomically; then the
pipeline links between regressor and segmenter cards, and a summary (table, JSON, PNG)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neometer.data.preprocess import PreprocessSpec
from neometer.errors import NeometerError
from neometer.export.common import ExportJob
from neometer.export.modelcard import artifact_size, build_card, validate_card, write_card
from neometer.export.targets import Target

CHECK_IMAGES = 8  # calibration frames the export check compares on


@dataclass
class ExportResult:
    target: Target
    role: str
    path: Path | None
    seconds: float
    check: dict | None = None
    error: str | None = None
    size_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict:
        return {"role": self.role, "target": self.target.format, "precision": self.target.precision,
                "converter": self.target.route, "io": self.target.io, "ok": self.ok,
                "size_mb": round(self.size_bytes / 1e6, 3), "seconds": round(self.seconds, 1),
                "check": self.check, "error": self.error, "path": str(self.path) if self.path else None}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


# --- the export check: the artifact in its own runtime against PyTorch --------------------------

def export_check(job: ExportJob, target: Target, card_path: Path, artifact: Path) -> dict:
    if target.format == "coreml" and sys.platform != "darwin":
        return coreml_spec_check(job, target, artifact)
    if not target.runs_on_linux and sys.platform != "darwin":
        return {"method": "skipped", "passed": None, "reason": f"{target.format} via {target.route} runs only on Apple platforms"}
    import torch

    from neometer.runtime import runner_class

    x = job.calib.x[:CHECK_IMAGES]
    with torch.no_grad():
        ref = job.model(torch.from_numpy(x)).float().numpy()
    runner = runner_class(target.format)(card_path, threads=1)
    got = runner.predict(x)
    if got.shape != ref.shape:
        return {"method": "runtime", "passed": False, "n_images": int(len(x)),
                "reason": f"output shape {list(got.shape)} != PyTorch {list(ref.shape)}"}
    outputs = job.config.get("outputs") or [{"name": f"output{i}", "unit": ""} for i in range(ref.shape[1])]
    per_output = {}
    for i, o in enumerate(outputs):
        diff = np.abs(got[:, i] - ref[:, i]) if ref.ndim == 2 else np.abs(got - ref)
        tol = target.tolerance_for(o.get("unit", ""))
        per_output[o["name"]] = {"unit": o.get("unit", ""), "max_abs": float(diff.max()),
                                 "mean_abs": float(diff.mean()), "tolerance": tol, "passed": bool(diff.max() <= tol)}
    return {"method": "runtime", "runtime": runner.format, "n_images": int(len(x)),
            "images_sha256": _sha(x), "passed": all(v["passed"] for v in per_output.values()),
            "outputs": per_output}


def _sha(x: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(x, "<f4").tobytes()).hexdigest()


def coreml_spec_check(job: ExportJob, target: Target, artifact: Path) -> dict:
    """Linux cannot run Core ML: check what the app will bind to (I/O names and shapes, metadata)
    and that int8 really stored int8 weights."""
    from neometer.export.coreml import inspect_package

    info = inspect_package(artifact)
    problems = []
    size = job.size
    inp = info["inputs"][0] if info["inputs"] else {}
    if inp.get("shape") != [1, 3, size, size]:
        problems.append(f"input shape {inp.get('shape')} != [1, 3, {size}, {size}]")
    if [o["name"] for o in info["outputs"]] != ["output"]:
        problems.append(f"outputs {[o['name'] for o in info['outputs']]} != ['output']")
    if info["model_type"] != "mlProgram":
        problems.append(f"model type {info['model_type']} is not an ML Program")
    for key in ("description", "license", "version"):
        if not info["metadata"][key]:
            problems.append(f"metadata {key} is empty")
    if target.precision == "int8" and info["int8_weight_ops"] == 0:
        problems.append("int8 requested but no quantized weight ops (constexpr_*) in the program")
    return {"method": "spec", "passed": not problems, "problems": problems, "spec_inputs": info["inputs"],
            "spec_outputs": info["outputs"], "ops": info["ops"], "int8_weight_ops": info["int8_weight_ops"],
            "reason": "Core ML predicts only on macOS; the spec was checked instead"}


# --- one row --------------------------------------------------------------------------------------

def export_one(job: ExportJob, target: Target, out_dir: Path, calibration_card: dict | None,
               keep_failed: bool = False) -> ExportResult:
    """Export one table row. An artifact that fails its check is not written, unless
    `keep_failed` (the benchmark's choice: it reports "exported but failed parity")."""
    name = target.artifact_name(job.role)
    final, card_final = out_dir / name, out_dir / f"{name}.json"
    tmp = out_dir / f".tmp{os.getpid()}.{name}"  # keeps the suffix converters look at
    tmp_card = out_dir / f"{tmp.name}.json"
    t0 = time.perf_counter()
    try:
        for p in (tmp, tmp_card):
            _remove(p)
        info = target.exporter_fn()(job, target, tmp)
        calib = calibration_card if target.precision == "int8" else None
        card = build_card(config=job.config, spec=job.spec, target=target, info=info, artifact=tmp,
                          file_name=tmp.name, calibration=calib)
        write_card(card, tmp_card)
        check = export_check(job, target, tmp_card, tmp)
        if check.get("passed") is False and not keep_failed:
            raise NeometerError(f"{name}: the export check failed ({_check_text(check)}); the artifact was not "
                                f"written. Try another --converter or precision", problems=check.get("problems", []))
        card = build_card(config=job.config, spec=job.spec, target=target, info=info, artifact=tmp,
                          file_name=name, calibration=calib, export_check=check)
        validate_card(card, str(card_final))  # before anything on disk changes
        # Old card first: a card on disk always describes the artifact beside it.
        _remove(card_final)
        _remove(final)
        tmp.rename(final)
        write_card(card, card_final)
        return ExportResult(target, job.role, final, time.perf_counter() - t0, check, size_bytes=artifact_size(final))
    except NeometerError as exc:
        return ExportResult(target, job.role, None, time.perf_counter() - t0, error=str(exc))
    except Exception as exc:  # a converter's own failure: keep its message and the step
        return ExportResult(target, job.role, None, time.perf_counter() - t0,
                            error=f"{target.format} {target.precision} via {target.route}: {type(exc).__name__}: {exc}")
    finally:
        for p in (tmp, tmp_card):
            _remove(p)


def _check_text(check: dict | None) -> str:
    if not check:
        return "-"
    if check.get("method") == "spec":
        return "spec ok" if check["passed"] else "spec: " + "; ".join(check["problems"])
    if check.get("method") == "skipped":
        return "skipped (not runnable here)"
    if "outputs" not in check:
        return check.get("reason", "?")
    return " ".join(f"{v['max_abs']:.2g} {v['unit']}" for v in check["outputs"].values())


# --- a whole export ----------------------------------------------------------------------------

def load_model(weights: str | Path | None):
    from neometer.models.checkpoint import load_checkpoint

    model, config = load_checkpoint(weights)
    config.setdefault("role", "regressor")
    if not config.get("outputs"):
        from neometer.models.regressor import TASK_OUTPUTS

        config["outputs"] = [{"name": n, "unit": u} for n, u in TASK_OUTPUTS[config["task"]]]
    return model.float().eval(), config


def export_checkpoint(weights, targets: list[Target], out_dir: Path, calib=None, calib_count: int | None = None,
                      coreml_image_input: bool = False, progress: bool = True, model_config=None,
                      keep_failed: bool = False) -> list[ExportResult]:
    """Export one checkpoint to every target row; returns one result per row."""
    import torch

    from neometer.export.calibration import Calibration, load_calibration

    model, config = model_config or load_model(weights)
    spec = PreprocessSpec.from_dict(config.get("preprocessing") or {"target_size": config.get("img_size", 224)})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    calibration = calib if isinstance(calib, Calibration) else load_calibration(calib, spec, calib_count, progress)
    if calibration.x.shape[1:] != (3, spec.target_size, spec.target_size):
        raise NeometerError(f"calibration frames are {calibration.x.shape[1:]} but the model takes "
                            f"3x{spec.target_size}x{spec.target_size}")
    log(f"  calibration: {calibration.count} frames from {calibration.source} ({time.perf_counter() - t0:.1f} s)")
    results = []
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as work:
        job = ExportJob(model, config, spec, calibration, Path(work), coreml_image_input)
        job.output_rank()  # fail early on a multi-output model
        for i, target in enumerate(targets, 1):
            log(f"[{i}/{len(targets)}] {job.role} {target.format} {target.precision} via {target.route} ...")
            r = export_one(job, target, out_dir, calibration.to_card(), keep_failed)
            results.append(r)
            status = f"ok   {r.size_bytes / 1e6:.2f} MB  check {_check_text(r.check)}" if r.ok else f"FAILED: {r.error}"
            log(f"      {status}  ({r.seconds:.1f} s)")
    return results


def link_pipeline(results: list[ExportResult]) -> None:
    """Each card names its partner artifact (same format, precision and route) when both exported."""
    ok = [r for r in results if r.ok]
    by_key = {(r.role, r.target.key): r for r in ok}
    for r in ok:
        other = "segmenter" if r.role == "regressor" else "regressor"
        partner = by_key.get((other, r.target.key))
        if partner is None:
            fallback = [p for p in ok if p.role == other and p.target.format == r.target.format]
            partner = fallback[0] if fallback else None
        card_path = Path(f"{r.path}.json")
        card = json.loads(card_path.read_text())
        card["pipeline"] = {r.role: r.path.name, other: partner.path.name if partner else None}
        write_card(card, card_path)


def summary_table(results: list[ExportResult]) -> str:
    head = ("role", "target", "precision", "converter", "size MB", "check max |Δ|", "time s", "path")
    rows = [(r.role, r.target.format, r.target.precision + ("" if r.target.io == "float" or r.target.precision != "int8" else " (int8 I/O)"),
             r.target.route, f"{r.size_bytes / 1e6:.2f}" if r.ok else "-",
             _check_text(r.check) if r.ok else "FAILED", f"{r.seconds:.1f}",
             str(r.path) if r.ok else (r.error or "").splitlines()[0][:80]) for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*row) for row in rows])


def write_summary(results: list[ExportResult], out_dir: Path) -> tuple[Path, Path | None]:
    """export_summary.json + export_summary.png (size and check error per artifact)."""
    out_dir = Path(out_dir)
    js = out_dir / "export_summary.json"
    tmp = out_dir / f".export_summary.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"artifacts": [r.row() for r in results]}, indent=2) + "\n")
    tmp.replace(js)
    ok = [r for r in results if r.ok]
    if not ok:
        return js, None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.path.name for r in ok]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(ok) + 1.5), sharey=True)
    axes[0].barh(labels, [r.size_bytes / 1e6 for r in ok], color="#4c72b0")
    axes[0].set_xlabel("size (MB)")
    errs = [max((v["max_abs"] for v in (r.check or {}).get("outputs", {}).values()), default=0.0) for r in ok]
    axes[1].barh(labels, errs, color=["#55a868" if (r.check or {}).get("passed") else "#c4c4c4" for r in ok])
    axes[1].set_xlabel("export check: max |Δ| vs PyTorch (output units; grey = not run here)")
    axes[1].set_xscale("symlog", linthresh=1e-6)
    fig.suptitle("neometer export")
    fig.tight_layout()
    png = out_dir / "export_summary.png"
    tmp_png = out_dir / f".export_summary.tmp-{os.getpid()}.png"
    fig.savefig(tmp_png, dpi=100)
    plt.close(fig)
    tmp_png.replace(png)
    return js, png
