"""``--size``: what developing from the half-size binning costs in quality, and what it saves in time.

Quality: each photo of a set (Kodak24, McMaster) is written as the round-trip protocol's DNG
(:func:`rawdev.evaluate.roundtrip.make_roundtrip_dng`: every CFA phase, a real camera matrix, clean
or noisy, without NoiseProfile), developed (linear, float) by the default back-end, by cheaper
demosaics and by the half-size binning, and made smaller as ``--size`` does
(:func:`rawdev.stages.resize.resize_linear`); each is scored (PSNR, sRGB, peak 1) against the photo
made smaller the same way on its linear light, without a 4-pixel border, for outputs from half the
photo's long side (the binning's own size) down.

Speed: one 24 MP DNG (``--dng``) developed to JPEG by whole processes: ``rawdev develop --size S``
(which takes the binning) against the full-size develop (what a full demosaic made smaller costs at
least) and ``--half-size``; LibRaw's AHD path (rawpy ``postprocess`` and Pillow in a fresh process,
as ``bench_develop.py`` runs it) and its ``half_size`` in the same run; median of ``--repeat``,
interleaved.

    python benchmarks/resize.py --set ../shared/data/kodak24 --dng /tmp/fast24.dng
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from rawdev.config import PipelineConfig
from rawdev.evaluate.roundtrip import make_roundtrip_dng
from rawdev.io.raw import read_raw
from rawdev.pipeline import develop_raw
from rawdev.stages.resize import fit_within, resize_linear
from rawdev.stages.tone import srgb_decode, srgb_encode

BORDER = 4


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = (x[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64) for x in (a, b))
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


#: how the picture is developed before it is made smaller: (label, PipelineConfig changes)
METHODS = (("menon-srgb (default)", {}), ("menon-srgb, no NR", {"denoise": "off"}), ("malvar", {"backend": "malvar"}),
           ("bilinear", {"backend": "bilinear"}), ("half-size binning", {"half_size": True}))


def quality(folder: Path, fractions: list[float], noise: str) -> dict[float, dict[str, list[float]]]:
    scores: dict[float, dict[str, list[float]]] = {f: {m: [] for m, _ in METHODS} for f in fractions}
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".tif", ".tiff", ".bmp"))
    with tempfile.TemporaryDirectory() as tmp:
        for i, p in enumerate(photos):
            photo = np.asarray(Image.open(p).convert("RGB"))
            photo = photo[: photo.shape[0] // 2 * 2, : photo.shape[1] // 2 * 2]
            raw = read_raw(make_roundtrip_dng(photo, i, Path(tmp) / "rt.dng", noise, noise_profile=False))
            lin = srgb_decode(photo.astype(np.float32) / 255.0)
            developed = {m: develop_raw(raw, PipelineConfig(curve="linear", output_bits=32, **changes)).image
                         for m, changes in METHODS}
            for f in fractions:
                size = fit_within(photo.shape[1], photo.shape[0], (round(photo.shape[1] * f),) * 2)
                want = srgb_encode(np.clip(resize_linear(lin, size), 0, 1))
                for m, img in developed.items():
                    if img.shape[1] >= size[0] and img.shape[0] >= size[1]:  # (the binning is half the size)
                        scores[f][m].append(psnr(srgb_encode(np.clip(resize_linear(img, size), 0, 1)), want))
    return scores


LIBRAW = """
import sys, rawpy
from PIL import Image
with rawpy.imread(sys.argv[1]) as r:
    rgb = r.postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True, half_size=sys.argv[3] == "half")
Image.fromarray(rgb).save(sys.argv[2], quality=92)
"""


def speed(dng: Path, sizes: list[int], repeat: int) -> None:
    from bench_develop import _spawn_rusage  # (this folder is on the path when run as a script)

    rows: dict[str, list[float]] = {}
    peaks: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "o.jpg")
        base = [sys.executable, "-m", "rawdev", "develop", str(dng), "-o", out, "--overwrite", "--quiet"]
        runs = {"rawdev, full size": base, "rawdev --half-size": base + ["--half-size"],
                **{f"rawdev --size {s}": base + ["--size", str(s)] for s in sizes},
                "LibRaw AHD, full size": [sys.executable, "-c", LIBRAW, str(dng), out, "full"],
                "LibRaw half_size": [sys.executable, "-c", LIBRAW, str(dng), out, "half"]}
        for _ in range(repeat):
            for name, cmd in runs.items():
                wall, peak, _ = _spawn_rusage(cmd, dict(os.environ))
                rows.setdefault(name, []).append(wall)
                peaks[name] = max(peak, peaks.get(name, 0.0))
    print(f"\n{dng.name}, whole processes to JPEG q92, median of {repeat}; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  {'':28s} {'seconds':>8s}  {'x rawdev full size':>18s}  {'x LibRaw AHD':>12s}  {'peak MB':>8s}")
    ref = statistics.median(rows["rawdev, full size"])
    libraw = statistics.median(rows["LibRaw AHD, full size"])
    for name, ts in rows.items():
        m = statistics.median(ts)
        print(f"  {name:28s} {m:8.2f}  {m / ref:18.2f}  {m / libraw:12.2f}  {peaks[name]:8.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, action="append", default=[], help="a folder of 8-bit photos (repeatable)")
    ap.add_argument("--fractions", default="0.5,0.33,0.25", help="output long side / photo long side")
    ap.add_argument("--noise", default="clean,noisy")
    ap.add_argument("--dng", type=Path, help="a large DNG for the timing")
    ap.add_argument("--sizes", default="2048,1024")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if a.dng:  # first, while this process is small: a child's peak RSS counts what it inherits at the fork
        speed(a.dng, [int(s) for s in a.sizes.split(",")], a.repeat)
    fractions = [float(f) for f in a.fractions.split(",")]
    for folder in a.set:
        for noise in a.noise.split(","):
            scores = quality(folder, fractions, noise)
            print(f"\n{folder.name}, {noise}, without NoiseProfile: mean PSNR (dB) against the photo made smaller")
            print(f"  {'output / photo':>14s}" + "".join(f"  {m:>20s}" for m, _ in METHODS))
            for f, per in scores.items():
                print(f"  {f:14.2f}" + "".join(f"  {np.mean(v):20.2f}" if v else f"  {'-':>20s}" for v in per.values()))


if __name__ == "__main__":
    main()
