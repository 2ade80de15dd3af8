"""Model cards (contract 1): the sidecar `<artifact>.json` every app shell reads at run time.
Built from the checkpoint config, the exporter's I/O description and the export check; every
card is validated against schemas/model_card.schema.json before it is written."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from neometer.errors import NeometerError

SCHEMA_NAME = "model_card.schema.json"


def schema_path() -> Path:
    here = Path(__file__).resolve().parents[1]
    for cand in (here.parent / "schemas" / SCHEMA_NAME, here / "schemas" / SCHEMA_NAME):
        if cand.is_file():
            return cand
    raise NeometerError(f"{SCHEMA_NAME} not found in schemas/ — the checkout is incomplete")


def load_schema() -> dict:
    return json.loads(schema_path().read_text())


def validate_card(card: dict, where: str = "model card") -> None:
    """Raise NeometerError listing every schema violation."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(card), key=lambda e: list(e.path))
    if errors:
        raise NeometerError(f"{where} does not match {SCHEMA_NAME}",
                            problems=[f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors])


def artifact_sha256(path: str | Path) -> str:
    """sha256 of a file; for a folder (.mlpackage) of its sorted relative paths and contents."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
            h.update(f.read_bytes())
        return h.hexdigest()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def artifact_size(path: str | Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def _repo_relative(path: Path) -> str:
    root = Path(__file__).resolve().parents[2]
    path = Path(path).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def build_card(*, config: dict, spec, target, info: dict, artifact: Path, file_name: str,
               calibration: dict | None, export_check: dict | None = None, pipeline: dict | None = None) -> dict:
    from neometer.export.common import version

    role = config.get("role", "regressor")
    tensor = info["output_tensor"]
    out_q = tensor.get("quantization")
    outputs = []
    for i, o in enumerate(config.get("outputs") or []):
        outputs.append({"name": o["name"], "unit": o.get("unit", ""), "index": i, "tensor": tensor["name"],
                        "shape": o.get("shape") or tensor["shape"], "dtype": tensor.get("dtype", "float32"),
                        "quantization": out_q})
    inp = {k: v for k, v in info["input"].items() if k != "dynamic_batch"}
    inp.setdefault("quantization", None)
    inp.setdefault("kind", "tensor")
    if info["input"].get("dynamic_batch"):
        inp["dynamic_batch"] = True
    converter = dict(info["converter"], route=target.route)
    converter.setdefault("delegate", None)
    card = {
        "schema_version": 1,
        "name": file_name.split(".")[0],
        "role": role,
        "format": target.format,
        "precision": target.precision,
        "converter": converter,
        "versions": dict({"neometer": version("neometer"), "python-export-stage": "neometer.export"},
                         **info.get("versions", {})),
        "artifact": {"file": file_name, "sha256": artifact_sha256(artifact), "size_bytes": artifact_size(artifact)},
        "input": inp,
        "preprocessing": spec.to_dict(),
        "outputs": outputs,
        "output_tensor": {k: tensor[k] for k in ("name", "shape", "layout") if k in tensor},
        "model": {
            "backbone": str(config.get("backbone", config.get("arch", "?"))),
            "width_mult": float(config.get("width_mult", config.get("width", 1.0))),
            "task": str(config.get("task", "?")),
            "source_checkpoint_sha256": config.get("checkpoint_sha256"),
            "training_data_sha256": (config.get("dataset") or {}).get("sha256"),
            "de_standardization_applied": bool((config.get("target_normalization") or {}).get("folded", role == "regressor")),
        },
        "source_checkpoint": {"path": _repo_relative(Path(config["checkpoint_path"])) if config.get("checkpoint_path") else None,
                              "sha256": config.get("checkpoint_sha256")},
        "calibration": calibration,
        "pipeline": pipeline or {"segmenter": None, "regressor": None},
        "metadata": {
            "description": f"neometer {role} ({config.get('backbone', '?')}, {config.get('task', '?')}) "
                           f"as {target.format} {target.precision} via {target.route}",
            "license": config.get("license", "Apache-2.0"),
            "version": str(config.get("version", version("neometer"))),
            "author": "neometer",
        },
        "export_check": export_check,
        "parity": None,
    }
    if role == "regressor":
        from neometer.measure.gates import QualityThresholds

        card["quality"] = QualityThresholds().to_dict()
    if card["model"]["source_checkpoint_sha256"] is None:
        del card["model"]["source_checkpoint_sha256"]
    return card


def write_card(card: dict, path: Path) -> Path:
    """Validate, then write atomically (tmp file, rename)."""
    validate_card(card, str(path))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(path)
    return path


def update_card(path: Path, **fields) -> dict:
    """Merge top-level fields into an existing card (the benchmark writes `parity` this way)."""
    card = json.loads(Path(path).read_text())
    card.update(fields)
    write_card(card, Path(path))
    return card
