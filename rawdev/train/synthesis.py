"""Synthetic RAW training data from sRGB photos: unprocessing, random cameras and sensor noise.

The inverse of a camera pipeline, after Brooks2019 ("unprocessing"), made reusable by every learned
back-end's trainer (jdd-noise now; PyNET / CameraNet style trainers later). From an 8-bit sRGB photo
patch in [0, 1] it builds, per image and with every random draw taken from an explicit
:class:`torch.Generator`:

1. linear sRGB: the inverse sRGB transfer function (IEC 61966-2-1 EOTF), optionally after Brooks'
   inverse smoothstep tone curve (``tone=True``);
2. linear camera RGB: a random XYZ -> camera matrix (a random convex mix of the real cameras in
   :data:`CAMERA_XYZ_TO_CAM`) times sRGB -> XYZ, rows normalised to sum 1 so white stays white;
3. un-white-balanced, darkened camera RGB: divided by random red / blue white-balance gains and a random
   brightness gain, with Brooks' highlight-preserving blend;
4. a Bayer mosaic of a chosen (or random) phase;
5. heteroscedastic sensor noise, variance ``shot * x + read`` on the clean linear mosaic (Brooks2019
   Sec. 3.2; learned_backends.md Sec. 5.7), with Brooks' log-linked random shot / read levels.

:func:`unprocess` returns every intermediate and every parameter, so a trainer can pick its input (the
noisy mosaic) and its target (the clean mosaic for a denoiser, linear camera RGB for a Restore-Net,
linear or encoded sRGB for an end-to-end network) and knows the exact white-balance gains and colour
matrix of each sample.

The jdd-noise recipe (:mod:`rawdev.train.jdd`) does *not* unprocess: demosaicnet's domain is the
white-balanced, sRGB-encoded mosaic, which an sRGB photo already is. It uses :func:`sample_sigmas`,
:func:`add_gaussian_noise` and, optionally, :func:`srgb_equivalent_noise` (shot + read noise made in
the linear domain and carried through the sRGB curve).

Shape:
    images ``(N, 3, H, W)``, mosaics ``(N, 1, H, W)``, per-image parameters ``(N,)`` or ``(N, 3, 3)``;
    H and W even.

References:
    Brooks2019: T. Brooks, B. Mildenhall, T. Xue, J. Chen, D. Sharlet, J. T. Barron. "Unprocessing
    Images for Learned Raw Denoising". CVPR 2019. Reference code:
    google-research/google-research ``unprocessing/unprocess.py`` (Apache-2.0); the four XYZ -> camera
    matrices and every distribution below are that file's.
    IEC61966: IEC 61966-2-1:1999, the sRGB colour space.
    dcraw: D. Coffin, ``dcraw.c`` ``adobe_coeff()``: XYZ -> camera matrices (x 10000) of real cameras,
    from Adobe DNG Converter.
"""

from __future__ import annotations

import math

import torch

from ..cfa import check_pattern, mosaic
from ..errors import UsageError
from ..types import BAYER_PATTERNS

__all__ = [
    "SRGB_TO_XYZ",
    "CAMERA_XYZ_TO_CAM",
    "decode_srgb",
    "encode_srgb",
    "encode_srgb_slope",
    "smoothstep",
    "inverse_smoothstep",
    "random_rgb_to_cam",
    "random_gains",
    "random_noise_levels",
    "apply_inverse_gains",
    "add_shot_read_noise",
    "add_gaussian_noise",
    "sample_sigmas",
    "srgb_equivalent_noise",
    "unprocess",
]

#: Linear sRGB (D65) -> CIE XYZ, IEC61966.
SRGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)

