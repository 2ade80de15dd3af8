"""`neometer synth`: write a synthetic newborn dataset, the benchmark set, or a preview sheet."""

from __future__ import annotations

import argparse
from pathlib import Path

from neometer.errors import NeometerError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="dataset folder to write (or the PNG file with --preview)")
    p.add_argument("--infants", type=int, default=None, help="number of infants (default: the preset's, 20 without one)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    p.add_argument("--preset", choices=["bench", "tiny"], default=None,
                   help="bench: the fixed 200-infant benchmark set like the paper's; tiny: a few short low-res clips for CI")
    p.add_argument("--width", type=int, default=None, help="long side of the frames in px (default 640; phone aspect 9:16)")
    p.add_argument("--fps", type=float, default=None, help="video frame rate (default 15)")
    p.add_argument("--rate", action="append", default=[], metavar="CASE=P",
                   help="hard-case rate, e.g. --rate tilt=0.3 (cases: tilt, long_diaper, partial_body, clutter)")
    p.add_argument("--preview", action="store_true", help="write a contact-sheet PNG (12 frames with labels) to --out")
    p.add_argument("--force", action="store_true", help="replace an existing dataset folder written by neometer synth")
    p.add_argument("--workers", type=int, default=1, help="parallel render processes (same bytes as 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _parse_rates(items: list[str]) -> dict:
    from neometer.synth.render import TAGS

    rates, problems = {}, []
    for item in items:
        key, _, value = item.partition("=")
        try:
            v = float(value)
            ok = key in TAGS and 0.0 <= v <= 1.0
        except ValueError:
            ok = False
        if ok:
            rates[key] = v
        else:
            problems.append(f"--rate {item!r}: use CASE=P with CASE in {', '.join(TAGS)} and 0 <= P <= 1")
    if problems:
        raise NeometerError("bad --rate option", problems=problems)
    return rates


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        raise NeometerError("neometer synth: --out is required (a dataset folder, or a .png with --preview)")
    rates = _parse_rates(args.rate)
    if args.preview:
        from neometer.synth.preview import write_preview

        if args.out.suffix.lower() != ".png":
            raise NeometerError(f"{args.out}: --preview writes a PNG; give --out a name ending in .png")
        path = write_preview(args.out, seed=args.seed, long_side=args.width or 480, rates=rates or None)
        print(f"wrote {path}")
        return 0
    from neometer.synth.writer import write_dataset

    out = write_dataset(args.out, n_infants=args.infants, seed=args.seed, preset=args.preset, width=args.width,
                        progress=not args.no_progress, force=args.force, rates=rates or None, fps=args.fps,
                        workers=max(1, args.workers))
    print(f"wrote {out} (manifest.csv, labels.json, videos/, stills/, masks/)")
    return 0
