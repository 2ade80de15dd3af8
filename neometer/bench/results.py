"""Benchmark rows -> the printed table, results.json / results.md / error_vs_latency.png, one
result JSON per row in the shared schema (contract 2), and the parity verdict written back
into each artifact's model card."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from neometer.errors import NeometerError

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

STATUS_TEXT = {"passed": "passed", "failed_parity": "exported but failed parity", "export_failed": "export failed",
               "not_run": "not run", "measured": "measured", "runtime_failed": "runtime failed"}


@dataclass
class Row:
    """One artifact (or the PyTorch reference) at one thread count."""

    format: str
    precision: str
    converter: str
    status: str  # passed | failed_parity | export_failed | not_run | measured | runtime_failed
    reason: str | None = None
    artifact: str | None = None
    card: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    threads: int = 1
    latency: dict | None = None
    parity: dict | None = None
    runtime: str | None = None
    converter_version: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def size_mb(self) -> float | None:
        return None if self.size_bytes is None else self.size_bytes / 1e6

    @property
    def failed(self) -> bool:
        """What --ci counts as a failure: anything that is not a pass or an honest 'cannot run here'."""
        return self.status in ("failed_parity", "export_failed", "runtime_failed")

    def status_text(self) -> str:
        if self.status == "not_run" and self.reason:
            return self.reason  # says itself what was not run and why
        text = STATUS_TEXT.get(self.status, self.status)
        return f"{text}: {self.reason}" if self.reason else text


def schema_status(status: str) -> str:
    # The shared schema has no separate runtime failure: the artifact exists but was not judged.
    return "not_run" if status == "runtime_failed" else status


def result_json(row: Row, run: dict, device: dict, versions: dict) -> dict:
    """One row as a result in the shared schema (schemas/bench_result.schema.json)."""
    lat = row.latency
    latency = None
    if lat:
        latency = {k: lat.get(k) for k in ("warmup", "runs", "p50_ms", "p90_ms", "min_ms", "max_ms")}
        latency.update(threads=row.threads, load_ms=lat.get("load_ms"), mean_ms=lat.get("mean_ms"),
                       end_to_end_p50_ms=lat.get("end_to_end_p50_ms"), peak_memory_mb=lat.get("peak_memory_mb"),
                       threads_reported=lat.get("threads_reported"))
    notes = list(row.notes)
    if row.reason:
        notes.insert(0, row.status_text())
    return {
        "schema_version": 1,
        "run": run,
        "device": device,
        "software": {"runtime": row.runtime or row.format, "runtime_version": versions.get(row.runtime or "", None),
                     "converter": row.converter, "converter_version": row.converter_version, "versions": versions},
        "model": {"artifact": row.artifact, "sha256": row.sha256, "format": row.format, "precision": row.precision,
                  "size_bytes": row.size_bytes},
        "latency": latency,
        "parity": row.parity,
        "status": schema_status(row.status),
        "notes": notes,
    }


def load_schema() -> dict:
    for path in (REPO_ROOT / "schemas" / "bench_result.schema.json",
                 Path(__file__).resolve().parents[1] / "schemas" / "bench_result.schema.json"):
        if path.is_file():
            return json.loads(path.read_text())
    raise NeometerError("schemas/bench_result.schema.json not found; reinstall neometer from the repository")


def validate_result(result: dict, where: str = "result") -> None:
    """Raise NeometerError listing every way `result` breaks the shared schema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    problems = [f"{where}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in sorted(validator.iter_errors(result), key=lambda e: list(map(str, e.absolute_path)))]
    if problems:
        raise NeometerError(f"{where} does not follow schemas/bench_result.schema.json", problems=problems)


# --- the table -------------------------------------------------------------------------

COLUMNS = ("format", "precision", "converter", "threads", "status", "size MB", "height MAE cm", "weight MAE kg",
           "max |Δ| cm", "max |Δ| kg", "load ms", "p50 ms", "p90 ms", "e2e p50 ms", "peak MB")


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{max(digits - 2, 1)}f}"
    return str(value)


def table_cells(row: Row) -> list[str]:
    par = row.parity or {}
    raw, task = par.get("raw") or {}, par.get("task") or {}
    lat = row.latency or {}
    return [row.format, row.precision, row.converter, str(row.threads), row.status_text(), _fmt(row.size_mb),
            _fmt(task.get("mae_height_cm")), _fmt(task.get("mae_weight_kg")), _fmt(raw.get("max_abs_cm")),
            _fmt(raw.get("max_abs_kg")), _fmt(lat.get("load_ms")), _fmt(lat.get("p50_ms")), _fmt(lat.get("p90_ms")),
            _fmt(lat.get("end_to_end_p50_ms")), _fmt(lat.get("peak_memory_mb"))]


