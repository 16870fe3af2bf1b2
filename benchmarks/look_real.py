"""The camera look on real RAW files: mean CIEDE2000 between the developed image (reduced to the embedded
preview's size and aligned to it) and the preview, neutral vs ``--look camera``, and crops side by
side (neutral | camera look | the camera's preview) for docs/images.

    python benchmarks/look_real.py ../shared/raw/*.crw ../shared/raw/*.nef ../shared/raw/*.dng \\
        --crops docs/images

The comparison uses the same alignment as the fit (rawdev.stages.look.align_preview) on all pixels,
clipped ones included, so it is in-sample for the camera look: it says how much of the preview the
fitted model explains, not how well it generalises (tests/test_look.py checks that on other files).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour

    lab = [colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.clip(x, 0, 1))) for x in (a, b)]
    return float(np.mean(colour.delta_E(lab[0], lab[1], method="CIE 2000")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--crops", type=Path, default=None, help="folder for side-by-side crops (PNG)")
    args = ap.parse_args(argv)
    from PIL import Image

    from rawdev.errors import RawdevError
    from rawdev.io.preview import preview_image
    from rawdev.io.raw import read_raw
    from rawdev.pipeline import PipelineConfig, develop_raw
    from rawdev.stages.look import MIN_PREVIEW_SIDE, align_preview, apply_look, fit_look

    print(f"{'file':<40} {'preview':>10} {'neutral dE00':>13} {'camera dE00':>12}")
    for f in args.files:
        try:
            prev = preview_image(f)
        except RawdevError as e:
            print(f"{f.name:<40} {'none':>10}   ({e.reason.split(';')[0]})")
            continue
        size = f"{prev.shape[1]}x{prev.shape[0]}"
        if min(prev.shape[:2]) < MIN_PREVIEW_SIDE:
            print(f"{f.name:<40} {size:>10}   (too small to fit)")
            continue
        neutral = develop_raw(read_raw(f), PipelineConfig(output_bits=None)).image
        camera = apply_look(neutral, fit_look(neutral, prev, source=f.name))
        x_n, y = align_preview(neutral, prev)
        x_c, _ = align_preview(camera, prev)
        print(f"{f.name:<40} {size:>10} {delta_e(x_n, y):>13.2f} {delta_e(x_c, y):>12.2f}")
        if args.crops:
            h, w = y.shape[:2]
            ch, cw = min(h, 240), min(w, 320)  # the middle of the preview, at its resolution
            t, l = (h - ch) // 2, (w - cw) // 2
            tiles = [np.clip(im[t : t + ch, l : l + cw], 0, 1) for im in (x_n, x_c, y)]
            gap = np.ones((ch, 4, 3))
            row = np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1)
            args.crops.mkdir(parents=True, exist_ok=True)
            Image.fromarray((row * 255 + 0.5).astype(np.uint8)).save(args.crops / f"look_{f.stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
