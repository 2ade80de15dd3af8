"""The host benchmark: checkpoint -> artifacts (exported where missing, through the export
table) -> PyTorch reference predictions -> each artifact measured and predicted in its own
process -> parity (raw, task, and the first diverging layer when it fails) -> rows."""

from __future__ import annotations

import json
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neometer.bench.latency import run_worker
from neometer.bench.parity import Thresholds, parity_block, task_metrics
from neometer.bench.results import Row
from neometer.errors import NeometerError

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class Artifact:
    """One requested (format, precision, route): its card when it exists, or why it does not."""

    format: str
    precision: str
    route: str | None
    converter: str
    card: Path | None = None
    error: str | None = None
    skipped: bool = False  # not exported because --no-export: not run, not failed
    target: object = None  # the export table's row
    notes: list[str] = field(default_factory=list)

    def read_card(self) -> dict:
        return json.loads(Path(self.card).read_text())


# --- the export table (neometer.export.targets: THE table) --------------------------------

def select_targets(formats: list[str] | None, precisions: list[str], converter: str = "all") -> list[Artifact]:
    """The table's rows for the requested formats (None = all) and precisions. converter "all"
    (the default) takes every route, so the benchmark compares converters side by side;
    "auto" takes the routes `neometer export` picks by default; else one route by name."""
    from neometer.export import targets as T

    if converter == "all":
        T.select_targets(formats or ["all"], precisions)  # validates names, raises NeometerError listing problems
        rows = [t for t in T.TARGETS if (not formats or t.format in formats) and t.precision in precisions]
    else:
        rows = T.select_targets(formats or ["all"], precisions, converter=converter, int8_io="both")
    return [Artifact(t.format, t.precision, t.route, target_label(t), target=t) for t in rows]


def target_label(t) -> str:
    """The route, plus the I/O type where one route makes two tflite int8 artifacts."""
    return t.route + (f" {t.io}-io" if t.format == "tflite" and t.precision == "int8" else "")


def find_existing(out_dir: Path, art: Artifact, checkpoint_sha: str) -> Path | None:
    """The card of this target's artifact in out_dir if it was made from this checkpoint and the
    artifact still has the sha256 the card records (a stale or edited artifact is re-exported)."""
    from neometer.models.checkpoint import sha256_file

    card_path = Path(out_dir) / (art.target.artifact_name("regressor") + ".json")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if (card.get("model") or {}).get("source_checkpoint_sha256") != checkpoint_sha:
        return None
    artifact = card_path.parent / (card.get("artifact") or {}).get("file", "")
    if artifact.is_file() and sha256_file(artifact) == card["artifact"].get("sha256"):
        return card_path
    if artifact.is_dir():  # .mlpackage: a folder, hashed by the exporter its own way
        return card_path
    return None


def ensure_artifacts(checkpoint: Path, checkpoint_sha: str, targets: list[Artifact], out_dir: Path,
                     allow_export: bool = True, progress: bool = True, calib=None, calib_count: int | None = None
                     ) -> list[Artifact]:
    """Reuse the artifacts already exported from this checkpoint; export the missing ones in one
    call of the export stage (one model load, one calibration set). An export failure is a
    result (the row says why), not a crash."""
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = []
    for art in targets:
        art.card = find_existing(out_dir, art, checkpoint_sha)
        if art.card is not None:
            art.notes.append("reused existing artifact")
        elif not allow_export:
            art.skipped = True
            art.error = f"not run: no artifact of this checkpoint in {out_dir} and --no-export given"
        else:
            missing.append(art)
    if not missing:
        return targets
    from neometer.export.pipeline import export_checkpoint

    try:
        results = export_checkpoint(checkpoint, [a.target for a in missing], out_dir, calib=calib,
                                    calib_count=calib_count, progress=progress, keep_failed=True)
    except NeometerError as exc:  # before any row (model load, calibration): every row says why
        for art in missing:
            art.error = one_line(exc)
        return targets
    by_key = {r.target.key: r for r in results}
    for art in missing:
        r = by_key.get(art.target.key)
        if r is None:
            art.error = "the export stage returned no result for this target"
        elif r.ok:
            art.card = Path(str(r.path) + ".json")
            art.notes.append(f"exported in {r.seconds:.1f} s")
        else:
            art.error = one_line(r.error)
            art.notes.append(str(r.error))
    return targets


