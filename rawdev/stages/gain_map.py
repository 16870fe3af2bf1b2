"""Lens shading: a DNG's GainMap opcodes (:mod:`rawdev.io.dng_opcodes`) as gains over a region of the
mosaic, multiplied into the linear samples before white balance.

The gains are interpolated as Adobe's DNG SDK does (``dng_gain_map_interpolator``): pixel ``x`` of an
image ``n`` pixels wide sits at relative position ``(x + 0.5) / n``; its index into the map is
``(position - origin) / spacing``, held at the first or last point beyond the map, linear in between,
rows first, then columns. A sample is then at most the sensor's clip point (the SDK clips each
opcode's output at 1.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..io.dng_opcodes import GainMap

__all__ = ["region_gains"]


def _axis(positions: np.ndarray, n: int, origin: float, spacing: float, points: int):
    """Map indices and weights along one axis: ``(i0, i1, f)`` with ``gain = m[i0] (1 - f) + m[i1] f``."""
    f = ((positions + 0.5) / n - origin) / spacing
    f = np.clip(f, 0.0, points - 1)
    i0 = np.minimum(np.floor(f).astype(np.int64), points - 1)
    i1 = np.minimum(i0 + 1, points - 1)
    return i0, i1, (f - i0).astype(np.float32)


def _first_on_pitch(start: int, origin: int, pitch: int) -> int:
    """The first index >= ``start`` of the lattice ``origin + k pitch``."""
    return origin + max(0, -(-(start - origin) // pitch)) * pitch


def region_gains(maps: Sequence[GainMap], rows: tuple[int, int], cols: tuple[int, int],
                 shape: tuple[int, int]) -> np.ndarray | None:
    """The gain of every sample of ``mosaic[rows[0]:rows[1], cols[0]:cols[1]]`` (float32, the maps'
    product where several apply) of an image of ``shape`` (the raw image the opcodes were written
    for), or None where no map touches the region. Maps for planes other than 0 do not apply to a
    one-plane CFA mosaic."""
    (a, b), (c, d) = rows, cols
    H, W = shape
    out = None
    for g in maps:
        if g.plane != 0:
            continue
        r = np.arange(_first_on_pitch(a, g.top, g.row_pitch), min(b, g.bottom), g.row_pitch)
        q = np.arange(_first_on_pitch(c, g.left, g.col_pitch), min(d, g.right), g.col_pitch)
        if r.size == 0 or q.size == 0:
            continue
        m = g.gains[..., 0]
        v0, v1, fv = _axis(r, H, g.origin[0], g.spacing[0], m.shape[0])
        h0, h1, fh = _axis(q, W, g.origin[1], g.spacing[1], m.shape[1])
        along = m[v0] * (1.0 - fv)[:, None] + m[v1] * fv[:, None]  # (rows, points_h)
        gain = along[:, h0] * (1.0 - fh) + along[:, h1] * fh
        if out is None:
            out = np.ones((b - a, d - c), np.float32)
        out[np.ix_(r - a, q - c)] *= gain
    return out
