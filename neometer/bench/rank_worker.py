"""One torchrun worker of `benchmarks.py ranks`: `neometer train` with its memory recorded.

Run as a script by torchrun, with NEOMETER_SRC (the checkout to import) and NEOMETER_RANK_STATS
(where to write rank<RANK>.json). Wraps neometer.train.cli.load_table to take the rank's RSS and
USS just before and just after the frame table is built; a thread samples the peaks."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.environ["NEOMETER_SRC"])  # before any neometer import: the code under test

import psutil  # noqa: E402

MB = 2**20
proc = psutil.Process()
peak = {"rss": 0, "uss": 0}


def memory() -> tuple[int, int]:
    info = proc.memory_full_info()
    return info.rss, info.uss


def sample(stop: threading.Event) -> None:
    while not stop.wait(0.2):
        rss, uss = memory()
        peak["rss"], peak["uss"] = max(peak["rss"], rss), max(peak["uss"], uss)


def main() -> int:
    import numpy as np

    import neometer.train.cli as train_cli
    from neometer.cli import main as neometer_main

    stats = {}
    real_load = train_cli.load_table

    def load_table(*a, **k):
        rss0, uss0 = memory()
        t0 = time.perf_counter()
        table = real_load(*a, **k)
        seconds = time.perf_counter() - t0
        rss1, uss1 = memory()
        pixels = sum(int(np.prod(getattr(table, n).shape)) for n in ("images", "masks"))
        stats.update(table_seconds=seconds, table_rss_mb=(rss1 - rss0) / MB, table_uss_mb=(uss1 - uss0) / MB,
                     frames=len(table), table_pixels_mb=pixels / MB, table_type=type(table.images).__name__)
        return table

    train_cli.load_table = load_table
    stop = threading.Event()
    threading.Thread(target=sample, args=(stop,), daemon=True).start()
    code = neometer_main(["train", *sys.argv[1:]])
    stop.set()
    rss, uss = memory()
    stats.update(rank=int(os.environ.get("RANK", "0")), peak_rss_mb=max(peak["rss"], rss) / MB,
                 peak_uss_mb=max(peak["uss"], uss) / MB)
    out = os.path.join(os.environ["NEOMETER_RANK_STATS"], f"rank{stats['rank']}.json")
    with open(out, "w") as f:
        json.dump(stats, f, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
