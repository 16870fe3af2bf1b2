"""Develop a 24-megapixel DNG to JPEG: rawdev (bilinear, Malvar) against LibRaw's own pipeline.

Each run is a fresh process (so peak memory is that run's alone): it decodes, develops and writes a
JPEG (quality 92, 4:4:4), timed from just before decoding to after the file is written. The peer is
rawpy's ``postprocess`` (LibRaw AHD, camera white balance, sRGB primaries, the true sRGB curve, no
auto-brightening: the same image rawdev makes) followed by Pillow's JPEG writer.

    python benchmarks/bench_develop.py [--mp 24] [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RUN = r"""
import json, resource, sys, time
which, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np, rawpy, torch
from PIL import Image
import rawdev.pipeline, rawdev.io.write
t0 = time.perf_counter()
if which == "libraw-ahd":
    with rawpy.imread(src) as raw:
        rgb = raw.postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True, output_bps=8,
                              output_color=rawpy.ColorSpace.sRGB, demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD)
    Image.fromarray(rgb).save(dst, "JPEG", quality=92, subsampling=0)
else:
    from rawdev.pipeline import PipelineConfig, develop_to_file
    develop_to_file(src, dst, PipelineConfig(backend=which), quality=92, overwrite=True)
t1 = time.perf_counter()
print(json.dumps({"seconds": t1 - t0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_dng(path: Path, mp: float) -> None:
    import numpy as np

    from rawdev.synthetic import demo_scene, write_dng

    w = int(round((mp * 1e6 * 1.5) ** 0.5)) // 2 * 2
    h = int(round(w / 1.5)) // 2 * 2
    scene = demo_scene(w, h).astype(np.float32)
    write_dng(path, scene, pattern="RGGB", noise_sigma=2.0)


def run(which: str, src: Path, dst: Path, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", RUN, which, str(src), str(dst)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{which} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--dng", type=Path, help="use this DNG instead of a synthetic one")
    ap.add_argument("--make-dng", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_dng:
        make_dng(args.make_dng, args.mp)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = args.dng or tmp / "bench.dng"
        if args.dng is None:
            # In a child process: the scene is large, and a parent's peak RSS would be inherited by
            # the measured runs (Linux keeps ru_maxrss across exec).
            subprocess.run([sys.executable, __file__, "--make-dng", str(src), "--mp", str(args.mp)], check=True)
        import rawpy

        with rawpy.imread(str(src)) as raw:
            size = f"{raw.sizes.width}x{raw.sizes.height}"
        rows = {}
        # Interleave the contenders so that drift in machine load hits all of them alike.
        for _ in range(args.repeat):
            for which in ("libraw-ahd", "bilinear", "malvar", "menon"):
                rows.setdefault(which, []).append(run(which, src, tmp / f"{which}.jpg", args.threads))
    ref = statistics.median(r["seconds"] for r in rows["libraw-ahd"])
    print(f"\n{size} DNG -> JPEG q92, {args.threads} threads, median of {args.repeat} (peak RSS = max)\n")
    print("| pipeline | wall time (s) | x LibRaw AHD | peak memory (MB) |")
    print("|---|---|---|---|")
    for which, rs in rows.items():
        t = statistics.median(r["seconds"] for r in rs)
        m = max(r["peak_mb"] for r in rs)
        name = "rawpy AHD + Pillow JPEG" if which == "libraw-ahd" else f"rawdev {which}"
        print(f"| {name} | {t:.2f} | {t / ref:.2f} | {m:.0f} |")


if __name__ == "__main__":
    main()
