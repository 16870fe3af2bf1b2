"""White balance: choosing per-channel gains and applying them to a mosaic or an image.

Gains are (R, G, B) multipliers on linear normalised camera values, green = 1. They come from the
camera's as-shot record, LibRaw's daylight multipliers, a grey-world estimate, or the user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UsageError

__all__ = ["WhiteBalance", "choose_gains", "grey_world_gains", "apply_gains_mosaic"]


@dataclass(frozen=True)
class WhiteBalance:
    """Chosen gains, where they came from, and a notice for the user when we had to fall back."""

    gains: tuple[float, float, float]
    source: str
    notice: str | None = None


def grey_world_gains(mosaic: torch.Tensor, colors: torch.Tensor, clip: float = 0.98) -> tuple[float, float, float]:
    """Grey-world estimate (Buchsbaum 1980): the mean of each colour over unclipped pixels is equal.

    ``mosaic`` is ``(H, W)`` linear normalised, ``colors`` the ``(H, W)`` colour index map. Pixels at or
    above ``clip`` are left out because clipped values carry no colour. Subsampled for speed: the
    estimate is a mean, and every 4th row/column of each CFA phase is plenty.
    """
    h, w = mosaic.shape[-2:]
    step = 4 if min(h, w) >= 64 else 2
    h2, w2 = h // step * step, w // step * step
    # The top-left 2x2 of every step x step block: all CFA phases are sampled, at 1/4 of the cost.
    m = mosaic[:h2, :w2].reshape(h2 // step, step, w2 // step, step)[:, :2, :, :2].reshape(-1)
    c = colors[:h2, :w2].reshape(h2 // step, step, w2 // step, step)[:, :2, :, :2].reshape(-1)
    ok = (m < clip) & (m > 0)
    means = []
    for ch in range(3):
        sel = m[ok & (c == ch)]
        means.append(float(sel.mean()) if sel.numel() else float("nan"))
    if not all(np.isfinite(means)) or min(means) <= 0:
        return (1.0, 1.0, 1.0)
    g = means[1]
    return (g / means[0], 1.0, g / means[2])


def choose_gains(
    mode: str | tuple[float, ...],
    *,
    camera: tuple[float, ...] | None,
    daylight: tuple[float, ...] | None,
    grey_world: callable = None,
) -> WhiteBalance:
    """Resolve ``mode`` ("camera", "daylight", "auto", or explicit R,G,B[,G]) to gains with G = 1.

    "camera" falls back to "daylight" and then to grey-world, with a notice, when the file stores
    no as-shot white balance (old cameras; LibRaw reports all 1.0).
    """
    if isinstance(mode, (tuple, list)):
        vals = [float(v) for v in mode]
        if len(vals) not in (3, 4) or any(not np.isfinite(v) or v <= 0 for v in vals):
            raise UsageError(f"custom white balance needs 3 or 4 positive numbers, got {mode!r}")
        return WhiteBalance((vals[0] / vals[1], 1.0, vals[2] / vals[1]), "custom")
    mode = str(mode).lower()
    if mode == "camera":
        if camera is not None:
            return WhiteBalance((camera[0], 1.0, camera[2]), "camera")
        if daylight is not None:
            return WhiteBalance((daylight[0], 1.0, daylight[2]), "daylight",
                                "no as-shot white balance in the file; using daylight multipliers")
        gains = grey_world() if grey_world else (1.0, 1.0, 1.0)
        return WhiteBalance(gains, "auto", "no as-shot or daylight white balance in the file; using grey-world")
    if mode == "daylight":
        if daylight is not None:
            return WhiteBalance((daylight[0], 1.0, daylight[2]), "daylight")
        gains = grey_world() if grey_world else (1.0, 1.0, 1.0)
        return WhiteBalance(gains, "auto", "no daylight multipliers known for this camera; using grey-world")
    if mode in ("auto", "grey-world", "gray-world"):
        gains = grey_world() if grey_world else (1.0, 1.0, 1.0)
        return WhiteBalance(gains, "auto")
    raise UsageError(f"unknown white balance {mode!r}; use camera, daylight, auto or R,G,B[,G]")


def apply_gains_mosaic(mosaic: torch.Tensor, colors: torch.Tensor, gains: tuple[float, float, float]) -> torch.Tensor:
    """Multiply each mosaic sample by the gain of its colour, in place; returns ``mosaic``."""
    g = torch.tensor(gains, dtype=mosaic.dtype, device=mosaic.device)
    mosaic.mul_(g[colors.long()])
    return mosaic
