"""Black and white level: raw counts -> linear values with the sensor clip point at 1.0."""

from __future__ import annotations

import numpy as np

__all__ = ["normalise"]


def normalise(counts: np.ndarray, black: np.ndarray | float, white: float, *,
              dtype: np.dtype | type = np.float32) -> np.ndarray:
    """``(counts - black) / (white - black)``, per pixel.

    ``black`` is a scalar or an array broadcastable to ``counts`` (per-pixel black from the CFA colour,
    LibRaw's ``black_level_per_channel[colors]``). Values below black stay negative: clipping them
    would bias dark noise upwards (stages never clip). ``counts`` (anything :func:`numpy.asarray`
    takes, a CPU tensor too) is never modified: the result is always a new array.
    """
    x = np.array(counts, dtype=dtype, copy=True)
    b = np.asarray(black, dtype=dtype)
    x -= b
    x /= np.maximum(float(white) - b, 1.0).astype(dtype, copy=False)
    return x