#: XYZ -> camera matrices of real sensors (rows: camera R, G, B). The first four are Brooks2019's
#: (Darmstadt Noise Dataset cameras); the others are dcraw's ``adobe_coeff`` entries divided by 10000.
CAMERA_XYZ_TO_CAM: dict[str, tuple[tuple[float, float, float], ...]] = {
    "brooks2019_1": ((1.0234, -0.2969, -0.2266), (-0.5625, 1.6328, -0.0469), (-0.0703, 0.2188, 0.6406)),
    "brooks2019_2": ((0.4913, -0.0541, -0.0202), (-0.613, 1.3513, 0.2906), (-0.1564, 0.2151, 0.7183)),
    "brooks2019_3": ((0.838, -0.263, -0.0639), (-0.2887, 1.0725, 0.2496), (-0.0627, 0.1427, 0.5438)),
    "brooks2019_4": ((0.6596, -0.2079, -0.0562), (-0.4782, 1.3016, 0.1933), (-0.097, 0.1581, 0.5181)),
    "Canon EOS 5D Mark II": ((0.4716, 0.0603, -0.0830), (-0.7798, 1.5474, 0.2480), (-0.1496, 0.1937, 0.6651)),
    "Canon EOS 6D": ((0.7034, -0.0804, -0.1014), (-0.4420, 1.2564, 0.2058), (-0.0851, 0.1994, 0.5758)),
    "Nikon D700": ((0.8139, -0.2171, -0.0663), (-0.8747, 1.6541, 0.2295), (-0.1925, 0.2008, 0.8093)),
    "Nikon D750": ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086)),
}


