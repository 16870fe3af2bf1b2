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
    """dcraw ``-H 2`` on an ``(*, 3, H, W)`` white-balanced camera image (a numpy array, or a torch
    tensor on the CPU); returns a new array (float32) or tensor, or ``rgb`` itself where nothing is
    above ``level``.

    Where any channel exceeds ``level``: transform the unclipped and the clipped pixel into the
    opponent space, scale the unclipped chroma to the clipped chroma's magnitude, transform back.
    Numpy only, on the pixels over the level alone (torch is not imported for it: the default develop
    never imports torch).
    """
    if not isinstance(rgb, np.ndarray):  # a tensor: the same work on its numpy view
        import torch

        out = blend_highlights(rgb.detach().cpu().numpy(), level)
        return rgb if out is None else torch.from_numpy(np.ascontiguousarray(out)).to(rgb)
    rgb = np.asarray(rgb, np.float32)
    pixels = np.moveaxis(rgb, -3, -1)  # (*, H, W, 3) view
    over = (pixels > level).any(axis=-1)
    if not over.any():
        return rgb
    p0 = pixels[over]  # (N, 3)
    lab0 = p0 @ _TRANS.T
    lab1 = np.minimum(p0, level) @ _TRANS.T
    c0 = np.square(lab0[:, 1:]).sum(axis=1, keepdims=True)
    c1 = np.square(lab1[:, 1:]).sum(axis=1, keepdims=True)
    lab0[:, 1:] *= np.sqrt(c1 / np.maximum(c0, 1e-20))
    out = rgb.copy()
    np.moveaxis(out, -3, -1)[over] = (lab0 @ _ITRANS.T) / 3.0
    return out
