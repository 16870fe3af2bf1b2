"""Highlight modes on scenes whose true values above the clip point are known, against LibRaw's.

A synthetic DNG (``rawdev.synthetic.write_dng``: camera RGB = linear sRGB, as-shot white balance)
of a sky whose green and blue run past the sensor's clip point towards the right, with a sun disc
far above it in every channel; and the same with a warm light (red and green past it). For every
``--highlights`` mode of rawdev (the default back-end) and LibRaw's ``highlight_mode`` 0 (clip),
1 (unclip), 2 (blend) and 5 (rebuild), the error against the scene over the pixels where some
channel is above white but the sun is not:

* **float**: RMSE of linear sRGB against the scene's true values (rawdev ``--bits 32 --curve
  linear``; LibRaw's 16-bit linear output cannot go above white, so it has no float column);
* **display**: mean absolute error in 8-bit sRGB codes against the scene cut at white per channel
  (what a display shows), and the lowest code inside the sun (its edge left out: 255 is white).
  LibRaw's modes other than clip scale the whole image down so that the highest channel's clip
  point is white (dcraw's convention); its rows are therefore first scaled back to the scene's
  exposure, by the median ratio over the pixels well below white.

    python benchmarks/highlights.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from rawdev.pipeline import develop
from rawdev.stages.tone import srgb_decode, srgb_encode
from rawdev.synthetic import write_dng


def scene(kind: str, h: int = 400, w: int = 600) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    t = xx / w
    if kind == "sky":
        img = np.stack([0.35 + 0.9 * t, 0.5 + 1.2 * t, 0.7 + 1.6 * t], -1) * 0.8
    else:  # a warm light
        img = np.stack([0.6 + 1.8 * t, 0.45 + 1.1 * t, 0.2 + 0.4 * t], -1) * 0.8
    sun = (yy - h // 2) ** 2 + (xx - int(0.8 * w)) ** 2 < (h // 8) ** 2
    img[sun] = 4.0
    return img.astype(np.float32), sun


def libraw(path: Path, mode: int) -> np.ndarray:
    import rawpy

    with rawpy.imread(str(path)) as raw:
        hm = rawpy.HighlightMode(mode) if mode < 3 else rawpy.HighlightMode.Reconstruct(mode)
        out = raw.postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True, output_bps=8,
                              output_color=rawpy.ColorSpace.sRGB, highlight_mode=hm, user_flip=0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sky", "warm light"):
            img, sun = scene(kind)
            path = write_dng(Path(tmp) / f"{kind[:4]}.dng", img, pattern="RGGB")
            over = (img.max(-1) > 1.0) & ~sun
            over[:, :8] = over[:, -8:] = over[:8] = over[-8:] = False
            truth = srgb_encode(np.clip(img, 0, 1)) * 255
            import cv2

            core = cv2.erode(sun.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
            below = img.max(-1) < 0.9
            print(f"\n{kind}: {int(over.sum())} pixels above white outside the sun\n")
            print("| developer | float RMSE (linear) | display error (8-bit codes) | sun's lowest code |")
            print("|---|---|---|---|")
            for mode in ("clip", "blend", "unclip", "reconstruct"):
                f = develop(path, highlights=mode, output_bits=32, curve="linear").image
                d = develop(path, highlights=mode).image
                rmse = float(np.sqrt(np.mean((f[over] - img[over]) ** 2)))
                print(f"| rawdev -H {mode} | {rmse:.3f} | {np.abs(d[over] - truth[over]).mean():.2f} | "
                      f"{int(d[core].min())} |")
            for mode, name in ((0, "clip"), (1, "unclip"), (2, "blend"), (5, "rebuild")):
                lin = srgb_decode(libraw(path, mode) / 255.0)
                scale = float(np.median(np.clip(img[below], 0, 1) / np.maximum(lin[below], 1e-6)))
                d = np.round(srgb_encode(np.clip(lin * scale, 0, 1)) * 255)
                print(f"| LibRaw highlight_mode {mode} ({name}), x{scale:.2f} | - | "
                      f"{np.abs(d[over] - truth[over]).mean():.2f} | {int(d[core].min())} |")


if __name__ == "__main__":
    main()
