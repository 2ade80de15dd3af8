"""`neometer data check DIR`: validate a dataset and report every problem at once;
`neometer data hash DIR`: its content hash; `neometer data pack DIR`: the dataset's frame cache
as a few large shard files (for many training processes / machines). None writes inside the
dataset folder."""

from __future__ import annotations

import argparse
import sys

from neometer.errors import NeometerError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate manifest.csv, labels, media and masks; exit 2 on any problem")
    check.add_argument("dataset", metavar="DIR", help="dataset folder holding manifest.csv")
    check.add_argument("--fps", type=float, default=2.0,
                       help="frame sampling rate whose frames must have masks (default 2; 0 = every frame)")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.add_argument("--plot", metavar="PNG", help="also write a PNG of the label distribution "
                       "(height vs weight per recording); must be outside the dataset folder")
    digest = sub.add_parser("hash", help="print the dataset's content hash (manifest + media + masks)")
    digest.add_argument("dataset", metavar="DIR")
    pack = sub.add_parser("pack", help="copy the dataset's cached frames into large shard files "
                          "(fewer files for a shared filesystem; copy the cache folder to each node's disk)")
    pack.add_argument("dataset", metavar="DIR")
    pack.add_argument("--img", type=int, default=224, help="frame size, as `train --img` (default %(default)s)")
    pack.add_argument("--fps", type=float, default=2.0, help="as `train --fps` (default %(default)s)")
    pack.add_argument("--max-frames", type=int, default=None, help="as `train --max-frames`")
    pack.add_argument("--cache-dir", default=None, help="frame cache folder (default: $NEOMETER_CACHE or ~/.cache/neometer)")
    pack.add_argument("--shard-mb", type=float, default=1024, help="target shard size in MB (default %(default)s)")
    pack.add_argument("--keep-entries", action="store_true",
                      help="keep the per-recording cache entries the pack replaces (default: delete them)")
    pack.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.action == "pack":
        return pack(args)
    if args.action == "hash":
        from neometer.data.manifest import dataset_sha256

        print(dataset_sha256(args.dataset))
        return 0
    import os

    # Decoders' own log lines would interleave with the report, which already names every
    # undecodable file with its row; must be set before OpenCV is first imported.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    from neometer.data.manifest import ROW_CONVENTION, check_report

    report = check_report(args.dataset, progress=not args.quiet and sys.stderr.isatty(), fps=args.fps or None)
    print(report.summary())
    if args.plot:
        plot_labels(args.dataset, args.plot)
    if report.problems:
        raise NeometerError(f"{len(report.problems)} problem(s) in {report.dataset_dir} ({ROW_CONVENTION}); "
                            "nothing was changed", problems=report.problems)
    print("ok: no problems found")
    return 0


def pack(args: argparse.Namespace) -> int:
    from pathlib import Path

    from neometer.data.cache import pack_cache
    from neometer.data.preprocess import PreprocessSpec

    problems = [f"--{name} {value}: must be > 0" for name, value in
                (("img", args.img), ("shard-mb", args.shard_mb), ("max-frames", args.max_frames or 1)) if value <= 0]
    if not (Path(args.dataset) / "manifest.csv").is_file():
        problems.append(f"{args.dataset}: no manifest.csv there; point it at a dataset folder")
    if problems:
        raise NeometerError("cannot pack", problems=problems)
    pack_cache(args.dataset, PreprocessSpec(target_size=args.img), args.fps, args.max_frames, args.cache_dir,
               args.shard_mb, args.keep_entries, progress=not args.quiet)
    return 0


def plot_labels(dataset, png) -> None:
    """Scatter of the readable labels, with the plausible ranges shaded."""
    import os
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neometer.data.manifest import HEIGHT_RANGE_CM, WEIGHT_RANGE_KG, _read_rows

    dataset_dir, rows, _ = _read_rows(dataset)
    png = Path(png).absolute()
    if png.is_relative_to(dataset_dir):
        raise NeometerError(f"{png}: the plot must be written outside the dataset folder")
    pts = [(r.height_cm, r.weight_kg) for r in rows if r.height_cm is not None and r.weight_kg is not None]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.axvspan(*HEIGHT_RANGE_CM, color="0.93", zorder=0)
    ax.axhspan(*WEIGHT_RANGE_KG, color="0.93", zorder=0)
    if pts:
        ax.scatter(*zip(*pts), s=12)
    ax.set(xlabel="height (cm)", ylabel="weight (kg)", title=f"{dataset_dir.name}: {len(pts)} labelled recordings")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f"{png.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, png)