def text_table(rows: list[Row]) -> str:
    cells = [list(COLUMNS)] + [table_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    widths[4] = min(widths[4], 60)  # long failure reasons wrap in the Markdown, not the terminal
    lines = []
    for k, c in enumerate(cells):
        lines.append("  ".join((v if i != 4 or len(v) <= 60 else v[:57] + "...").ljust(widths[i]) for i, v in enumerate(c)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| " + " | ".join(esc(c) for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(esc(c) for c in table_cells(r)) + " |" for r in rows]
    return "\n".join(out)


def divergence_lines(rows: list[Row]) -> list[str]:
    lines = []
    for r in rows:
        div = (r.parity or {}).get("divergence")
        if div:
            where = f"{div['layer']} ({div['op']}) rel err {div['rel_err']:.3g}" if div.get("layer") else (
                f"not localised: {div.get('note') or div.get('method')}")
            lines.append(f"{r.format} {r.precision}: first diverging layer: {where}")
        fp16 = (r.parity or {}).get("fp16_weights")
        if fp16:  # whether that layer is a converter bug or fp16 rounding showing first
            lines.append(f"{r.format} {r.precision}: {fp16['text']}")
    return lines


def markdown_report(rows: list[Row], run: dict, device: dict, versions: dict, settings: dict) -> str:
    soft = ", ".join(f"{k} {v}" for k, v in versions.items())
    flags = " ".join(device.get("cpu_flags") or []) or "–"
    parts = [f"# Benchmark {run['id']}", "",
             f"- date: {run['date']}; git {run.get('git_commit') or 'no commit'}"
             f"{' (dirty tree)' if run.get('git_dirty') else ''}",
             f"- device: {device['kind']}, {device.get('cpu')}, {device.get('cores')} cores, flags: {flags}, {device.get('os')}",
             f"- software: {soft}",
             "- settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), "",
             markdown_table(rows), ""]
    div = divergence_lines(rows)
    if div:
        parts += ["## Failed parity, localised", ""] + [f"- {d}" for d in div] + [""]
    parts += ["![error against latency](error_vs_latency.png)", "",
              "How to read this table: benchmarks/README.md", ""]
    return "\n".join(parts)


def plot_error_vs_latency(rows: list[Row], path: Path) -> None:
    """Max |Δ| against PyTorch (cm, kg; log scale) against p50 latency, one point per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    gates: dict[str, list] = {}
    for r in rows:  # the max |Δ| gates of the precisions present (int8 is judged on MAE instead)
        th = (r.parity or {}).get("threshold") or {}
        if th.get("metric") == "max_abs":
            for unit in ("cm", "kg"):
                if (r.precision, th[unit]) not in gates.setdefault(unit, []):
                    gates[unit].append((r.precision, th[unit]))
    markers = {"passed": "o", "failed_parity": "x", "not_run": "s", "measured": "*", "runtime_failed": "v"}
    for ax, unit in zip(axes, ("cm", "kg")):
        for r in rows:
            lat = (r.latency or {}).get("p50_ms")
            err = ((r.parity or {}).get("raw") or {}).get(f"max_abs_{unit}")
            if lat is None:
                continue
            if r.status == "measured":
                err = None
            y = max(err, 1e-7) if err is not None else 1e-7  # the reference (and exact matches) sit on the floor
            ax.scatter(lat, y, marker=markers.get(r.status, "o"), s=60,
                       color="tab:red" if r.status == "failed_parity" else "tab:blue")
            ax.annotate(f"{r.format} {r.precision} t{r.threads}", (lat, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        for label, limit in gates.get(unit, []):
            ax.axhline(limit, linestyle="--", linewidth=0.8, color="gray")
            ax.text(ax.get_xlim()[0], limit, f" {label} gate", fontsize=7, va="bottom", color="gray")
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xlabel("p50 latency (ms, model only, log)")
        ax.set_ylabel(f"max |Δ| vs PyTorch ({unit})")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("error against latency (x = failed parity; floor = identical to PyTorch or reference)")
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text))


def write_results(rows: list[Row], run: dict, device: dict, versions: dict, settings: dict,
                  out_root: Path = RESULTS_DIR, row_results: list[dict] | None = None) -> Path:
    """benchmarks/results/<run id>/{results.json, results.md, error_vs_latency.png, rows/*.json}
    and benchmarks/results/latest.md. Every per-row result is validated against the schema."""
    out = Path(out_root) / run["id"]
    (out / "rows").mkdir(parents=True, exist_ok=True)
    # A shell's own result (browser, phone) is kept as it wrote it: its device block is the truth.
    results = row_results if row_results is not None else [result_json(r, run, device, versions) for r in rows]
    for i, (r, res) in enumerate(zip(rows, results)):
        validate_result(res, f"row {i} ({r.format} {r.precision})")
        name = f"{i:02d}_{r.format}_{r.precision}_t{r.threads}.json"
        write_text(out / "rows" / name, json.dumps(res, indent=2) + "\n")
    summary = {"run": run, "device": device, "versions": versions, "settings": settings, "results": results}
    write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    md = markdown_report(rows, run, device, versions, settings)
    write_text(out / "results.md", md)
    plot_error_vs_latency(rows, out / "error_vs_latency.png")
    write_text(Path(out_root) / "latest.md", md.replace("](error_vs_latency.png)", f"]({run['id']}/error_vs_latency.png)"))
    return out


def write_parity_to_card(card_path: Path, parity: dict, run: dict) -> None:
    """The benchmark's verdict goes into the artifact's model card (`parity` block)."""
    card = json.loads(Path(card_path).read_text())
    card["parity"] = {"passed": parity.get("passed"), "run_id": run["id"], "date": run["date"],
                      "git_commit": run.get("git_commit"), "raw": parity.get("raw"), "task": parity.get("task"),
                      "threshold": parity.get("threshold"), "divergence": parity.get("divergence")}
    write_text(Path(card_path), json.dumps(card, indent=2) + "\n")
