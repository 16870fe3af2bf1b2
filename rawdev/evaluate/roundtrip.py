"""Round-trip evaluation of whole developers: photo -> synthetic DNG -> ``rawdev develop`` -> photo.

Protocol (what ``rawdev eval roundtrip`` runs; the learned-ISP table of docs/benchmarks.md):

1. each 8-bit sRGB photo (Kodak24, McMaster: never used in training) is cropped to even sides and
   linearised with the sRGB EOTF;
2. image ``i`` is written as a Bayer DNG (:func:`rawdev.synthetic.write_dng`: 14-bit, black 512) in
   CFA phase ``PHASES[i % 4]`` with the real camera matrix ``cameras.XYZ_TO_CAMERA[i % 4]`` as
   ColorMatrix1 and the matching AsShotNeutral, so every phase and camera is used equally;
3. ``clean``: no noise; ``noisy``: shot + read noise of variance ``shot * x + read`` on the
   normalised signal. Both record their noise in the DNG NoiseProfile tag, as DNG converters do (the
   clean file's is the 14-bit quantisation floor, 1/12 LSB^2), and noise-aware back-ends read it
   there; with ``--no-noise-profile`` the tag is left out, as in every CR2, NEF, ARW, RAF, ORF and
   RW2, and they estimate the noise from the data (:mod:`rawdev.stages.noise`). Further levels
   (``shot-1e-4`` ... ``shot-1e-2``) span the range with read noise tied to shot noise;
4. the DNG is developed by each back-end with the default neutral settings (camera white balance,
   the file's matrix, sRGB curve), and LibRaw's AHD (``libraw``) the same way;
5. PSNR (peak 1) and SSIM (Wang2004, Gaussian window) of the float output against the photo, without
   a 10-pixel border.

A perfect developer returns the photo exactly (up to the 14-bit quantisation), so the scores measure
demosaicking, denoising and colour errors together.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError

__all__ = ["PHASES", "NOISE_LEVELS", "RoundTripResult", "make_roundtrip_dng", "evaluate_roundtrip"]

PHASES = ("RGGB", "GRBG", "GBRG", "BGGR")
#: name -> (shot, read): the noisy level is Brooks2019's model at shot 5e-3 (read from its
#: log-linear fit, about ISO 3200 on a full-frame sensor).
NOISE_LEVELS = {"clean": (0.0, 0.0), "noisy": (5e-3, 3.2e-5)}


def tied_read(shot: float) -> float:
    """Read-noise variance tied to shot noise as in Brooks et al. 2019's log-linear fit,
    ``log(read) = 2.18 log(shot) + 1.2`` (what their random noise levels are centred on)."""
    return float(np.exp(2.18 * np.log(shot) + 1.2)) if shot > 0 else 0.0


for _shot in (1e-4, 1e-3, 3e-3, 1e-2):
    NOISE_LEVELS[f"shot-{_shot:.0e}"] = (_shot, tied_read(_shot))
#: variance of 14-bit quantisation (white 16383, black 512) on the normalised signal: 1/12 LSB^2
QUANTISATION_VARIANCE = 1.0 / (12 * (16383 - 512) ** 2)
BORDER = 10


@dataclass
class RoundTripResult:
    """Scores per (dataset, noise, method): lists of per-image PSNR / SSIM and seconds."""

    rows: dict = field(default_factory=dict)  # (dataset, noise, method) -> {"psnr": [], "ssim": [], "s": []}

    def add(self, key: tuple[str, str, str], p: float, s: float, sec: float) -> None:
        r = self.rows.setdefault(key, {"psnr": [], "ssim": [], "s": []})
        r["psnr"].append(p)
        r["ssim"].append(s)
        r["s"].append(sec)

    def mean(self, key) -> tuple[float, float]:
        r = self.rows[key]
        return float(np.mean(r["psnr"])), float(np.mean(r["ssim"]))

    def to_json(self) -> dict:
        return {"|".join(k): {**v, "mean_psnr": self.mean(k)[0], "mean_ssim": self.mean(k)[1]}
                for k, v in self.rows.items()}


def make_roundtrip_dng(photo: np.ndarray, index: int, path: Path, noise: str, *, noise_profile: bool = True) -> Path:
    """Write image ``index`` of a set as the protocol's DNG (see the module docstring); without a
    NoiseProfile tag when ``noise_profile`` is False."""
    from ..cameras import XYZ_TO_CAMERA
    from ..synthetic import write_dng

    h, w = photo.shape[0] // 2 * 2, photo.shape[1] // 2 * 2
    srgb = photo[:h, :w, :3].astype(np.float64) / 255.0
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    shot, read = NOISE_LEVELS[noise]
    cams = np.asarray(XYZ_TO_CAMERA)
    return write_dng(path, lin, pattern=PHASES[index % 4], xyz_to_camera=cams[index % len(cams)],
                     shot=shot, read=read, seed=1000 + index, noise_profile_floor=QUANTISATION_VARIANCE,
                     noise_profile=noise_profile)


def _score(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    from ..compare import image_metrics

    b = BORDER
    return image_metrics(out[b:-b, b:-b].astype(np.float32), ref[b:-b, b:-b].astype(np.float32))


def evaluate_roundtrip(
    folders: list[Path],
    methods: list[str],
    noises: list[str] = ("clean", "noisy"),
    *,
    limit: int | None = None,
    device: str = "auto",
    progress=None,
    noise_profile: bool = True,
) -> RoundTripResult:
    """Run the protocol on every photo of ``folders`` for every method (``libraw`` = LibRaw AHD);
    ``noise_profile=False`` writes the DNGs without NoiseProfile."""
    from PIL import Image

    from ..io.raw import read_raw
    from ..pipeline import PipelineConfig, develop_raw
    from .demosaic import list_images

    for n in noises:
        if n not in NOISE_LEVELS:
            raise UsageError(f"unknown noise level {n!r}; expected one of {', '.join(NOISE_LEVELS)}")
    result = RoundTripResult()
    with tempfile.TemporaryDirectory(prefix="rawdev-rt-") as tmp:
        for folder in folders:
            folder = Path(folder)
            # lexicographic order (image i's phase and camera depend on it; the recorded figures used it)
            files = sorted(list_images(folder))[:limit]
            for i, f in enumerate(files):
                photo = np.asarray(Image.open(f).convert("RGB"))
                h, w = photo.shape[0] // 2 * 2, photo.shape[1] // 2 * 2
                ref = photo[:h, :w].astype(np.float32) / 255.0
                for noise in noises:
                    dng = make_roundtrip_dng(photo, i, Path(tmp) / f"{f.stem}_{noise}.dng", noise,
                                             noise_profile=noise_profile)
                    raw = read_raw(dng)
                    for m in methods:
                        cfg = PipelineConfig(backend=m, output_bits=None, device=device)
                        t0 = time.perf_counter()
                        res = develop_raw(raw, cfg)
                        sec = time.perf_counter() - t0
                        p, s = _score(res.image, ref)
                        result.add((folder.name, noise, m), p, s, sec)
                        if progress is not None:
                            progress(f"{folder.name}/{f.name} {noise} {m}: {p:.2f} dB, SSIM {s:.4f}, {sec:.1f} s")
    return result