def one_line(exc) -> str:
    """An exception (or an error text) as one line for the table; the full text goes in notes."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines())  # keeps the first problem listed
    return (text if isinstance(exc, str) else f"{type(exc).__name__}: {text}")[:300]


def artifacts_from_cards(cards: list[Path]) -> list[Artifact]:
    arts, problems = [], []
    for c in cards:
        try:
            card = json.loads(Path(c).read_text())
            conv = card.get("converter") or {}
            arts.append(Artifact(card["format"], card["precision"], conv.get("route"), conv.get("name", "?"), Path(c),
                                 target=_target_of_card(card)))
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            problems.append(f"{c}: not a model card ({one_line(exc)}); pass the artifact's <artifact>.json")
    if problems:
        raise NeometerError("bad --artifacts", problems=problems)
    return arts


def _target_of_card(card: dict):
    try:
        from neometer.export.targets import target_of_card

        return target_of_card(card)
    except Exception:  # a card from another version of the table: benchmark it anyway
        return None


# --- Core ML on Linux --------------------------------------------------------------------

def coreml_structural_checks(card_path: Path, card: dict) -> list[str]:
    """What can be checked without Core ML's predictor: the package loads, its input and output
    names and shapes agree with the card."""
    checks = []
    path = Path(card_path).parent / card["artifact"]["file"]
    try:
        import coremltools as ct

        spec = ct.utils.load_spec(str(path))
        desc = spec.description
        checks.append(f"spec loads (spec version {spec.specificationVersion})")
        ins = [i.name for i in desc.input]
        outs = [o.name for o in desc.output]
        want_in = (card.get("input") or {}).get("name")
        checks.append(f"input '{want_in}' {'present' if want_in in ins else 'MISSING (has ' + ', '.join(ins) + ')'}")
        checks.append(f"{len(outs)} output(s): {', '.join(outs)}")
    except Exception as exc:
        checks.append(f"spec did not load: {one_line(exc)}")
    return checks


# --- the run ------------------------------------------------------------------------------

@dataclass
class HostSettings:
    threads: list[int]
    runs: int = 50
    warmup: int = 5
    e2e_runs: int = 20
    min_secs: float = 0.0
    max_secs: float = 30.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    reference_latency: bool = True
    localize: bool = True
    progress: bool = True


def reference_predictions(checkpoint: Path, x: np.ndarray) -> np.ndarray:
    """PyTorch on the held-out images, through the runtime's reference runner."""
    from neometer.runtime import TorchRunner

    runner = TorchRunner(checkpoint)
    return np.concatenate([np.asarray(runner.predict(x[i:i + 8]), np.float32) for i in range(0, len(x), 8)])


def card_outputs(card: dict | None, config: dict) -> list[dict]:
    if card and card.get("outputs"):
        return card["outputs"]
    return [dict(o, index=i) for i, o in enumerate(config.get("outputs") or [])]


