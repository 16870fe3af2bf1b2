"""Seconds per megapixel and peak memory of every learned back-end, against ``jdd``, in one run.

Each measurement is a fresh process (so peak RSS is that back-end's alone) that develops the same
synthetic DNG to a float image with ``rawdev.develop_raw`` (decode excluded from the time, build of the
back-end included in memory). A warm-up develop of a small crop runs first in the same process, so
the timed run does not pay one-off costs (weights loading, allocator growth). Back-ends alternate
within each repeat, so drift in machine load hits all of them alike.

    python benchmarks/bench_learned.py [--mp 2] [--repeat 2] [--device cpu|cuda] [--backends ...]
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
name, src, device = sys.argv[1], sys.argv[2], sys.argv[3]
import torch
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop_raw
raw = read_raw(src)
cfg = PipelineConfig(backend=name, output_bits=None, device=device)
develop_raw(read_raw(sys.argv[4]), cfg)  # warm-up on a small file
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
develop_raw(raw, cfg)
if device == "cuda":
    torch.cuda.synchronize()
t1 = time.perf_counter()
gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
print(json.dumps({"seconds": t1 - t0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "gpu_mb": gpu}))
"""


def make_dng(path: Path, mp: float) -> None:
    import numpy as np

    from rawdev.synthetic import demo_scene, write_dng

    w = int(round((mp * 1e6 * 1.5) ** 0.5)) // 2 * 2
    h = int(round(w / 1.5)) // 2 * 2
    write_dng(path, demo_scene(w, h).astype(np.float32), pattern="GRBG", shot=1e-3, read=1e-6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backends", default="jdd,jdd-noise,pynet,pynet-ca,cameranet")
    ap.add_argument("--make-dng", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_dng:
        make_dng(args.make_dng, args.mp)
        return
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src, small = tmp / "bench.dng", tmp / "small.dng"
        subprocess.run([sys.executable, __file__, "--make-dng", str(src), "--mp", str(args.mp)], check=True)
        subprocess.run([sys.executable, __file__, "--make-dng", str(small), "--mp", "0.1"], check=True)
        import rawpy

        with rawpy.imread(str(src)) as raw:
            w, h = raw.sizes.width, raw.sizes.height
        for _ in range(args.repeat):
            for name in names:
                out = subprocess.run([sys.executable, "-c", RUN, name, str(src), args.device, str(small)],
                                     capture_output=True, text=True, env=dict(os.environ))
                if out.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{out.stderr[-2000:]}")
                rows.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    mp = w * h / 1e6
    ref = statistics.median(r["seconds"] for r in rows[names[0]])
    print(f"\n{w}x{h} ({mp:.2f} MP) DNG developed on {args.device}, median of {args.repeat}, "
          f"{os.cpu_count()} CPU cores\n")
    print(f"| back-end | s / MP | x {names[0]} | peak RSS (MB) |" + (" peak GPU (MB) |" if args.device == "cuda" else ""))
    print("|---|---|---|---|" + ("---|" if args.device == "cuda" else ""))
    for name, rs in rows.items():
        t = statistics.median(r["seconds"] for r in rs)
        m = max(r["peak_mb"] for r in rs)
        line = f"| {name} | {t / mp:.2f} | {t / ref:.2f} | {m:.0f} |"
        if args.device == "cuda":
            line += f" {max(r['gpu_mb'] or 0 for r in rs):.0f} |"
        print(line)


if __name__ == "__main__":
    main()
