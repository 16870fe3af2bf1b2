"""Real camera files through the learned back-ends, against the classical render.

For every Bayer file in ../shared/raw (or the files given), develop with ``malvar`` (the classical
reference: same white balance, matrix and curve) and with each learned back-end, then print per file
and back-end:

* the mean colour difference (mean over the image of each channel's signed difference, 8-bit levels,
  the worst channel): a colour cast shows here;
* PSNR against the classical render (dB): how far the learned render strays overall;
* high-frequency energy ratio: the mean squared 3x3 Laplacian of the back-end's render over the
  classical one's (luma): well under 1 is smearing (detail or noise removed), over 1 added detail
  or noise;
* for back-ends that tile with blending (the learned ISPs): PSNR of the default tiled render against
  a whole-image render (one tile): seams show here (the target is >= 45 dB).

    python benchmarks/real_files_learned.py [--backends jdd,jdd-noise,pynet,pynet-ca,cameranet] [--tile 256] [FILES...]

Files that are not Bayer (CMYG, linear DNG) are listed as skipped: LibRaw develops them for every
back-end, so there is nothing to compare.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

SHARED_RAW = Path(__file__).resolve().parents[2] / "shared" / "raw"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1.0 / mse) if mse > 0 else float("inf")


def hf_energy(img: np.ndarray) -> float:
    """Mean squared 4-neighbour Laplacian of the image's luma (Rec. 709 weights)."""
    y = img.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.mean(lap**2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--backends", default="jdd,jdd-noise,pynet,pynet-ca,cameranet")
    ap.add_argument("--tile", type=int, default=256, help="tile side for the tiled render of blending back-ends")
    args = ap.parse_args(argv)

    from rawdev.backends import registry
    from rawdev.io.raw import read_raw
    from rawdev.pipeline import PipelineConfig, develop_raw

    files = args.files or sorted(p for p in SHARED_RAW.glob("*") if p.suffix.lower() != ".md")
    if not files:
        print(f"no files (and {SHARED_RAW} is absent)", file=sys.stderr)
        return 1
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    print("| file | CFA | back-end | mean colour diff vs malvar (8-bit levels, worst channel) | "
          "PSNR vs malvar (dB) | HF energy / malvar's | tiled vs whole (dB) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for f in files:
        raw = read_raw(f)
        kind = raw.meta.cfa.kind
        if kind != "bayer":
            print(f"| {f.name} | {kind} | (all) | skipped: not a Bayer sensor, LibRaw develops it | | | | |")
            continue
        base = PipelineConfig(backend="malvar", output_bits=None)
        ref = develop_raw(raw, base).image
        ref_hf = hf_energy(ref)
        for name in names:
            spec = registry.get(name)
            cfg = PipelineConfig(backend=name, output_bits=None)
            t0 = time.perf_counter()
            res = develop_raw(raw, cfg)
            sec = time.perf_counter() - t0
            img = res.image
            diff = (img.astype(np.float64) - ref).reshape(-1, 3).mean(axis=0) * 255
            worst = diff[np.argmax(np.abs(diff))]
            seam = ""
            if not spec.tile_exact:
                tiled = develop_raw(raw, PipelineConfig(backend=name, output_bits=None, tile=args.tile)).image
                whole = develop_raw(raw, PipelineConfig(backend=name, output_bits=None, tile=1 << 16)).image
                seam = f"{psnr(tiled, whole):.2f}"
            print(f"| {f.name} | {raw.meta.cfa.bayer_pattern} | {res.backend} | {worst:+.2f} "
                  f"(R {diff[0]:+.2f}, G {diff[1]:+.2f}, B {diff[2]:+.2f}) | {psnr(img, ref):.2f} | "
                  f"{hf_energy(img) / ref_hf:.2f} | {seam} | {sec:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
