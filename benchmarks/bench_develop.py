"""Develop a 24-megapixel DNG to JPEG as a user does: rawdev's back-ends against LibRaw's AHD path.

Two figures per row, both against the same figure of LibRaw in the same run:

* **whole process**: wall time of a fresh process, from just before it is spawned to its exit, as a
  user runs it: ``rawdev develop FILE -o OUT.jpg -b NAME`` (the CLI, start-up and all), and for LibRaw
  a fresh ``python -c`` that imports rawpy and Pillow, runs ``postprocess`` (AHD, camera white
  balance, sRGB primaries, the true sRGB curve, no auto-brightening: the same image rawdev makes)
  and saves the JPEG;
* **in process**: in another fresh process, the same work timed from just before decoding to after
  the file is written, every import done before the clock starts (what a long-running program pays).

With ``--half-size`` two more rows: ``rawdev develop --half-size`` (one pixel per 2x2 cell, nothing
demosaicked) against the same LibRaw script with ``half_size=True`` (dcraw's ``-h``).

JPEG quality 92, 4:4:4. Peak memory is the whole process's maximum resident set (``wait4``).
Contenders are interleaved, so drift in machine load hits all of them alike; the medians are quoted.

    python benchmarks/bench_develop.py [--mp 24] [--repeat 3] [--backends malvar,malvar-srgb,...] [--half-size]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# In-process timing: everything imported first, then decode + develop + write on the clock.
IN_PROCESS = r"""
import json, sys, time
which, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np, rawpy
from PIL import Image
libraw = which.startswith("libraw-")
if not libraw:
    import torch, rawdev.pipeline, rawdev.io.write
    from rawdev.pipeline import PipelineConfig, develop_to_file
    from rawdev.backends.registry import get
    half = which == "half-size"
    backend = "menon-srgb" if half else which
    get(backend).build(device="cpu")  # runner imports (model code) before the clock, weights loaded again below
t0 = time.perf_counter()
if libraw:
    with rawpy.imread(src) as raw:
        rgb = raw.postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True, output_bps=8,
                              output_color=rawpy.ColorSpace.sRGB, demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
                              half_size=which == "libraw-half")
    Image.fromarray(rgb).save(dst, "JPEG", quality=92, subsampling=0)
else:
    develop_to_file(src, dst, PipelineConfig(backend=backend, device="cpu", half_size=half), quality=92,
                    overwrite=True)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

# LibRaw's path as a user's script: a fresh interpreter that imports what it needs and runs it.
LIBRAW_SCRIPT = r"""
import sys, rawpy
from PIL import Image
with rawpy.imread(sys.argv[1]) as raw:
    rgb = raw.postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True, output_bps=8,
                          output_color=rawpy.ColorSpace.sRGB, demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
                          half_size=sys.argv[3] == "libraw-half")
Image.fromarray(rgb).save(sys.argv[2], "JPEG", quality=92, subsampling=0)
"""


def make_dng(path: Path, mp: float) -> None:
    import numpy as np

    from rawdev.synthetic import demo_scene, write_dng

    w = int(round((mp * 1e6 * 1.5) ** 0.5)) // 2 * 2
    h = int(round(w / 1.5)) // 2 * 2
    scene = demo_scene(w, h).astype(np.float32)
    write_dng(path, scene, pattern="RGGB", noise_sigma=2.0)


def _spawn_rusage(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds from before the spawn to the exit, the child's own peak RSS in MB from ``os.wait4``,
    its stdout) of ``cmd``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:6])} failed:\n{err.read()}")
        return wall, usage.ru_maxrss / 1024, out.read()


def whole(which: str, src: Path, dst: Path, env: dict) -> dict:
    if which.startswith("libraw-"):
        cmd = [sys.executable, "-c", LIBRAW_SCRIPT, str(src), str(dst), which]
    else:
        rawdev = Path(sys.executable).with_name("rawdev")
        cmd = [str(rawdev), "develop", str(src), "-o", str(dst), "--overwrite", "--quiet", "--device", "cpu"]
        cmd += ["--half-size"] if which == "half-size" else ["-b", which]
    wall, peak, _ = _spawn_rusage(cmd, env)
    return {"seconds": wall, "peak_mb": peak}


def in_process(which: str, src: Path, dst: Path, env: dict) -> dict:
    _, _, out = _spawn_rusage([sys.executable, "-c", IN_PROCESS, which, str(src), str(dst)], env)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--backends", default="bilinear,malvar,malvar-srgb,menon,menon-srgb",
                    help="comma-separated rawdev back-ends (LibRaw AHD is always run)")
    ap.add_argument("--dng", type=Path, help="use this DNG instead of a synthetic one")
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    ap.add_argument("--half-size", action="store_true",
                    help="also rawdev --half-size against LibRaw's half_size (each against its own ratio)")
    ap.add_argument("--make-dng", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_dng:
        make_dng(args.make_dng, args.mp)
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    contenders = ["libraw-ahd"] + [b for b in args.backends.split(",") if b]
    if args.half_size:
        contenders += ["libraw-half", "half-size"]
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
        rows: dict[str, dict[str, list]] = {w: {"whole": [], "peak": [], "inproc": []} for w in contenders}
        for _ in range(args.repeat):
            for which in contenders:
                w = whole(which, src, tmp / f"{which}.jpg", env)
                rows[which]["whole"].append(w["seconds"])
                rows[which]["peak"].append(w["peak_mb"])
                rows[which]["inproc"].append(in_process(which, src, tmp / f"{which}-i.jpg", env)["seconds"])
    med = {w: {k: statistics.median(v) for k, v in r.items()} for w, r in rows.items()}
    names = {"libraw-ahd": "rawpy AHD + Pillow JPEG", "libraw-half": "rawpy half_size + Pillow JPEG",
             "half-size": "rawdev --half-size"}
    print(f"\n{size} DNG -> JPEG q92, {args.threads} threads, median of {args.repeat}; load average "
          f"{os.getloadavg()[0]:.1f} at the end; half-size rows against LibRaw's half_size, the others "
          "against its AHD\n")
    print("| pipeline | whole process (s) | x LibRaw | in process (s) | x LibRaw | peak memory (MB) |")
    print("|---|---|---|---|---|---|")
    for which, m in med.items():
        ref = med["libraw-half" if which.endswith("half") or which == "half-size" else "libraw-ahd"]
        name = names.get(which, f"rawdev -b {which}")
        print(f"| {name} | {m['whole']:.2f} | {m['whole'] / ref['whole']:.2f} | {m['inproc']:.2f} | "
              f"{m['inproc'] / ref['inproc']:.2f} | {max(rows[which]['peak']):.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"size": size, "repeat": args.repeat, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
