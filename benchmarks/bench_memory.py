"""Peak memory of ``rawdev develop`` at several image sizes, against LibRaw's own pipeline, same run.

For each size a synthetic DNG is written (in a child process), then each contender develops it in
a fresh process to a file, and the process's peak resident set size is read
(``ru_maxrss``). Contenders: rawpy's ``postprocess`` (LibRaw AHD, 16-bit) written by tifffile, and
the ``rawdev develop`` command (run in-process through its entry point, so with the CLI's process
settings) with each back-end given, writing the same format and bit depth (16-bit TIFF, or JPEG).

    python benchmarks/bench_memory.py [--mps 12 24 48] [--backends malvar,jdd] [--format tif]

The table gives, per contender, the peak at every size, the largest over the smallest peak
("spread": the issue's goal for a tiled developer is within 1.15) and rawdev's peak over LibRaw's
at the same size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RUN = r"""
import json, resource, sys, time
which, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if which == "libraw-ahd":
    import rawpy, tifffile
    with rawpy.imread(src) as raw:
        rgb = raw.postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True, output_bps=16,
                              output_color=rawpy.ColorSpace.sRGB, demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD)
    if dst.endswith(".tif"):
        tifffile.imwrite(dst, rgb, photometric="rgb")
    else:
        from PIL import Image
        Image.fromarray((rgb >> 8).astype("uint8")).save(dst, quality=92)
else:  # the command a user runs, in this process (so that ru_maxrss is its own)
    from rawdev.cli import main
    sys.argv = ["rawdev", "develop", src, "-o", dst, "--backend", which, "--device", "cpu", "--overwrite",
                "--quiet", "--bits", "16" if dst.endswith(".tif") else "8"]
    try:
        main()
    except SystemExit as e:
        if e.code:
            raise
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(which: str, src: Path, dst: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, which, str(src), str(dst)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{which} failed on {src.name}:\n{out.stderr[-2000:]}")
    dst.unlink(missing_ok=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mps", type=float, nargs="+", default=[12.0, 24.0, 48.0])
    ap.add_argument("--backends", default="malvar,jdd")
    ap.add_argument("--format", default="tif", choices=["tif", "jpg"])
    args = ap.parse_args()
    who = ["libraw-ahd"] + [b.strip() for b in args.backends.split(",") if b.strip()]
    peaks: dict[str, dict[float, dict]] = {w: {} for w in who}
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.mps:
            src = Path(tmp) / f"{mp:g}mp.dng"
            # a child writes the DNG: the scene is large, and ru_maxrss survives exec into the runs
            subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "bench_develop.py"),
                            "--make-dng", str(src), "--mp", str(mp)], check=True)
            for w in who:
                peaks[w][mp] = run(w, src, Path(tmp) / f"out.{args.format}")
                print(f"  {mp:g} MP {w}: {peaks[w][mp]['peak_mb']:.0f} MB, {peaks[w][mp]['seconds']:.1f} s", flush=True)
            src.unlink()
    print(f"\nDNG -> {args.format}, peak RSS (MB) per process, {os.cpu_count()} CPU cores\n")
    print("| pipeline | " + " | ".join(f"{mp:g} MP" for mp in args.mps) + " | spread (max / min) | x LibRaw at "
          + ", ".join(f"{mp:g}" for mp in args.mps) + " MP |")
    print("|---|" + "---|" * (len(args.mps) + 2))
    for w in who:
        p = [peaks[w][mp]["peak_mb"] for mp in args.mps]
        ratios = ", ".join(f"{peaks[w][mp]['peak_mb'] / peaks['libraw-ahd'][mp]['peak_mb']:.2f}" for mp in args.mps)
        name = "rawpy AHD (16-bit) + writer" if w == "libraw-ahd" else f"rawdev {w}"
        print(f"| {name} | " + " | ".join(f"{x:.0f}" for x in p) + f" | {max(p) / min(p):.2f} | {ratios} |")


if __name__ == "__main__":
    main()
