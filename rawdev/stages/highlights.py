"""Highlight handling: what to do where a channel reached the sensor's clip point.

After white balance, channel ``c`` saturates at ``gain_c``; where the least amplified channel has
clipped, colour is unknown. ``clip`` (dcraw ``-H 0``) cuts every channel at that level, so blown areas
are neutral white. ``unclip`` (``-H 1``) keeps the raw values (magenta highlights, for experts).
``blend`` (``-H 2``) keeps the lightness of the unclipped values and the chroma of the clipped ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:
    import torch

__all__ = ["HIGHLIGHT_MODES", "clip_level", "clip_mosaic", "blend_highlights"]

HIGHLIGHT_MODES = ("clip", "unclip", "blend")

# dcraw's blend_highlights: a decorrelating transform (lightness, two opponent axes) and its inverse.
_TRANS = np.array([[1.0, 1.0, 1.0], [1.7320508, -1.7320508, 0.0], [-1.0, -1.0, 2.0]], np.float32)
_ITRANS = np.array([[1.0, 0.8660254, -0.5], [1.0, -0.8660254, -0.5], [1.0, 0.0, 1.0]], np.float32)


def check_mode(mode: str) -> str:
    if mode not in HIGHLIGHT_MODES:
        raise UsageError(f"unknown highlight mode {mode!r}; use {', '.join(HIGHLIGHT_MODES)}")
    return mode


def clip_level(gains: tuple[float, float, float]) -> float:
    """The white-balanced level at which the first channel saturates."""
    return float(min(gains))


def clip_mosaic(mosaic: torch.Tensor, level: float) -> torch.Tensor:
    """Cut the white-balanced mosaic at ``level``, in place."""
    return mosaic.clamp_(max=level)


def blend_highlights(rgb, level: float):
    """dcraw ``-H 2`` on an ``(*, 3, H, W)`` white-balanced camera image; returns a new tensor (a new
    float32 array for a numpy array).

    Where any channel exceeds ``level``: transform the unclipped and the clipped pixel into the
    opponent space, scale the unclipped chroma to the clipped chroma's magnitude, transform back.
    """
    import torch

    if isinstance(rgb, np.ndarray):
        return blend_highlights(torch.from_numpy(np.asarray(rgb, np.float32)), level).numpy()
    over = (rgb > level).any(dim=-3, keepdim=True)
    if not bool(over.any()):
        return rgb
    t = torch.from_numpy(_TRANS).to(rgb)
    it = torch.from_numpy(_ITRANS).to(rgb)
    lab0 = torch.einsum("ij,...jhw->...ihw", t, rgb)
    lab1 = torch.einsum("ij,...jhw->...ihw", t, rgb.clamp(max=level))
    c0 = lab0[..., 1:, :, :].square().sum(dim=-3, keepdim=True)
    c1 = lab1[..., 1:, :, :].square().sum(dim=-3, keepdim=True)
    ratio = torch.sqrt(c1 / c0.clamp(min=1e-20))
    lab0 = torch.cat([lab0[..., :1, :, :], lab0[..., 1:, :, :] * ratio], dim=-3)
    blended = torch.einsum("ij,...jhw->...ihw", it, lab0) / 3.0
    return torch.where(over, blended, rgb)
