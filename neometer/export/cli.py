"""`neometer export` / `python export.py`: checkpoint -> TFLite, Core ML, ExecuTorch, ONNX.

    python export.py                                  # demo model, every target, fp32/fp16/int8
    python export.py --target tflite --precision int8 --calib 64
    python export.py --weights runs/x/model.safetensors --target onnx --out /tmp/export
    neometer export --list                            # the target table
"""

from __future__ import annotations

import sys
from pathlib import Path

from neometer.errors import NeometerError


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def configure(parser) -> None:
    parser.add_argument("--target", type=_csv, default=["all"], metavar="T[,T]",
                        help="tflite, coreml, executorch, onnx or all (default all)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="regressor checkpoint .safetensors (default models/demo/regressor.safetensors)")
    parser.add_argument("--seg-weights", type=str, default=None,
                        help="segmenter checkpoint (default models/demo/segmenter.safetensors when present; 'none' to skip)")
    parser.add_argument("--precision", type=_csv, default=None, metavar="P[,P]",
                        help="fp32, fp16, int8 (default: every precision each target supports)")
    parser.add_argument("--converter", default="auto",
                        help="route for formats with several (auto = the table's default; e.g. onnx2tf, litert-torch)")
    parser.add_argument("--int8-io", default="int8", choices=("int8", "float", "both"),
                        help="TFLite full-integer int8: int8 input/output tensors, float ones, or both files")
    parser.add_argument("--calib", default=None, metavar="DATASET_OR_N",
                        help="int8 calibration: a dataset folder, or N synthetic frames (default 32 synthetic)")
    parser.add_argument("--calib-count", type=int, default=None, help="frames to take from a --calib dataset (default 32)")
    parser.add_argument("--coreml-image-input", action="store_true",
                        help="Core ML takes an RGB image (ct.ImageType, normalisation inside) instead of a tensor")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default <checkpoint folder>/export/)")
    parser.add_argument("--list", action="store_true", help="print the target table and exit")


def _segmenter_path(arg: str | None) -> Path | None:
    from neometer.models.checkpoint import REPO_ROOT

    if arg is None:
        demo = REPO_ROOT / "models" / "demo" / "segmenter.safetensors"
        return demo if demo.is_file() else None
    if arg.lower() == "none":
        return None
    return Path(arg)


def run(args) -> int:
    from neometer.export.targets import format_table, select_targets

    if args.list:
        print(format_table())
        return 0
    targets = select_targets(args.target, args.precision, args.converter, args.int8_io,
                             explicit_precision=args.precision is not None)
    from neometer.models.checkpoint import resolve_checkpoint

    try:
        weights = resolve_checkpoint(args.weights)
    except NeometerError as exc:
        if args.weights is None:
            raise NeometerError(f"{exc}. The demo model is not in this checkout yet: pass --weights "
                                "a checkpoint written by `python train.py`") from None
        raise
    seg = _segmenter_path(args.seg_weights)
    if seg is not None:
        seg = resolve_checkpoint(seg)
    out_dir = args.out or weights.parent / "export"
    return export_all(weights, seg, targets, out_dir, args.calib, args.calib_count, args.coreml_image_input)


def export_all(weights: Path, seg_weights: Path | None, targets, out_dir: Path, calib=None, calib_count=None,
               coreml_image_input: bool = False) -> int:
    from neometer.export.pipeline import export_checkpoint, link_pipeline, load_model, log, summary_table, write_summary

    results = []
    for label, path in (("regressor", weights), ("segmenter", seg_weights)):
        if path is None:
            continue
        model, config = load_model(path)
        log(f"{label}: {path} ({config.get('backbone', '?')}, role {config.get('role')}) -> {out_dir}")
        results += export_checkpoint(path, targets, out_dir, calib, calib_count, coreml_image_input,
                                     model_config=(model, config))
    link_pipeline(results)
    js, png = write_summary(results, out_dir)
    print(summary_table(results))
    print(f"summary: {js}" + (f", {png}" if png else ""))
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"\n{len(failed)} export(s) failed:", file=sys.stderr)
        for r in failed:
            print(f"  - {r.role} {r.target.format} {r.target.precision} ({r.target.route}): {r.error}", file=sys.stderr)
        return 1
    return 0