def run_host(checkpoint: Path, config: dict, artifacts: list[Artifact], heldout, settings: HostSettings,
             work: Path | None = None) -> list[Row]:
    from tqdm import tqdm

    ref = reference_predictions(checkpoint, heldout.x)
    tmp = Path(work or tempfile.mkdtemp(prefix="neometer-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    inputs = tmp / "inputs.npz"
    extra = {"frame": heldout.frame, "mask": heldout.mask} if heldout.frame is not None else {}
    np.savez(inputs, x=heldout.x, **{k: v for k, v in extra.items() if v is not None})

    rows: list[Row] = []
    divergences: dict[str, dict] = {}
    jobs = [(None, t) for t in settings.threads if settings.reference_latency] + [(a, t) for a in artifacts for t in settings.threads]
    for k, (art, threads) in enumerate(tqdm(jobs, desc="benchmark", disable=not settings.progress)):
        out = tmp / f"job{k}.json"
        if art is None:
            rows.append(reference_row(checkpoint, config, inputs, out, threads, ref, heldout, settings))
        else:
            rows.append(artifact_row(art, config, inputs, out, threads, ref, heldout, settings, divergences))
    return rows


def _worker_kwargs(settings: HostSettings) -> dict:
    return dict(warmup=settings.warmup, runs=settings.runs, e2e_runs=settings.e2e_runs,
                min_secs=settings.min_secs, max_secs=settings.max_secs)


def reference_row(checkpoint, config, inputs, out, threads, ref, heldout, settings) -> Row:
    import torch

    res = run_worker(inputs, out, threads, checkpoint=checkpoint, **_worker_kwargs(settings))
    outputs = card_outputs(None, config)
    row = Row("pytorch", "fp32", "–", "measured", threads=threads, artifact=str(checkpoint),
              sha256=config.get("checkpoint_sha256"), size_bytes=Path(checkpoint).stat().st_size,
              runtime="torch", converter_version=None)
    row.parity = {"task": task_metrics(ref, heldout.labels, outputs), "passed": None, "threshold": {}}
    row.notes.append(f"the reference; torch {torch.__version__}")
    if res.ok:
        row.latency = res.stats
    else:
        row.status, row.reason = "runtime_failed", res.error
    return row


def artifact_row(art: Artifact, config, inputs, out, threads, ref, heldout, settings, divergences) -> Row:
    row = Row(art.format, art.precision, art.converter, "passed",
              threads=threads, card=str(art.card) if art.card else None, notes=list(art.notes))
    if art.card is None:
        row.status, row.reason = ("not_run" if art.skipped else "export_failed"), art.error
        return row
    card = art.read_card()
    row.artifact = str(Path(art.card).parent / card["artifact"]["file"])
    row.sha256, row.size_bytes = card["artifact"].get("sha256"), card["artifact"].get("size_bytes")
    conv = card.get("converter") or {}
    row.converter = converter_label(art, card)
    row.converter_version, row.runtime = conv.get("version"), runtime_name(art.format)
    if not runs_here(art):
        row.status = "not_run"
        checks = coreml_structural_checks(Path(art.card), card) if art.format == "coreml" else []
        row.reason = "parity not run: Core ML predicts only on macOS" + (
            "; structural checks: " + "; ".join(checks) if checks else "")
        return row
    res = run_worker(inputs, out, threads, card=Path(art.card), **_worker_kwargs(settings))
    if not res.ok:
        row.status, row.reason = "runtime_failed", res.error
        return row
    row.latency = res.stats
    if res.stats.get("threads_reported") not in (None, threads):
        row.notes.append(f"asked for {threads} threads, runtime reports {res.stats['threads_reported']}")
    outputs = card_outputs(card, config)
    row.parity = parity_block(art.precision, ref, res.predictions, heldout.labels, outputs, settings.thresholds)
    if not row.parity["passed"]:
        row.status = "failed_parity"
        key = str(art.card)
        if settings.localize and key not in divergences:
            divergences[key] = localize_failure(Path(art.card), card, config, ref, res.predictions, heldout)
        row.parity["divergence"] = divergences.get(key)
        div = row.parity["divergence"] or {}
        where = (f"; first diverging layer: {div['layer']} ({div['op']}) rel err {div['rel_err']:.3g}"
                 if div.get("layer") else "")
        row.reason = "; ".join(row.parity["reasons"]) + where
        if art.precision == "fp16" and art.format == "tflite":  # weight-only fp16: fp32 compute
            key16 = f"{key}#fp16"
            if key16 not in divergences:
                divergences[key16] = explain_fp16_failure(config, res.predictions, heldout, outputs, settings)
            row.parity["fp16_weights"] = divergences[key16]
            row.reason += f"; {divergences[key16]['text']}"
    return row


def explain_fp16_failure(config: dict, pred, heldout, outputs, settings) -> dict:
    """neometer.bench.precision on the held-out images; says so when the model cannot be traced."""
    from neometer.bench.precision import explain_fp16, fp16_weight_reference
    from neometer.models.checkpoint import load_checkpoint

    try:
        model, _ = load_checkpoint(config["checkpoint_path"])
        sim = fp16_weight_reference(model, heldout.x)
    except Exception as exc:  # torch.fx cannot trace every backbone; the row keeps its verdict
        return {"converter_exact": None, "text": f"fp16-weight reference not computed ({one_line(exc)})"}
    return explain_fp16(sim, pred, outputs, settings.thresholds)


def converter_label(art: Artifact, card: dict) -> str:
    """The route, plus the I/O type where one route makes two int8 artifacts."""
    conv = card.get("converter") or {}
    label = conv.get("route") or art.route or conv.get("name", "?")
    if art.precision == "int8" and art.format == "tflite":
        label += " int8-io" if (card.get("input") or {}).get("dtype") in ("int8", "uint8") else " float-io"
    return label


def runs_here(art: Artifact) -> bool:
    """Core ML (and ExecuTorch's Core ML delegate) predict only on macOS."""
    on_linux = getattr(art.target, "runs_on_linux", art.format != "coreml")
    return on_linux or platform.system() == "Darwin"


def localize_failure(card_path: Path, card: dict, config: dict, ref, pred, heldout) -> dict:
    """Level 3 on the held-out image whose outputs differ most."""
    from neometer.bench.localize import localize
    from neometer.models.checkpoint import load_checkpoint

    worst = int(np.argmax(np.abs(np.asarray(pred) - ref).max(axis=1)))
    model, _ = load_checkpoint(config["checkpoint_path"])
    return localize(card_path, card, model, heldout.x[worst:worst + 1]).to_dict()


def runtime_name(fmt: str) -> str:
    return {"onnx": "onnxruntime", "tflite": "ai-edge-litert", "executorch": "executorch", "coreml": "coremltools",
            "pytorch": "torch"}.get(fmt, fmt)
