"""Level 3 of parity: when an artifact fails, find the first layer whose output diverges.

The PyTorch reference's every module output is captured with forward hooks; the artifact's
intermediate tensors come from its runtime (onnxruntime: every node output added as a graph
output; LiteRT: `experimental_preserve_all_tensors=True`, int8 tensors dequantised with their
own scale and zero point). Converters fuse and rename layers (BatchNorm folds into the
convolution before it, Conv+ReLU6 becomes one op), so tensors are matched by value, not name:
walking the artifact's ops in execution order, each output is compared with every reference
tensor of the same size (NHWC is transposed to NCHW); a tensor that has no same-size reference
(a reshape, a layout transpose) is skipped. The first op whose output is far from every
reference tensor is where the artifact went wrong, and its op type and name are reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Relative error above which an intermediate tensor counts as diverged, by precision.
DIVERGENCE_TOL = {"fp32": 1e-3, "fp16": 2e-2, "int8": 0.25}


@dataclass
class Divergence:
    layer: str | None
    op: str | None
    rel_err: float | None
    index: int | None  # position among the artifact's ops in execution order
    compared: int  # how many of the artifact's tensors had a reference to compare with
    method: str
    note: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    def message(self) -> str:
        if self.layer is None:
            return f"no diverging layer found ({self.method}, {self.compared} tensors compared)" + (
                f": {self.note}" if self.note else "")
        return f"first diverging layer: {self.layer} ({self.op}) rel err {self.rel_err:.3g}"


def torch_module_outputs(model, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Every module's output on x, in execution order, as float32 NCHW arrays."""
    import torch

    captured, hooks = [], []

    def hook(name):
        def fn(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                captured.append((name, output.detach().float().numpy().copy()))
        return fn

    for name, module in model.named_modules():
        hooks.append(module.register_forward_hook(hook(name or "<model>")))
    try:
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    finally:
        for h in hooks:
            h.remove()
    return captured


def _candidates(t: np.ndarray) -> list[np.ndarray]:
    """The artifact tensor as NCHW-comparable arrays (as is, and NHWC -> NCHW for 4-D)."""
    out = [t]
    if t.ndim == 4:
        out.append(np.transpose(t, (0, 3, 1, 2)))
    return out


def best_match(t: np.ndarray, refs_by_size: dict[int, list[np.ndarray]]) -> float | None:
    """Smallest relative error ||t - r|| / ||r|| over reference tensors r of the same size."""
    refs = refs_by_size.get(int(t.size))
    if not refs:
        return None
    best = np.inf
    for cand in _candidates(t.astype(np.float64)):
        for r in refs:
            if r.shape != cand.shape and r.size == cand.size and r.ndim != cand.ndim:
                r = r.reshape(cand.shape)  # (N, C) vs (N, C, 1, 1) after a flatten
            if r.shape != cand.shape:
                continue
            err = np.linalg.norm(cand - r) / max(np.linalg.norm(r), 1e-12)
            best = min(best, float(err))
    return None if not np.isfinite(best) else best


def first_divergence(artifact_tensors: list[tuple[str, str, np.ndarray]], reference: list[tuple[str, np.ndarray]],
                     tol: float, method: str) -> Divergence:
    """artifact_tensors: (layer name, op type, value) in execution order."""
    refs_by_size: dict[int, list[np.ndarray]] = {}
    for _, r in reference:
        refs_by_size.setdefault(int(r.size), []).append(r.astype(np.float64))
    compared = 0
    for i, (name, op, value) in enumerate(artifact_tensors):
        err = best_match(value, refs_by_size)
        if err is None:
            continue
        compared += 1
        if err > tol:
            return Divergence(name, op, err, i, compared, method)
    return Divergence(None, None, None, None, compared, method)


# --- the artifact's intermediate tensors, per runtime ----------------------------------

def onnx_intermediates(model_path: Path, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """Run the ONNX graph with every node output exposed as a graph output."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    existing = {o.name for o in model.graph.output}
    order = []
    for node in model.graph.node:
        for out in node.output:
            if out and out not in existing:
                model.graph.output.append(onnx.ValueInfoProto(name=out))
                existing.add(out)
            if out:
                order.append((node.name or out, node.op_type, out))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every node's output
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed_name = sess.get_inputs()[0].name
    feed = x.astype(np.float16) if "float16" in sess.get_inputs()[0].type else x.astype(np.float32)
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(names, {feed_name: feed})))
    result = []
    for layer, op, out in order:
        v = values.get(out)
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            result.append((layer, op, v.astype(np.float32)))
    return result


def tflite_intermediates(model_path: Path, x: np.ndarray, layout: str = "NHWC") -> list[tuple[str, str, np.ndarray]]:
    """Run the LiteRT model keeping every tensor, read each op's output in execution order."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_path), experimental_preserve_all_tensors=True, num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    feed = np.transpose(x, (0, 2, 3, 1)) if layout == "NHWC" else x
    feed = _quantize(feed, inp)
    interp.set_tensor(inp["index"], feed.reshape(inp["shape"]))
    interp.invoke()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    result = []
    activations = {inp["index"]}  # tensors that depend on the input image
    for op in interp._get_ops_details():  # noqa: SLF001 - the only way to get execution order
        if not activations.intersection(int(i) for i in op["inputs"]):
            continue  # weights only (e.g. DEQUANTIZE of fp16 weights): no activation to compare
        activations.update(int(i) for i in op["outputs"])
        for idx in op["outputs"]:
            d = details.get(idx)
            if d is None:
                continue
            try:
                value = interp.get_tensor(idx)
            except ValueError:
                continue
            value = _dequantize(value, d)
            if value is not None:
                result.append((d["name"], op["op_name"], value))
    return result


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8):
        scale, zp = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zp), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(value: np.ndarray, detail: dict) -> np.ndarray | None:
    if value.dtype.kind == "f":
        return value.astype(np.float32)
    scale, zp = detail.get("quantization", (0.0, 0))
    if value.dtype in (np.int8, np.uint8, np.int16) and scale:
        return ((value.astype(np.float32) - zp) * scale).astype(np.float32)
    return None  # integer shapes, indices: not activations


def localize(card_path: Path, card: dict, model, x: np.ndarray) -> Divergence:
    """First diverging layer of the artifact described by `card` against the torch `model`."""
    fmt, precision = card.get("format"), card.get("precision", "fp32")
    artifact = Path(card_path).parent / card["artifact"]["file"]
    tol = DIVERGENCE_TOL.get(precision, 1e-3)
    reference = torch_module_outputs(model, x)
    try:
        if fmt == "onnx":
            tensors, method = onnx_intermediates(artifact, x), "onnxruntime intermediate outputs"
        elif fmt == "tflite":
            layout = card.get("input", {}).get("layout", "NHWC")
            tensors, method = tflite_intermediates(artifact, x, layout), "LiteRT preserve_all_tensors"
        else:
            return Divergence(None, None, None, None, 0, "none",
                              f"{fmt} exposes no intermediate tensors to Python here (XNNPACK/Core ML run the graph as one delegate call)")
    except Exception as exc:  # localisation is a diagnostic: report why it could not run
        return Divergence(None, None, None, None, 0, "error", f"{type(exc).__name__}: {exc}"[:300])
    return first_divergence(tensors, reference, tol, method)
