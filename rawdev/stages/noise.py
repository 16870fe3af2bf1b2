"""Noise level estimation from the RAW data, for noise-aware back-ends when the file has no profile."""

from __future__ import annotations

import numpy as np
import torch

from ..types import RawImage
from .normalise import normalise

__all__ = ["estimate_sigma_linear", "immerkaer_sigma", "SIGMA_GREY", "srgb_slope"]

#: Where a signal-dependent noise model is reduced to one sigma: 18 % grey, the level exposure aims at.
SIGMA_GREY = 0.18


def srgb_slope(x: float = SIGMA_GREY) -> float:
    """Derivative of the sRGB OETF (IEC 61966-2-1, power segment) at linear ``x``: how a small noise
    std in linear light scales once encoded, ``1.055 / 2.4 * x ** (1 / 2.4 - 1)``."""
    return 1.055 / 2.4 * x ** (1 / 2.4 - 1)

# Immerkaer 1996, "Fast noise variance estimation", CVIU 64(2): the Laplacian-difference mask that
# cancels locally linear structure; sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|.
_N = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def immerkaer_sigma(plane: torch.Tensor) -> float:
    """Gaussian noise sigma of a 2-D ``plane`` (Immerkaer 1996, eq. 3)."""
    h, w = plane.shape
    if h < 3 or w < 3:
        return 0.0
    r = torch.nn.functional.conv2d(plane[None, None].float(), _N[None, None])
    return float(np.sqrt(np.pi / 2) * r.abs().sum() / (6.0 * (w - 2) * (h - 2)))


def estimate_sigma_linear(raw: RawImage) -> float:
    """Noise sigma on normalised linear data, from one green sub-plane of the mosaic.

    The estimate is the noise at the plane's typical level; images with much fine texture read a
    little high, which errs towards more denoising.
    """
    colors = raw.colors
    # the first green site of the CFA cell
    ys, xs = np.nonzero(colors[: colors.shape[0] if colors.shape[0] < 6 else 6, :6] == 1)
    dy, dx = int(ys[0]), int(xs[0])
    period = raw.meta.cfa.period
    hp, wp = len(range(dy, raw.data.shape[0], period)), len(range(dx, raw.data.shape[1], period))
    if hp * wp > 4_000_000:  # a 2000 x 2000 corner of the plane is plenty, and bounds the memory
        hp, wp = min(hp, 2000), min(wp, 2000)
    rows, cols = slice(dy, dy + period * hp, period), slice(dx, dx + period * wp, period)
    plane = normalise(raw.data[rows, cols], raw.black_map[rows, cols], raw.meta.white_level)
    return immerkaer_sigma(plane)
