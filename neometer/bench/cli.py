"""`neometer bench` / `python benchmarks.py`: parity and latency of every exported artifact.

With no argument: the demo model, every format and precision of the export table, the
synthetic benchmark set. `python benchmarks.py paper --data DIR` is the training stage's
paper-reproduction report (neometer.train.paper), dispatched from here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neometer.errors import NeometerError

DEVICES = ("host", "browser", "android", "ios")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        values = [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected comma-separated integers, e.g. 1,2,4") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}': thread counts must be >= 1")
    return list(dict.fromkeys(values))


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected comma-separated numbers, e.g. 1,4,6") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint (.safetensors, or a run folder); default: the demo model")
    parser.add_argument("--formats", default="all", help="comma-separated formats of the export table, or 'all' (default)")
    parser.add_argument("--precisions", default="fp32,fp16,int8", help="comma-separated: fp32,fp16,int8 (default all three)")
    parser.add_argument("--converter", default="all",
                        help="'all' (default: every route of the table, compared side by side), 'auto' (export's defaults) or one route")
    parser.add_argument("--artifacts", type=Path, nargs="+", default=None,
                        help="benchmark these model cards (<artifact>.json) instead of exporting from the table")
    parser.add_argument("--data", type=Path, default=None, help="dataset folder; default: the synthetic benchmark set")
    parser.add_argument("--n-images", type=int, default=64, help="held-out images for parity (default 64)")
    parser.add_argument("--threads", type=_ints, default=[1, 4], help="comma-separated thread counts (default 1,4)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs after warm-up, at least (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs (default 5)")
    parser.add_argument("--min-secs", type=float, default=0.0, help="keep running until this many seconds have passed")
    parser.add_argument("--max-secs", type=float, default=30.0, help="stop after this many seconds even if fewer runs")
    parser.add_argument("--e2e-runs", type=int, default=20, help="end-to-end (preprocess + predict) runs (default 20)")
    parser.add_argument("--device", choices=DEVICES, default="host")
    parser.add_argument("--throttle", type=_floats, default=[1.0, 4.0, 6.0], help="browser CPU throttle rates (default 1,4,6)")
    parser.add_argument("--ios-destination", default="platform=macOS", help="xcodebuild -destination (default platform=macOS)")
    parser.add_argument("--threshold", action="append", metavar="KEY=VALUE",
                        help="override a parity threshold, e.g. fp32_max_abs_cm=0.02 (repeatable)")
    parser.add_argument("--export-dir", type=Path, default=None, help="artifact folder (default <checkpoint folder>/export)")
    parser.add_argument("--calib", default=None,
                        help="int8 calibration for missing exports: N synthetic frames or a dataset folder (export's default)")
    parser.add_argument("--no-export", action="store_true", help="only benchmark artifacts already exported")
    parser.add_argument("--no-localize", action="store_true", help="skip the first-diverging-layer search on failures")
    parser.add_argument("--no-reference-latency", action="store_true", help="skip timing PyTorch itself")
    parser.add_argument("--no-card-update", action="store_true", help="do not write the parity verdict into model cards")
    parser.add_argument("--out", type=Path, default=None, help="results root (default benchmarks/results)")
    parser.add_argument("--ci", action="store_true", help="exit 1 when any artifact fails export, runtime or parity")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="bench_command", metavar="{paper,ranks}")
    paper = sub.add_parser("paper", help="the paper-reproduction report (training stage)")
    try:
        from neometer.train import paper as paper_mod  # the training stage owns it
    except ImportError as exc:
        paper.add_argument("rest", nargs=argparse.REMAINDER)
        paper.set_defaults(paper_missing=str(exc))
    else:
        paper_mod.configure(paper)
    from neometer.bench import ranks

    ranks.configure(sub.add_parser("ranks", help="memory the frame table costs each torchrun rank"))


def run(args) -> int:
    if getattr(args, "bench_command", None) == "paper":
        if getattr(args, "paper_missing", None):
            raise NeometerError(f"`benchmarks.py paper` needs neometer.train.paper ({args.paper_missing})")
        from neometer.train import paper

        return int(paper.run(args) or 0)
    if getattr(args, "bench_command", None) == "ranks":
        from neometer.bench import ranks

        return ranks.run(args)
    if args.device == "host":
        return run_host_cli(args)
    return run_device_cli(args)


# --- host ---------------------------------------------------------------------------------

def parse_precisions(text: str) -> list[str]:
    from neometer.bench.host import PRECISIONS

    values = _csv(text)
    bad = [p for p in values if p not in PRECISIONS]
    if bad or not values:
        raise NeometerError(f"--precisions {text}: unknown {', '.join(bad) or 'empty list'}; choose from {', '.join(PRECISIONS)}")
    return values


def resolve_model(args):
    from neometer.models.checkpoint import load_checkpoint, resolve_checkpoint

    checkpoint = resolve_checkpoint(args.weights)
    _, config = load_checkpoint(checkpoint)
    return checkpoint, config


def spec_of(config: dict):
    from neometer.data.preprocess import PreprocessSpec

    if config.get("preprocessing"):
        return PreprocessSpec.from_dict(config["preprocessing"])
    return PreprocessSpec(target_size=int(config.get("img_size", 224)))


def load_heldout(args, config):
    from neometer.bench.heldout import dataset_heldout, synthetic_heldout

    if args.n_images < 2:
        raise NeometerError(f"--n-images {args.n_images}: parity needs at least 2 images")
    spec = spec_of(config)
    if args.data is not None:
        if not Path(args.data).is_dir():
            raise NeometerError(f"--data {args.data}: no such folder; pass a dataset folder with manifest.csv")
        return dataset_heldout(args.data, config, args.n_images, spec, progress=not args.quiet)
    return synthetic_heldout(args.n_images, spec, progress=not args.quiet)


def collect_artifacts(args, checkpoint: Path, config: dict):
    from neometer.bench.host import artifacts_from_cards, ensure_artifacts, select_targets

    if args.artifacts:
        return artifacts_from_cards(args.artifacts)
    formats = None if args.formats.strip() == "all" else _csv(args.formats)
    targets = select_targets(formats, parse_precisions(args.precisions), args.converter)
    out_dir = args.export_dir or checkpoint.parent / "export"
    return ensure_artifacts(checkpoint, config["checkpoint_sha256"], targets, Path(out_dir),
                            allow_export=not args.no_export, progress=not args.quiet, calib=args.calib)


def run_host_cli(args) -> int:
    from neometer.bench import results as res
    from neometer.bench.host import HostSettings, run_host
    from neometer.bench.parity import parse_thresholds
    from neometer.bench.sysinfo import host_device, new_run_id, package_versions, run_block

    thresholds = parse_thresholds(args.threshold)
    parse_precisions(args.precisions)  # bad input fails before any model is loaded
    checkpoint, config = resolve_model(args)
    artifacts = collect_artifacts(args, checkpoint, config)
    heldout = load_heldout(args, config)
    settings = HostSettings(threads=args.threads, runs=args.runs, warmup=args.warmup, e2e_runs=args.e2e_runs,
                            min_secs=args.min_secs, max_secs=args.max_secs, thresholds=thresholds,
                            reference_latency=not args.no_reference_latency, localize=not args.no_localize,
                            progress=not args.quiet)
    rows = run_host(checkpoint, config, artifacts, heldout, settings)
    run = run_block(new_run_id())
    info = {"checkpoint": str(checkpoint), "held_out": heldout.source, "threads": args.threads, "runs": args.runs,
            "warmup": args.warmup, "thresholds": thresholds.to_dict()}
    out = res.write_results(rows, run, host_device(), package_versions(), info, args.out or res.RESULTS_DIR)
    if not args.no_card_update:
        write_verdicts(rows, run)
    return report(rows, out, args.ci)


def write_verdicts(rows, run) -> None:
    from neometer.bench.results import write_parity_to_card

    done = set()
    for r in rows:
        if r.card and r.parity and r.parity.get("passed") is not None and r.card not in done:
            write_parity_to_card(Path(r.card), r.parity, run)
            done.add(r.card)


def report(rows, out: Path, ci: bool) -> int:
    from neometer.bench.results import divergence_lines, text_table

    print(text_table(rows))
    for line in divergence_lines(rows):
        print(line)
    print(f"\nresults: {out}/results.md (json, plot, one result per row in {out}/rows/)")
    failed = [r for r in rows if r.failed]
    if failed:
        print(f"{len(failed)} of {len(rows)} rows failed: " + ", ".join(f"{r.format} {r.precision} t{r.threads}" for r in failed),
              file=sys.stderr)
    return 1 if ci and failed else 0


# --- browser, android, ios ----------------------------------------------------------------

def run_device_cli(args) -> int:
    from neometer.bench import devices
    from neometer.bench import results as res
    from neometer.bench.sysinfo import new_run_id, run_block

    run = run_block(new_run_id())
    out_root = Path(args.out or res.RESULTS_DIR) / run["id"]
    if args.device == "browser":
        devices.check_browser()  # one line and exit 2 before any export work when the script is missing
    elif args.device == "android":
        if devices.shutil.which("adb") is None or not devices.adb_devices():
            raise devices.DeviceUnavailable("no Android phone: adb is missing or `adb devices` lists none")
    elif args.device == "ios" and devices.shutil.which("xcodebuild") is None:
        raise devices.DeviceUnavailable("xcodebuild is not on PATH: --device ios needs macOS with Xcode")
    checkpoint, config = resolve_model(args)
    wanted = {"browser": ["tflite"], "android": ["tflite", "executorch"], "ios": ["coreml"]}[args.device]
    if args.formats == "all":
        args.formats = ",".join(wanted)
    artifacts = [a for a in collect_artifacts(args, checkpoint, config) if a.card is not None]
    if not artifacts:
        raise NeometerError(f"no artifact to run on {args.device}: export one first (python export.py --formats {wanted[0]})")
    out_root.mkdir(parents=True, exist_ok=True)
    results = []
    for art in artifacts:
        card = json.loads(Path(art.card).read_text())
        model = Path(art.card).parent / card["artifact"]["file"]
        if args.device == "browser":
            results += devices.run_browser(model, Path(art.card), args.runs, out_root, args.throttle)
        for t in (args.threads if args.device != "browser" else []):
            out = out_root / f"{args.device}_{model.stem}_t{t}.json"
            if args.device == "android":
                results.append(devices.run_android(model, args.runs, t, out, card=Path(art.card)))
            else:
                results.append(devices.run_ios(model, args.runs, t, out, card=Path(art.card), destination=args.ios_destination))
    rows = [devices.result_to_row(r) for r in results]
    device = results[0]["device"] if results else {"kind": args.device}
    versions = (results[0].get("software") or {}).get("versions") or {}
    out = res.write_results(rows, run, device, versions, {"device": args.device, "runs": args.runs}, args.out or res.RESULTS_DIR,
                            row_results=results)
    return report(rows, out, args.ci)
