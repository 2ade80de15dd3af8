"""THE table of export targets (as YOLOv5's `export_formats()`): one row per (format,
precision, route). `neometer export` and `neometer bench` both iterate it; adding a format is
one row here, one exporter function in its backend module and one runner class.

Tolerances are the largest |artifact - PyTorch| allowed on calibration images, per output unit
(cm, kg for the regressor; probability for the segmenter's mask). They are set well below the
paper's own errors (MAE 1.1 cm, 0.28 kg) so that a conversion never costs accuracy that matters.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from neometer.errors import NeometerError

FORMATS = ("onnx", "tflite", "executorch", "coreml")
PRECISIONS = ("fp32", "fp16", "int8")

# max |Δ| per output unit
TOL_FP32 = {"cm": 0.01, "kg": 0.002, "probability": 0.002}
TOL_FP16 = {"cm": 0.15, "kg": 0.02, "probability": 0.02}
TOL_INT8 = {"cm": 0.75, "kg": 0.1, "probability": 0.15}
DEFAULT_TOLERANCE = 0.05  # any other unit (relative to nothing: plain max |Δ|)


@dataclass(frozen=True)
class Target:
    format: str  # model card `format`
    precision: str  # fp32 | fp16 | int8
    route: str  # converter route, recorded as card.converter.route
    suffix: str  # artifact file extension
    exporter: str  # "module:function" that writes the artifact
    runner: str  # "module:Class" that runs it (neometer.runtime)
    tolerance: dict = field(default_factory=dict)
    default: bool = True  # the route `--converter auto` picks for this format and precision
    io: str = "float"  # dtype of the model's input/output tensors: float | int8
    tag: str = ""  # file-name tag of a non-default route: regressor_fp32_onnx2tf.tflite
    packages: tuple = ()  # pip packages the converter needs (for the install hint)
    deterministic: bool = True  # the converter writes the same bytes twice
    runs_on_linux: bool = True  # Core ML predicts only on macOS
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.format}:{self.precision}:{self.route}{':int8-io' if self.io == 'int8' and self.precision == 'int8' else ''}"

    def artifact_name(self, role: str) -> str:
        return f"{role}_{self.precision}{self.tag}{self.suffix}"

    def tolerance_for(self, unit: str) -> float:
        return float(self.tolerance.get(unit, DEFAULT_TOLERANCE))

    def exporter_fn(self):
        return _resolve(self.exporter)

    def runner_cls(self):
        return _resolve(self.runner)


def _resolve(ref: str):
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


_TFL = "neometer.runtime.tflite_runner:TFLiteRunner"
_ORT = "neometer.runtime.onnx_runner:OnnxRunner"
_ET = "neometer.runtime.executorch_runner:ExecuTorchRunner"
_CML = "neometer.runtime.coreml_runner:CoreMLRunner"
_LT = ("litert-torch", "ai-edge-litert")
_O2T = ("onnx2tf", "tensorflow", "tf-keras", "onnx", "onnx-graphsurgeon", "sng4onnx", "ai-edge-litert")

TARGETS: tuple[Target, ...] = (
    Target("onnx", "fp32", "torch.onnx", ".onnx", "neometer.export.onnx:export_onnx", _ORT, TOL_FP32,
           packages=("onnx", "onnxruntime"), note="single self-contained file, opset 17"),
    Target("tflite", "fp32", "litert-torch", ".tflite", "neometer.export.tflite:export_litert_torch", _TFL, TOL_FP32,
           packages=_LT, note="NHWC input; matched PyTorch to 1e-6 on MobileNetV2"),
    Target("tflite", "fp32", "onnx2tf", ".tflite", "neometer.export.tflite:export_onnx2tf", _TFL, TOL_FP32,
           default=False, tag="_onnx2tf", packages=_O2T, note="alternative converter, compared by the benchmark"),
    Target("tflite", "fp16", "onnx2tf", ".tflite", "neometer.export.tflite:export_onnx2tf", _TFL, TOL_FP16,
           packages=_O2T, note="fp16 weights, float32 I/O"),
    Target("tflite", "int8", "onnx2tf", ".tflite", "neometer.export.tflite:export_onnx2tf", _TFL, TOL_INT8,
           io="int8", packages=_O2T, note="full-integer, int8 I/O (scale/zero point in the card), per-channel"),
    Target("tflite", "int8", "onnx2tf", ".tflite", "neometer.export.tflite:export_onnx2tf", _TFL, TOL_INT8,
           io="float", tag="_floatio", packages=_O2T, note="full-integer inside, float32 I/O"),
    Target("executorch", "fp32", "xnnpack", ".pte", "neometer.export.executorch:export_executorch", _ET, TOL_FP32,
           packages=("executorch",)),
    Target("executorch", "int8", "xnnpack", ".pte", "neometer.export.executorch:export_executorch", _ET, TOL_INT8,
           packages=("executorch",), note="pt2e, XNNPACK quantizer, symmetric per-channel"),
    Target("executorch", "fp16", "coreml", ".pte", "neometer.export.executorch:export_executorch", _ET, TOL_FP16,
           default=False, tag="_coreml", packages=("executorch", "coremltools"), runs_on_linux=False,
           note="Core ML delegate (iOS/macOS only)"),
    Target("coreml", "fp16", "mlprogram", ".mlpackage", "neometer.export.coreml:export_coreml", _CML, TOL_FP16,
           packages=("coremltools",), runs_on_linux=False, note="ML Program, fp16 compute"),
    Target("coreml", "int8", "mlprogram", ".mlpackage", "neometer.export.coreml:export_coreml", _CML, TOL_INT8,
           packages=("coremltools",), runs_on_linux=False, note="int8 weights (coremltools.optimize), fp16 compute"),
)

CONVERTERS = sorted({t.route for t in TARGETS})


def select_targets(formats: list[str], precisions: list[str] | None = None, converter: str = "auto",
                   int8_io: str = "int8", explicit_precision: bool = False) -> list[Target]:
    """The rows to export. `formats` may hold "all". With `explicit_precision`, a precision a
    requested format cannot do is an error (not silently skipped)."""
    problems = []
    formats = list(FORMATS) if "all" in formats else formats
    for f in formats:
        if f not in FORMATS:
            problems.append(f"unknown target '{f}': choose from {', '.join(FORMATS)} or all")
    precisions = list(precisions or PRECISIONS)
    for p in precisions:
        if p not in PRECISIONS:
            problems.append(f"unknown precision '{p}': choose from {', '.join(PRECISIONS)}")
    if converter != "auto" and converter not in CONVERTERS:
        problems.append(f"unknown converter '{converter}': choose from auto, {', '.join(CONVERTERS)}")
    if int8_io not in ("int8", "float", "both"):
        problems.append(f"unknown --int8-io '{int8_io}': choose int8, float or both")
    if problems:
        raise NeometerError("cannot export", problems=problems)

    chosen = []
    for f in formats:
        rows = [t for t in TARGETS if t.format == f]
        for p in precisions:
            cand = [t for t in rows if t.precision == p]
            if not cand:
                if explicit_precision:
                    can = sorted({t.precision for t in rows}, key=PRECISIONS.index)
                    problems.append(f"target {f} cannot export {p}: it supports {', '.join(can)}")
                continue
            if converter == "auto":
                picked = [t for t in cand if t.default]
            else:
                picked = [t for t in cand if t.route == converter]
            if p == "int8" and int8_io != "both":
                picked = [t for t in picked if t.io == int8_io or t.format != "tflite"]
            if not picked and converter != "auto" and explicit_precision and len(formats) == 1:
                problems.append(f"target {f} {p} has no route '{converter}': routes are "
                                f"{', '.join(sorted({t.route for t in cand}))}")
            chosen += picked
    if converter != "auto" and not chosen and not problems:
        problems.append(f"converter '{converter}' does not serve {', '.join(formats)} "
                        f"{', '.join(precisions)}")
    if problems:
        raise NeometerError("cannot export", problems=problems)
    return chosen


def find_target(fmt: str, precision: str, route: str | None = None, io: str | None = None) -> Target:
    """The row a model card came from (the benchmark looks its tolerance up here)."""
    for t in TARGETS:
        if t.format == fmt and t.precision == precision and (route is None or t.route == route) \
                and (io is None or t.io == io or precision != "int8"):
            return t
    raise NeometerError(f"no export target {fmt} {precision} {route or ''}: see `neometer export --list`")


def target_of_card(card: dict) -> Target:
    io = "int8" if card.get("input", {}).get("dtype") in ("int8", "uint8") else "float"
    return find_target(card["format"], card["precision"], card.get("converter", {}).get("route"), io)


def table_rows() -> list[dict]:
    return [{"format": t.format, "precision": t.precision, "route": t.route, "io": t.io,
             "file": t.artifact_name("regressor"), "default": t.default,
             "tolerance": ", ".join(f"{k} {v:g}" for k, v in t.tolerance.items()),
             "runs_on_linux": t.runs_on_linux, "note": t.note} for t in TARGETS]


def format_table() -> str:
    head = ("target", "precision", "converter", "I/O", "file", "default", "tolerance |Δ|", "note")
    rows = [(r["format"], r["precision"], r["route"], r["io"], r["file"], "yes" if r["default"] else "opt",
             r["tolerance"], r["note"]) for r in table_rows()]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])
