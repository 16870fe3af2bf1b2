"""Where jdd-noise should hand over to jdd: round-trip PSNR at low noise (DNGs with a NoiseProfile)
for jdd and for jdd-noise under two fade ranges (the older 1.5-3/255 and a later 3-6/255).

    nice python benchmarks/jdd_noise_fade.py ../shared/data/kodak24 --limit 3

Protocol levels shot-1e-04 and shot-1e-03 of :mod:`rawdev.evaluate.roundtrip`; prints one table.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import rawdev.backends.learned as learned
from rawdev.evaluate.demosaic import list_images
from rawdev.evaluate.roundtrip import _score, make_roundtrip_dng
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop_raw

LEVELS = ("shot-1e-04", "shot-1e-03")
# (row name, fade range or None for the back-end's own, back-end)
VARIANTS = (("jdd", None, "jdd"), ("jdd-noise, fade 1.5-3/255", (1.5 / 255, 3 / 255), "jdd-noise"),
            ("jdd-noise, fade 3-6/255", (3 / 255, 6 / 255), "jdd-noise"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path, help="folder of photos (PNG/JPEG/TIFF)")
    ap.add_argument("--limit", type=int, default=3, help="first N photos")
    args = ap.parse_args()
    default_fade = learned.JDD_NOISE_FADE
    res: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as t:
        for lvl in LEVELS:
            for i, f in enumerate(sorted(list_images(args.photos))[: args.limit]):
                photo = np.asarray(Image.open(f).convert("RGB"))
                h, w = photo.shape[0] // 2 * 2, photo.shape[1] // 2 * 2
                ref = photo[:h, :w].astype(np.float32) / 255
                raw = read_raw(make_roundtrip_dng(photo, i, Path(t) / "x.dng", lvl, noise_profile=True))
                for name, fade, backend in VARIANTS:
                    learned.JDD_NOISE_FADE = fade or default_fade
                    r = develop_raw(raw, PipelineConfig(backend=backend, output_bits=None, device="cpu"))
                    res.setdefault((lvl, name), []).append(_score(r.image, ref)[0])
    learned.JDD_NOISE_FADE = default_fade
    print(f"| variant | {' | '.join(LEVELS)} |")
    print("|---|" + "---|" * len(LEVELS))
    for name, _, _ in VARIANTS:
        cells = " | ".join(f"{np.mean(res[(lvl, name)]):.2f} dB" for lvl in LEVELS)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
