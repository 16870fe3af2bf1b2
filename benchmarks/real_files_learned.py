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

    python benchmarks/real_files_learned.py [--backends jdd,jdd-noise,...] [--tile 256] [--no-seams]
        [--crops DIR] [FILES...]

Without ``--backends`` every registered back-end but ``malvar`` runs. ``--crops DIR`` writes, per file,
a PNG of the same 192x192 crops side by side (malvar first, then the back-ends in the order given;
the crop is the 192x192 window of highest luma detail in malvar's render) to look for smears and
casts.

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


def detail_window(img: np.ndarray, side: int) -> tuple[slice, slice]:
    """The ``side`` x ``side`` window (on a grid of half steps) with the most edges: luma gradient
    energy of the image averaged over 4x4 blocks first, so that sensor noise (which a per-pixel
    measure would pick in a flat dark area) does not count; a smear shows on edges and texture."""
    h, w = img.shape[:2]
    side = min(side, h, w)
    y = img.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    h4, w4 = h // 4 * 4, w // 4 * 4
    small = y[:h4, :w4].reshape(h4 // 4, 4, w4 // 4, 4).mean(axis=(1, 3))
    grad = np.zeros_like(small)
    grad[:-1, :-1] = np.abs(np.diff(small, axis=0))[:, :-1] + np.abs(np.diff(small, axis=1))[:-1]
    step = max(1, side // 2)
    best, at = -1.0, (0, 0)
    for y0 in range(0, h - side + 1, step):
        for x0 in range(0, w - side + 1, step):
            e = float(grad[y0 // 4:(y0 + side) // 4, x0 // 4:(x0 + side) // 4].mean())
            if e > best:
                best, at = e, (y0, x0)
    return slice(at[0], at[0] + side), slice(at[1], at[1] + side)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--backends", default=None, help="comma-separated (default: every registered one but malvar)")
    ap.add_argument("--tile", type=int, default=256, help="tile side for the tiled render of blending back-ends")
    ap.add_argument("--no-seams", action="store_true", help="skip the tiled-vs-whole renders (two more develops)")
    ap.add_argument("--crops", type=Path, default=None, help="write side-by-side crops here")
    args = ap.parse_args(argv)

    from rawdev.backends import registry
    from rawdev.io.raw import read_raw
    from rawdev.pipeline import PipelineConfig, develop_raw

    files = args.files or sorted(p for p in SHARED_RAW.glob("*") if p.suffix.lower() != ".md")
    if not files:
        print(f"no files (and {SHARED_RAW} is absent)", file=sys.stderr)
        return 1
    if args.backends is None:
        names = [s.name for s in registry.list_backends() if s.name != "malvar"]
    else:
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
        window = detail_window(ref, 192)
        crops = [ref[window]]
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
            crops.append(img[window])
            if not spec.tile_exact and not args.no_seams:
                tiled = develop_raw(raw, PipelineConfig(backend=name, output_bits=None, tile=args.tile)).image
                whole = develop_raw(raw, PipelineConfig(backend=name, output_bits=None, tile=1 << 16)).image
                seam = f"{psnr(tiled, whole):.2f}"
            print(f"| {f.name} | {raw.meta.cfa.bayer_pattern} | {res.backend} | {worst:+.2f} "
                  f"(R {diff[0]:+.2f}, G {diff[1]:+.2f}, B {diff[2]:+.2f}) | {psnr(img, ref):.2f} | "
                  f"{hf_energy(img) / ref_hf:.2f} | {seam} | {sec:.1f} |", flush=True)
        if args.crops is not None:
            from PIL import Image

            args.crops.mkdir(parents=True, exist_ok=True)
            strip = np.concatenate([np.pad(c, ((0, 0), (0, 4), (0, 0)), constant_values=1.0) for c in crops], axis=1)
            Image.fromarray(np.round(np.clip(strip, 0, 1) * 255).astype(np.uint8)).save(
                args.crops / f"real_{f.stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
