"""Which figure to tell jdd-noise: the RMS over the image of the per-pixel encoded noise std
(``rawdev.stages.noise.backend_sigma``, what the pipeline does) against the former one, the
model at 18 % grey through the sRGB curve's slope there; jdd as the peer.

    nice python benchmarks/noise_sigma_mapping.py ../shared/data/mcmaster 4 noisy estimate

Round-trip protocol DNGs (rawdev.evaluate.roundtrip) of the first N photos at the given level,
with (``profile``) or without (``estimate``) NoiseProfile; prints mean PSNR per variant and the
mean figure told (in /255).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import rawdev.pipeline as P
import rawdev.stages.noise as N
from rawdev.evaluate.demosaic import list_images
from rawdev.evaluate.roundtrip import _score, make_roundtrip_dng
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop_raw

RMS = N.backend_sigma


def at_grey(raw, model, gains, *, encoded, step=4):
    """The former figure: the white-balanced green model at 18 % grey, through the curve's slope."""
    if model.source == "--noise":
        return RMS(raw, model, gains, encoded=encoded)
    return model.white_balanced(gains).sigma(0.18, 1) * (N.srgb_slope(0.18) if encoded else 1.0)


def main() -> None:
    folder, n, level, source = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    res: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, f in enumerate(sorted(list_images(folder))[:n]):
            photo = np.asarray(Image.open(f).convert("RGB"))
            h, w = photo.shape[0] // 2 * 2, photo.shape[1] // 2 * 2
            ref = photo[:h, :w].astype(np.float32) / 255
            raw = read_raw(make_roundtrip_dng(photo, i, Path(tmp) / "x.dng", level, noise_profile=source == "profile"))
            for name, fn in [("jdd", None), ("rms", RMS), ("grey", at_grey)]:
                if fn is not None:
                    P.backend_sigma = fn
                r = develop_raw(raw, PipelineConfig(backend="jdd" if fn is None else "jdd-noise", output_bits=None))
                res.setdefault(name, []).append(_score(r.image, ref)[0])
                if fn is not None:
                    res.setdefault(name + " told /255", []).append(r.noise_sigma * 255)
    P.backend_sigma = RMS
    print(folder.name, level, source, {k: round(float(np.mean(v)), 2) for k, v in res.items()})


if __name__ == "__main__":
    main()
