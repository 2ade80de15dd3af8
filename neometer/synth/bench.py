"""Rendering speed of the synthetic engine on one core: `python -m neometer.synth.bench`.
Not a test (timings depend on the machine); reports frames/s of CPU time at 640 px."""

from __future__ import annotations

import argparse
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--width", type=int, default=640, help="long side in px")
    p.add_argument("--recordings", type=int, default=4)
    p.add_argument("--frames", type=int, default=30)
    a = p.parse_args()
    import cv2

    cv2.setNumThreads(1)
    from neometer.synth import render
    from neometer.synth.camera import image_size

    w, h = image_size(a.width, "landscape")
    cpu = wall = 0.0
    n = 0
    for seed in range(a.recordings):
        rec = render.plan_recording(seed, w, h, video=True)
        render.render_at(rec, 0.0, 0)  # the bed texture is built once per recording
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(a.frames):
            render.render_at(rec, i / 15.0, i)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        n += a.frames
    print(f"{n} frames at {w}x{h}: {n / cpu:.1f} frames/s per CPU second ({n / wall:.1f} frames/s wall clock)")


if __name__ == "__main__":
    main()
