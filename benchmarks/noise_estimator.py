"""Accuracy of the noise model estimated from the data (rawdev.stages.noise) on round-trip DNGs
without a NoiseProfile, against the one-figure peer it replaced (Immerkaer 1996 on a green plane).

    nice python benchmarks/noise_estimator.py ../shared/data/cbsd68 [--limit 68]

Each photo i becomes the round-trip protocol's DNG (rawdev.evaluate.roundtrip: CFA phase i % 4,
camera matrix i % 4, 14-bit) at every level: clean and shot 1e-4, 1e-3, 3e-3, 1e-2 with read noise
tied to it (Brooks 2019), written without NoiseProfile. Prints, per level, the median and the
10th-90th percentiles over photos of estimate / truth of the noise std at 18 % grey (green, and all
three colours pooled), the same for the peer, the estimator's seconds per megapixel and, for the
clean files, the figure jdd-noise is told against the level where it is jdd alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rawdev.backends.learned import JDD_NOISE_FADE
from rawdev.evaluate.demosaic import list_images
from rawdev.evaluate.roundtrip import NOISE_LEVELS, QUANTISATION_VARIANCE, make_roundtrip_dng
from rawdev.io.raw import read_raw
from rawdev.stages.noise import SIGMA_GREY, backend_sigma, estimate_noise_model, immerkaer_sigma
from rawdev.stages.normalise import normalise

LEVELS = ["clean", "shot-1e-04", "shot-1e-03", "shot-3e-03", "shot-1e-02"]


def _peer(raw) -> float:
    """Immerkaer's sigma of the first green plane (what rawdev used before the model)."""
    cell = np.asarray(raw.colors[0:2, 0:2])
    dy, dx = [(y, x) for y in range(2) for x in range(2) if cell[y, x] == 1][0]
    plane = normalise(raw.data[dy::2, dx::2], raw.black_map[dy:dy + 1, dx:dx + 1], raw.meta.white_level)
    return immerkaer_sigma(plane)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    files = sorted(list_images(args.folder))[: args.limit]
    torch.set_num_threads(1)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="rawdev-noise-") as tmp:
        for level in LEVELS:
            shot, read = NOISE_LEVELS[level]
            truth = np.sqrt(shot * SIGMA_GREY + read) if shot else np.sqrt(QUANTISATION_VARIANCE)
            g, allc, peer, spmp, told = [], [], [], [], []
            for i, f in enumerate(files):
                photo = np.asarray(Image.open(f).convert("RGB"))
                raw = read_raw(make_roundtrip_dng(photo, i, Path(tmp) / "x.dng", level, noise_profile=False))
                t0 = time.perf_counter()
                model = estimate_noise_model(raw)
                spmp.append((time.perf_counter() - t0) / (raw.data.size / 1e6))
                g.append(model.sigma(SIGMA_GREY, 1) / truth)
                allc += [model.sigma(SIGMA_GREY, c) / truth for c in range(3)]
                peer.append(_peer(raw) / truth)
                wb = raw.meta.camera_wb
                gains = (wb[0], 1.0, wb[2]) if wb else (1.0, 1.0, 1.0)
                told.append(backend_sigma(raw, model, tuple(x / min(gains) for x in gains), encoded=True))
            rows[level] = (truth, g, allc, peer, spmp, told)
    q = lambda v: f"{np.median(v):.3g} ({np.percentile(v, 10):.3g}-{np.percentile(v, 90):.3g})"
    print(f"{len(files)} photos of {args.folder.name}, every CFA phase; estimate / truth of the noise std at 18 % grey,"
          " median (10th-90th percentile)")
    print("| level | truth (std at 18 %) | model, green | model, R G B pooled | Immerkaer (peer), green | s / MP |")
    print("|---|---|---|---|---|---|")
    for level, (truth, g, allc, peer, spmp, _) in rows.items():
        print(f"| {level} | {truth:.3g} | {q(g)} | {q(allc)} | {q(peer)} | {np.median(spmp):.3f} |")
    told = np.array(rows["clean"][5]) * 255
    print(f"\nclean files: jdd-noise told {np.median(told):.2f}/255 median, {told.max():.2f}/255 at most; "
          f"it is jdd alone below {JDD_NOISE_FADE[0] * 255:.2f}/255 ({(told < JDD_NOISE_FADE[0] * 255).mean():.0%} of files)")


if __name__ == "__main__":
    main()
