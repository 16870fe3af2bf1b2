"""Black and white level: raw counts -> linear values with the sensor clip point at 1.0."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["normalise"]


def normalise(
    counts: np.ndarray | torch.Tensor,
    black: np.ndarray | torch.Tensor | float,
    white: float,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``(counts - black) / (white - black)``, per pixel.

    ``black`` is a scalar or an array broadcastable to ``counts`` (per-pixel black from the CFA colour,
    LibRaw's ``black_level_per_channel[colors]``). Values below black stay negative: clipping them
    would bias dark noise upwards (stages never clip). ``counts`` is never modified: a float input
    of ``dtype`` is copied first (the conversion of integer counts already makes the copy).
    """
    src = counts if torch.is_tensor(counts) else torch.as_tensor(np.asarray(counts))
    x = src.to(dtype)
    if x.data_ptr() == src.data_ptr():  # no conversion: x is the caller's data
        x = x.clone()
    b = torch.as_tensor(np.asarray(black, dtype=np.float32) if not torch.is_tensor(black) else black).to(dtype)
    x.sub_(b)
    x.div_(torch.clamp(float(white) - b, min=1.0))
    return x
