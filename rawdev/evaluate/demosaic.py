"""The standard demosaicking protocol: mosaic 8-bit sRGB photos, demosaic, score CPSNR on 8-bit output.

Public objects: :data:`IMAGE_SUFFIXES`, :data:`NOISE_MODELS`, :class:`ImageScore`,
:class:`DemosaicEvaluation`, :func:`list_images`, :func:`load_image`, :func:`add_noise`,
:func:`evaluate_demosaic`.

The protocol, as in DPIR's ``main_dpir_demosaick.py`` (and the calibration runs in
``docs/benchmarks_demosaic_eval.md``):

1. Each 8-bit sRGB photo is scaled to [0, 1] and kept at its original size (odd sizes too).
2. It is sampled with a Bayer CFA (default RGGB, read from the top-left pixel). The mosaic stays
   sRGB-encoded: these data sets have no linear version, and every published number uses them so.
3. Optionally noise is added to the mosaic (see :func:`add_noise`); the noisy mosaic is not clipped.
4. A back-end from the registry demosaics it: ``run = get(name).build(device=...)`` then
   ``run(mosaic (1, 1, H, W), pattern, noise=sigma (1,) or None)``. Learned back-ends receive the noise
   level as the standard deviation in the [0, 1] domain of their input.
5. The output is clipped to [0, 1], rounded (not truncated) to uint8, and scored against the original
   with CPSNR over R, G and B together after dropping ``border`` pixels per side (10 by default, DPIR's
   choice; RSTCANet uses 0).

Nothing here prints; the command line (``rawdev eval demosaic``) formats the result.

References:
    DPIR: K. Zhang, Y. Li, W. Zuo, L. Zhang, L. Van Gool, R. Timofte, "Plug-and-play image restoration
    with deep denoiser prior", IEEE TPAMI 44(10), 2022 (code ``cszn/DPIR``, demosaicking protocol).
    IEC61966: IEC 61966-2-1:1999, the sRGB transfer functions.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import torch

from ..backends import registry
from ..cfa import check_pattern, mosaic as cfa_mosaic
from ..errors import BackendError, InputError, UnsupportedFileError, UsageError
from .metrics import cpsnr, ssim

__all__ = [
    "IMAGE_SUFFIXES",
    "NOISE_MODELS",
    "ImageScore",
    "DemosaicEvaluation",
    "list_images",
    "load_image",
    "add_noise",
    "evaluate_demosaic",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
NoiseModel = Literal["gaussian", "shot-read"]
NOISE_MODELS: tuple[str, ...] = ("gaussian", "shot-read")


@dataclass(frozen=True)
class ImageScore:
    """One image's result. ``seconds`` is the back-end call alone (synchronised on GPUs).

    ``noise_sigma`` is the noise level handed to the back-end (standard deviation in the [0, 1] domain),
    ``None`` for noise-free runs.
    """

    name: str
    height: int
    width: int
    cpsnr: float
    seconds: float
    ssim: float | None = None
    noise_sigma: float | None = None


@dataclass
class DemosaicEvaluation:
    """The settings of a run, its per-image rows and their means."""

    directory: str
    method: str
    pattern: str
    border: int
    noise_model: str | None
    noise_sigma: float
    shot: float
    read: float
    seed: int
    device: str
    rows: list[ImageScore] = field(default_factory=list)
    total_seconds: float = 0.0

    @property
    def mean_cpsnr(self) -> float:
        return float(np.mean([r.cpsnr for r in self.rows])) if self.rows else float("nan")

    @property
    def mean_ssim(self) -> float | None:
        values = [r.ssim for r in self.rows if r.ssim is not None]
        return float(np.mean(values)) if values else None

    @property
    def demosaic_seconds(self) -> float:
        return float(sum(r.seconds for r in self.rows))

    def to_dict(self) -> dict:
        """A JSON-ready dict: the settings, ``rows`` and ``mean``."""
        d = asdict(self)
        d["mean"] = {
            "cpsnr": self.mean_cpsnr,
            "ssim": self.mean_ssim,
            "seconds": self.demosaic_seconds,
            "images": len(self.rows),
        }
        return d


def _natural_key(path: Path):
    # "2.tif" before "10.tif" (McMaster), "kodim02" before "kodim10" either way.
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(directory: str | Path) -> list[Path]:
    """The PNG/TIFF/JPEG files directly inside ``directory``, in natural order.

    Raises:
        InputError: the folder does not exist, is not a folder, or holds no such image.
    """
    d = Path(directory)
    if not d.exists():
        raise InputError("no such folder", d)
    if not d.is_dir():
        raise InputError("not a folder", d)
    files = sorted((p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder", d)
    return files


def load_image(path: str | Path) -> torch.Tensor:
    """Read an 8-bit image as a ``(3, H, W)`` uint8 tensor (grey and palette images become RGB).

    Raises:
        InputError: the file cannot be read; UnsupportedFileError: it is not 8 bits per channel.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            if im.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                raise UnsupportedFileError(f"image mode {im.mode} is not 8-bit RGB or grey", p)
            rgb = np.array(im.convert("RGB"))  # a writable copy for torch
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read image: {err}", p) from err
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def _srgb_decode(v: torch.Tensor) -> torch.Tensor:
    """sRGB EOTF (IEC61966): encoded [0, 1] to linear."""
    return torch.where(v <= 0.04045, v / 12.92, ((v.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def _srgb_encode(x: torch.Tensor) -> torch.Tensor:
    """Inverse sRGB EOTF (IEC61966). The linear segment extends to negative values, so noise below black
    is kept (no clipping), and the curve stays monotonic."""
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def add_noise(
    mosaic: torch.Tensor,
    *,
    model: NoiseModel = "gaussian",
    sigma: float = 0.0,
    shot: float = 0.0,
    read: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add synthetic noise to an sRGB-encoded ``(*, 1, H, W)`` mosaic in [0, 1]; nothing is clipped.

    Models:
        ``"gaussian"``: i.i.d. N(0, (sigma / 255)^2) added to the encoded values, ``sigma`` on the 0-255
        scale, the usual joint demosaicking-denoising setting (Gharbi 2016, Tan 2017).
        ``"shot-read"``: the mosaic is linearised with the sRGB EOTF, Gaussian noise of variance
        ``shot * x + read`` (x linear in [0, 1]; Poisson-like shot noise plus read noise, the model of
        DNG's NoiseProfile) is added, and the result re-encoded.

    The noise is drawn on the CPU from ``generator`` so a seed gives the same noise on every device.

    Returns:
        the noisy mosaic (same dtype and device) and the per-image noise level, shape ``(N,)`` for the
        flattened leading dims: ``sigma / 255`` for Gaussian noise, the RMS of the added noise in the
        encoded domain for shot-read noise (a single number a noise-aware network can use).
    """
    lead = mosaic.shape[:-3]
    flat = mosaic.reshape(-1, *mosaic.shape[-3:])
    eps = torch.randn(flat.shape, generator=generator, dtype=torch.float64).to(device=mosaic.device)
    if model == "gaussian":
        if sigma < 0:
            raise UsageError(f"noise sigma must be >= 0, got {sigma}")
        noisy = flat + (sigma / 255.0) * eps.to(flat.dtype)
        level = torch.full((flat.shape[0],), sigma / 255.0, dtype=torch.float64, device=mosaic.device)
    elif model == "shot-read":
        if shot < 0 or read < 0:
            raise UsageError(f"shot and read variances must be >= 0, got {shot} and {read}")
        lin = _srgb_decode(flat.double())
        lin_noisy = lin + torch.sqrt(shot * lin.clamp_min(0) + read) * eps
        noisy64 = _srgb_encode(lin_noisy)
        level = (noisy64 - flat.double()).square().mean(dim=(-3, -2, -1)).sqrt()
        noisy = noisy64.to(flat.dtype)
    else:
        raise UsageError(f"unknown noise model {model!r}; expected one of {', '.join(NOISE_MODELS)}")
    return noisy.reshape(*lead, *mosaic.shape[-3:]), level


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError("CUDA was asked for but torch sees no GPU on this machine")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UsageError(f"unknown device {device!r}; expected auto, cpu or cuda[:N]")
    return device


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def evaluate_demosaic(
    directory: str | Path,
    method: str,
    *,
    pattern: str = "RGGB",
    border: int = 10,
    noise_sigma: float = 0.0,
    noise_model: NoiseModel = "gaussian",
    shot: float = 0.0,
    read: float = 0.0,
    seed: int = 0,
    device: str = "auto",
    limit: int | None = None,
    with_ssim: bool = False,
    files: Sequence[str | Path] | None = None,
    on_image: Callable[[ImageScore], None] | None = None,
) -> DemosaicEvaluation:
    """Run the demosaicking protocol (module docstring) for back-end ``method`` on the photos in ``directory``.

    Args:
        directory: folder of 8-bit sRGB PNG/TIFF/JPEG photos (e.g. Kodak24, McMaster18).
        method: a registered back-end name (``bilinear``, ``malvar``, ``menon``, learned ones...).
        pattern: the CFA used to sample each photo, from its top-left pixel.
        border: pixels dropped per side before CPSNR.
        noise_sigma: Gaussian noise standard deviation on the 0-255 scale (``noise_model="gaussian"``).
        noise_model: ``"gaussian"`` or ``"shot-read"`` (see :func:`add_noise`).
        shot, read: variance ``shot * x + read`` of the linear-domain noise (``noise_model="shot-read"``).
        seed: image ``i`` (0-based, in natural file order) draws its noise from seed ``seed + i``.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
        limit: score only the first ``limit`` images.
        with_ssim: also compute SSIM (on the same 8-bit images and crop).
        files: score these files instead of listing ``directory``.
        on_image: called with each row as soon as it is scored (progress reporting).

    Returns:
        a :class:`DemosaicEvaluation` with one :class:`ImageScore` per image and the means.

    Raises:
        InputError: missing or empty folder, unreadable image. UnknownBackendError: no such back-end.
        UsageError: inconsistent options, or a back-end that does more than demosaic. BackendError: the
        back-end failed or returned the wrong shape, or CUDA is missing.
    """
    pattern = check_pattern(pattern)
    if border < 0:
        raise UsageError(f"border must be >= 0, got {border}")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be >= 1, got {limit}")
    if noise_model not in NOISE_MODELS:
        raise UsageError(f"unknown noise model {noise_model!r}; expected one of {', '.join(NOISE_MODELS)}")
    if noise_model == "gaussian" and (shot or read):
        raise UsageError("shot and read apply to the shot-read noise model; use noise_sigma for Gaussian noise")
    if noise_model == "shot-read" and noise_sigma:
        raise UsageError("the shot-read noise model takes shot and read, not a Gaussian sigma")
    noisy = noise_sigma > 0 if noise_model == "gaussian" else (shot > 0 or read > 0)

    spec = registry.get(method)
    if tuple(spec.replaces) != ("demosaic",):
        raise UsageError(
            f"back-end {method!r} replaces {', '.join(spec.replaces)}; the demosaic protocol needs a back-end "
            "that only demosaics"
        )
    if "bayer" not in spec.cfa_types:
        raise UsageError(f"back-end {method!r} does not take Bayer mosaics")
    if spec.build is None:
        raise BackendError(f"back-end {method!r} has no build function")
    dev = _resolve_device(device)
    paths = [Path(f) for f in files] if files is not None else list_images(directory)
    if limit is not None:
        paths = paths[:limit]

    t_start = time.perf_counter()
    run = spec.build(device=dev)
    result = DemosaicEvaluation(
        directory=str(directory),
        method=method,
        pattern=pattern,
        border=border,
        noise_model=noise_model if noisy else None,
        noise_sigma=float(noise_sigma),
        shot=float(shot),
        read=float(read),
        seed=seed,
        device=dev,
    )
    for i, path in enumerate(paths):
        target = load_image(path)  # (3, H, W) uint8
        h, w = target.shape[-2:]
        if 2 * border >= min(h, w):
            raise UsageError(f"border {border} leaves nothing of this {w}x{h} image", path)
        clean = cfa_mosaic(target.to(torch.float32).div_(255.0), pattern)[None]  # (1, 1, H, W)
        level = None
        if noisy:
            gen = torch.Generator().manual_seed(seed + i)
            clean, level = add_noise(clean, model=noise_model, sigma=noise_sigma, shot=shot, read=read, generator=gen)
            level = level.to(torch.float32)
        m = clean.to(dev)
        with torch.inference_mode():
            _sync(dev)
            t0 = time.perf_counter()
            try:
                out = run(m, pattern, noise=None if level is None else level.to(dev))
            except RuntimeError as err:  # e.g. CUDA out of memory, a shape a network cannot take
                raise BackendError(f"back-end {method!r} failed: {err}", path) from err
            _sync(dev)
            seconds = time.perf_counter() - t0
        if tuple(out.shape) != (1, 3, h, w):
            raise BackendError(f"back-end {method!r} returned shape {tuple(out.shape)}, expected {(1, 3, h, w)}", path)
        out8 = (out[0].float().clamp(0.0, 1.0) * 255.0).round().to(device="cpu", dtype=torch.uint8)
        score = float(cpsnr(out8, target, border=border))
        s = float(ssim(out8, target, data_range=255.0, border=border)) if with_ssim else None
        row = ImageScore(
            name=path.name,
            height=int(h),
            width=int(w),
            cpsnr=score,
            seconds=seconds,
            ssim=s,
            noise_sigma=None if level is None else float(level[0]),
        )
        result.rows.append(row)
        log.debug("%s: %.3f dB in %.3f s", path.name, score, seconds)
        if on_image is not None:
            on_image(row)
    result.total_seconds = time.perf_counter() - t_start
    return result
