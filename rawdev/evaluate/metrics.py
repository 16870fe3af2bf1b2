"""Image quality metrics: CPSNR on 8-bit images as the demosaicking literature computes it, PSNR and SSIM.

Public objects: :func:`crop_border`, :func:`cpsnr`, :func:`psnr`, :func:`ssim`.

All functions take channel-first tensors ``(*, C, H, W)`` and return one value per leading index, shape
``(*)``, in float64. Nothing is clipped or rounded here: the caller decides how outputs are quantised.

References:
    MenonCalvagno2011: D. Menon, G. Calvagno, "Color image demosaicking: an overview", Signal Processing:
    Image Communication 26, 2011, pp. 518-533 (CPSNR, their Eq. 23).
    Wang2004: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
    visibility to structural similarity", IEEE Transactions on Image Processing 13(4), 2004, pp. 600-612.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UsageError

__all__ = ["crop_border", "cpsnr", "psnr", "ssim"]


def _check_pair(a: torch.Tensor, b: torch.Tensor, border: int) -> None:
    if a.shape != b.shape:
        raise UsageError(f"metric inputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() < 3:
        raise UsageError(f"metrics expect (*, C, H, W) tensors, got {tuple(a.shape)}")
    if border < 0 or 2 * border >= min(a.shape[-2], a.shape[-1]):
        raise UsageError(f"border {border} leaves nothing of a {a.shape[-2]}x{a.shape[-1]} image")


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on each side of the last two dims (a view)."""
    if border == 0:
        return x
    return x[..., border:-border, border:-border]


def psnr(output: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0, border: int = 0) -> torch.Tensor:
    """PSNR over all channels and pixels together: ``10 log10(data_range^2 / MSE)`` per image.

    With three colour channels and ``data_range = 255`` on 8-bit data this is the CPSNR of
    MenonCalvagno2011, Eq. 23 (the MSE is averaged over R, G and B before the logarithm).

    Args:
        output, target: ``(*, C, H, W)`` tensors of the same shape, any real dtype.
        data_range: the peak value (1.0 for [0, 1] images, 255 for 8-bit).
        border: pixels dropped on each side before comparing.

    Returns:
        ``(*)`` float64; ``inf`` where the images are equal.

    Raises:
        UsageError: the shapes differ or the border leaves no pixels.

    Example:
        >>> x = torch.zeros(3, 8, 8); y = torch.full((3, 8, 8), 0.1)
        >>> round(float(psnr(x, y)), 6)
        20.0
    """
    _check_pair(output, target, border)
    diff = crop_border(output, border).double() - crop_border(target, border).double()
    mse = diff.square().mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 gives inf, which is the right answer


def cpsnr(output: torch.Tensor, target: torch.Tensor, *, border: int = 10) -> torch.Tensor:
    """CPSNR of 8-bit RGB images (MenonCalvagno2011, Eq. 23) after cropping ``border`` pixels per side.

    The protocol of the demosaicking literature (e.g. DPIR, border 10): outputs are clipped and rounded
    to uint8 by the caller, then the MSE is taken over the three channels together, peak 255.

    Args:
        output, target: ``(*, 3, H, W)`` uint8 tensors.
        border: pixels dropped on each side (10 in DPIR's protocol, 0 in RSTCANet's).

    Returns:
        ``(*)`` float64 in dB.

    Raises:
        UsageError: not uint8, not 3 channels, different shapes, or a border too large.

    Example:
        >>> a = torch.zeros(3, 32, 32, dtype=torch.uint8); b = a.clone(); b[0, 16, 16] = 255
        >>> round(float(cpsnr(a, b, border=10)), 3)
        26.355
    """
    if output.dtype != torch.uint8 or target.dtype != torch.uint8:
        raise UsageError(f"cpsnr expects uint8 images, got {output.dtype} and {target.dtype}")
    if output.dim() < 3 or output.shape[-3] != 3:
        raise UsageError(f"cpsnr expects (*, 3, H, W), got {tuple(output.shape)}")
    return psnr(output, target, data_range=255.0, border=border)


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of ``(N, C, H, W)``, valid region only (no padding)."""
    c = x.shape[1]
    k = window.numel()
    x = F.conv2d(x, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim(
    output: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float = 1.0,
    border: int = 0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM (Wang2004, Eq. 13) with the paper's 11x11 Gaussian window, sigma 1.5, per image.

    Local means, variances and covariance are Gaussian-weighted (population statistics), computed on the
    "valid" region where the window fits; the SSIM map is averaged over channels and positions. This is
    scikit-image's ``structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``.

    Args:
        output, target: ``(*, C, H, W)`` float (or integer) tensors, same shape, values in
            ``[0, data_range]``; ``H, W >= window_size`` after the border crop.
        data_range: the dynamic range (1.0 for [0, 1] images, 255 for 8-bit).
        border: pixels dropped on each side first.

    Returns:
        ``(*)`` float64.

    Raises:
        UsageError: the shapes differ, or the image is smaller than the window.

    Example:
        >>> x = torch.rand(3, 32, 32)
        >>> round(float(ssim(x, x)), 6)
        1.0
    """
    _check_pair(output, target, border)
    x = crop_border(output, border).double()
    y = crop_border(target, border).double()
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    if min(h, w) < window_size:
        raise UsageError(f"SSIM needs images of at least {window_size}x{window_size}, got {h}x{w}")
    x = x.reshape(-1, c, h, w)
    y = y.reshape(-1, c, h, w)
    win = _gaussian_window(window_size, sigma, x.dtype, x.device)
    mu_x, mu_y = _blur(x, win), _blur(y, win)
    # Var and cov as E[xy] - E[x]E[y]: cheaper than filtering centred products, exact enough in float64.
    var_x = _blur(x * x, win) - mu_x.square()
    var_y = _blur(y * y, win) - mu_y.square()
    cov = _blur(x * y, win) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return s.mean(dim=(-3, -2, -1)).reshape(lead)