def _check_image(x: torch.Tensor, name: str = "image") -> None:
    if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise UsageError(f"{name} must be a (N, 3, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise UsageError(f"{name} must be floating point, got {x.dtype}")


def decode_srgb(encoded: torch.Tensor) -> torch.Tensor:
    """The sRGB EOTF (IEC61966): encoded values to linear light; odd-symmetric, not clipped.

    >>> round(float(decode_srgb(torch.tensor(0.5))), 4)
    0.214
    """
    a = encoded.abs()
    lin = torch.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return torch.sign(encoded) * lin


def encode_srgb(linear: torch.Tensor) -> torch.Tensor:
    """The inverse sRGB EOTF (IEC61966): linear light to encoded values; odd-symmetric, not clipped.

    >>> round(float(encode_srgb(torch.tensor(0.214))), 3)
    0.5
    """
    a = linear.abs()
    enc = torch.where(a <= 0.0031308, a * 12.92, 1.055 * a.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)
    return torch.sign(linear) * enc


def encode_srgb_slope(linear: torch.Tensor) -> torch.Tensor:
    """d encode_srgb / d linear at ``|linear|``: how a small linear noise std scales when encoded."""
    a = linear.abs()
    return torch.where(a <= 0.0031308, torch.full_like(a, 12.92),
                       (1.055 / 2.4) * a.clamp_min(0.0031308) ** (1 / 2.4 - 1))


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """Brooks2019's global tone curve ``3x^2 - 2x^3`` on [0, 1] (inputs clipped to [0, 1])."""
    x = x.clamp(0.0, 1.0)
    return 3 * x**2 - 2 * x**3


def inverse_smoothstep(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`smoothstep`: ``0.5 - sin(asin(1 - 2y) / 3)`` (inputs clipped to [0, 1])."""
    y = y.clamp(0.0, 1.0)
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y) / 3.0)


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)


def random_rgb_to_cam(
    n: int,
    *,
    generator: torch.Generator | None = None,
    device=None,
    cameras: dict[str, tuple] | None = None,
) -> torch.Tensor:
    """``(n, 3, 3)`` random linear sRGB -> camera RGB matrices (Brooks2019 Sec. 3.1).

    Each is a random convex combination of the XYZ -> camera matrices of ``cameras`` (default
    :data:`CAMERA_XYZ_TO_CAM`), times :data:`SRGB_TO_XYZ`, each row normalised to sum 1 (white maps to
    white). Camera RGB -> sRGB is its inverse.
    """
    table = CAMERA_XYZ_TO_CAM if cameras is None else cameras
    if not table:
        raise UsageError("no camera matrices to mix")
    mats = torch.tensor(list(table.values()), dtype=torch.float32, device=device)  # (K, 3, 3)
    w = torch.rand(n, mats.shape[0], generator=generator, device=device) + 1e-8
    w = w / w.sum(dim=1, keepdim=True)
    xyz_to_cam = torch.einsum("nk,kij->nij", w, mats)
    rgb_to_cam = xyz_to_cam @ torch.tensor(SRGB_TO_XYZ, dtype=torch.float32, device=device)
    return rgb_to_cam / rgb_to_cam.sum(dim=2, keepdim=True)


def random_gains(
    n: int, *, generator: torch.Generator | None = None, device=None
) -> dict[str, torch.Tensor]:
    """Random per-image gains (Brooks2019): ``red`` U(1.9, 2.4), ``blue`` U(1.5, 1.9) white-balance
    gains and ``brightness`` = 1 / N(0.8, 0.1^2); each ``(n,)``.

    The unprocessed image is the photo *divided* by these gains; a camera pipeline multiplies them back.
    """
    red = _uniform(n, 1.9, 2.4, generator, device)
    blue = _uniform(n, 1.5, 1.9, generator, device)
    bright = 0.8 + 0.1 * torch.randn(n, generator=generator, device=device)
    brightness = 1.0 / bright.clamp_min(0.3)  # N(0.8, 0.1) is > 0.3 at 5 sigma; guard anyway
    return {"red": red, "blue": blue, "brightness": brightness}


def random_noise_levels(
    n: int,
    *,
    generator: torch.Generator | None = None,
    device=None,
    shot_range: tuple[float, float] = (1e-4, 0.012),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brooks2019's random ``(shot, read)`` variance coefficients, each ``(n,)``.

    ``ln shot ~ U(ln lo, ln hi)`` and ``ln read = 2.18 ln shot + 1.20 + N(0, 0.26^2)``: the read noise
    is tied to the shot noise as in real sensors across ISO settings. Noise variance is then
    ``shot * x + read`` on clean linear [0, 1] data.
    """
    lo, hi = shot_range
    if not 0 < lo <= hi:
        raise UsageError(f"shot_range must satisfy 0 < lo <= hi, got {shot_range}")
    log_shot = _uniform(n, math.log(lo), math.log(hi), generator, device)
    log_read = 2.18 * log_shot + 1.20 + 0.26 * torch.randn(n, generator=generator, device=device)
    return log_shot.exp(), log_read.exp()


def apply_inverse_gains(
    linear_cam: torch.Tensor, red: torch.Tensor, blue: torch.Tensor, brightness: torch.Tensor
) -> torch.Tensor:
    """Divide by white-balance and brightness gains, sparing highlights (Brooks2019 ``safe_invert_gains``).

    The factor per channel is ``g = [1/red, 1, 1/blue] / brightness``; where the pixel's channel mean
    approaches 1 it blends towards 1 (``m = (max(mean - 0.9, 0) / 0.1)^2``, factor ``max(m + (1-m) g, g)``)
    so that clipped highlights stay white instead of turning coloured after re-white-balancing.
    """
    _check_image(linear_cam, "linear_cam")
    ones = torch.ones_like(red)
    g = torch.stack([1.0 / red, ones, 1.0 / blue], dim=1) / brightness[:, None]  # (N, 3)
    g = g[:, :, None, None]
    gray = linear_cam.mean(dim=1, keepdim=True)
    m = ((gray - 0.9).clamp_min(0.0) / 0.1) ** 2
    factor = torch.maximum(m + (1.0 - m) * g, g)
    return linear_cam * factor


def add_shot_read_noise(
    clean: torch.Tensor,
    shot: torch.Tensor,
    read: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``clean + N(0, shot * clean + read)`` per pixel; ``shot``, ``read`` are ``(N,)``. Not clipped."""
    view = (-1,) + (1,) * (clean.dim() - 1)
    var = (shot.reshape(view) * clean.clamp_min(0.0) + read.reshape(view)).clamp_min(0.0)
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return clean + noise * var.sqrt()


def add_gaussian_noise(
    clean: torch.Tensor, sigma: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``clean + N(0, sigma^2)`` with one ``sigma`` per image (``(N,)``). Not clipped."""
    view = (-1,) + (1,) * (clean.dim() - 1)
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return clean + noise * sigma.reshape(view).to(clean.dtype)


def sample_sigmas(
    n: int,
    *,
    sigma_max: float = 20 / 255,
    p_zero: float = 0.2,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """``(n,)`` noise standard deviations: exactly 0 with probability ``p_zero``, else U(0, sigma_max).

    Gharbi2016 trained its noise-aware model with sigma ~ U[0, 20/255] in the sRGB-encoded domain; the
    extra mass at zero keeps the noise-free quality of a fine-tuned model.
    """
    if not 0.0 <= p_zero <= 1.0:
        raise UsageError(f"p_zero must lie in [0, 1], got {p_zero}")
    if sigma_max < 0:
        raise UsageError(f"sigma_max must be >= 0, got {sigma_max}")
    u = torch.rand(n, generator=generator, device=device)
    z = torch.rand(n, generator=generator, device=device)
    return torch.where(z < p_zero, torch.zeros_like(u), u * sigma_max)


def srgb_equivalent_noise(
    encoded: torch.Tensor,
    sigma_max: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shot + read noise made in linear light, carried to the sRGB-encoded domain.

    For each image, Brooks2019 shot / read levels are drawn and scaled together so that, to first
    order, the root-mean-square of the per-pixel encoded-domain noise std is ``sigma_max[i]``; noise is
    added to the linear version of ``encoded`` and the result re-encoded. The encoded difference is
    then rescaled so that its RMS over the image is exactly ``sigma_max[i]`` (the sRGB curve is not
    linear over large noise in the shadows). That RMS is also the definition of the noise level used by
    ``rawdev.evaluate.demosaic.add_noise`` for its shot-read model, and the single number a
    scalar-noise network (demosaicnet) is told.

    Args:
        encoded: ``(N, C, H, W)`` clean sRGB-encoded values in [0, 1] (an image or a mosaic).
        sigma_max: ``(N,)`` RMS encoded-domain noise std per image (0 gives an exact copy).

    Returns:
        ``(noisy, sigma)``: ``noisy`` like ``encoded`` (not clipped), ``sigma`` ``(N,)``.
    """
    n = encoded.shape[0]
    dev = encoded.device
    lin = decode_srgb(encoded)
    shot, read = random_noise_levels(n, generator=generator, device=dev)
    view = (-1,) + (1,) * (encoded.dim() - 1)
    target = sigma_max.to(device=dev, dtype=encoded.dtype)
    slope = encode_srgb_slope(lin)
    std_enc = slope * (shot.reshape(view) * lin.clamp_min(0) + read.reshape(view)).sqrt()
    rms = std_enc.pow(2).flatten(1).mean(1).sqrt().clamp_min(1e-12)
    scale = (target / rms) ** 2  # variance scales linearly with (shot, read)
    noisy_lin = add_shot_read_noise(lin, shot * scale, read * scale, generator=generator)
    diff = encode_srgb(noisy_lin) - encoded
    got = diff.square().flatten(1).mean(1).sqrt().clamp_min(1e-12)
    return encoded + diff * (target / got).reshape(view), target


def unprocess(
    srgb: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    pattern: str = "RGGB",
    tone: bool = False,
    noise: bool = True,
    cameras: dict[str, tuple] | None = None,
    shot_range: tuple[float, float] = (1e-4, 0.012),
) -> dict:
    """Turn sRGB-encoded photos into synthetic noisy RAW mosaics with known camera parameters.

    Args:
        srgb: ``(N, 3, H, W)`` float sRGB-encoded photos in [0, 1] (8-bit / 255), H and W even.
        generator: the source of every random draw (seed it for reproducible batches).
        pattern: Bayer pattern of the returned mosaics, or ``"random"`` for one drawn per call.
        tone: also invert Brooks2019's smoothstep tone curve before the EOTF (off: the photo is taken
            to be plain sRGB-encoded).
        noise: add shot + read noise (else ``noisy_mosaic`` equals ``clean_mosaic``).
        cameras: XYZ -> camera matrices to mix (default :data:`CAMERA_XYZ_TO_CAM`).
        shot_range: range of the log-uniform shot-noise coefficient.

    Returns:
        A dict (all tensors on ``srgb``'s device):

        * ``srgb``: the input, ``(N, 3, H, W)``;
        * ``linear_rgb``: linear sRGB (D65) ``(N, 3, H, W)``: an end-to-end or Restore-Net target;
        * ``camera_rgb``: clean linear, white-balanced camera RGB ``(N, 3, H, W)`` (before the inverse
          gains): a demosaicking target in camera space;
        * ``raw_rgb``: clean linear camera RGB as the sensor saw it (inverse gains applied, clipped to
          [0, 1]) ``(N, 3, H, W)``;
        * ``clean_mosaic``, ``noisy_mosaic``: ``(N, 1, H, W)``; the noisy one is not clipped;
        * ``pattern``: the Bayer pattern string of the mosaics;
        * ``rgb_to_cam``, ``cam_to_rgb``: ``(N, 3, 3)``;
        * ``wb_gains``: ``(N, 3)`` multipliers (R, G, B) that white-balance ``raw_rgb``;
        * ``brightness``: ``(N,)``; ``shot``, ``read``: ``(N,)`` noise variance coefficients
          (zeros when ``noise`` is False).

    Raises:
        UsageError: bad shape, dtype or pattern.
    """
    _check_image(srgb, "srgb")
    if srgb.shape[-2] % 2 or srgb.shape[-1] % 2:
        raise UsageError(f"unprocess needs even H and W, got {tuple(srgb.shape[-2:])}")
    n, dev = srgb.shape[0], srgb.device
    if pattern == "random":
        k = int(torch.randint(len(BAYER_PATTERNS), (1,), generator=generator, device=dev).item())
        pattern = BAYER_PATTERNS[k]
    pattern = check_pattern(pattern)

    x = srgb.clamp(0.0, 1.0)
    if tone:
        x = inverse_smoothstep(x)
    linear_rgb = decode_srgb(x)
    rgb_to_cam = random_rgb_to_cam(n, generator=generator, device=dev, cameras=cameras).to(srgb.dtype)
    camera_rgb = torch.einsum("nij,njhw->nihw", rgb_to_cam, linear_rgb)
    gains = random_gains(n, generator=generator, device=dev)
    raw_rgb = apply_inverse_gains(camera_rgb, gains["red"].to(srgb.dtype), gains["blue"].to(srgb.dtype),
                                  gains["brightness"].to(srgb.dtype)).clamp(0.0, 1.0)
    clean_mosaic = mosaic(raw_rgb, pattern)
    if noise:
        shot, read = random_noise_levels(n, generator=generator, device=dev, shot_range=shot_range)
        noisy_mosaic = add_shot_read_noise(clean_mosaic, shot.to(srgb.dtype), read.to(srgb.dtype),
                                           generator=generator)
    else:
        shot = read = torch.zeros(n, device=dev)
        noisy_mosaic = clean_mosaic.clone()
    wb = torch.stack([gains["red"], torch.ones_like(gains["red"]), gains["blue"]], dim=1)
    return {
        "srgb": srgb,
        "linear_rgb": linear_rgb,
        "camera_rgb": camera_rgb,
        "raw_rgb": raw_rgb,
        "clean_mosaic": clean_mosaic,
        "noisy_mosaic": noisy_mosaic,
        "pattern": pattern,
        "rgb_to_cam": rgb_to_cam,
        "cam_to_rgb": torch.linalg.inv(rgb_to_cam.double()).to(srgb.dtype),
        "wb_gains": wb,
        "brightness": gains["brightness"],
        "shot": shot,
        "read": read,
    }
