"""Menon, Andriani & Calvagno (2007) demosaicking: directional filtering with a posteriori decision (DDFAPD).

Public objects: :func:`demosaic_menon2007`.

The algorithm, in the order of the paper (Menon2007) and of colour-demosaicing's implementation, which
this one follows step for step so that the two agree away from the borders:

1. Green is interpolated twice at every R/B site, along rows and along columns, with the 5-tap filter
   ``h0 + h1 = [-1/4, 1/2, 1/2, 1/2, -1/4]`` (a bilinear term plus a Laplacian correction of the sampled
   colour).
2. Decision: the colour differences (R-G or B-G) of each direction are compared with those two samples
   further along the same direction; their absolute gradients, summed over a 5x5 neighbourhood, tell
   which direction is smoother. The smoother direction's green is kept, and the choice is remembered.
3. R and B at G sites are bilinear in the colour difference with G; R at B sites and B at R sites use
   the colour difference along the chosen direction.
4. Refining step: G at R/B sites, then R/B at G sites, then R at B and B at R are re-estimated from
   3-tap averages of colour differences along the chosen direction.

How it is computed. Every step only reads and writes particular CFA sites, so the mosaic is packed into
its four sub-lattices (``pixel_unshuffle``) and each linear step becomes one small 3x3 convolution
between packed planes (weights built from the full-resolution taps by :func:`_packed_weight`); only the
values the algorithm uses are computed, with no masks. The mosaic is first mirrored (without edge
repeat, which keeps the CFA parity) by a margin that also puts an R sample at the top-left, so one set of
RGGB weights serves all four patterns. Borders therefore behave as if the mosaic were mirrored to
infinity (colour-demosaicing mirrors each 1-D filter separately and zero-pads the decision window, so
the outer ~6 px differ). Row bands with real or mirrored context on both sides bound the memory and give
the same result as one pass.

Shape:
    mosaic ``(*, 1, H, W)`` -> image ``(*, 3, H, W)``, same dtype and device. Not clipped.

References:
    Menon2007: D. Menon, S. Andriani, G. Calvagno, "Demosaicing with directional filtering and a
    posteriori decision", IEEE Transactions on Image Processing 16(1), 2007, pp. 132-141.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ...cfa import pattern_cell
from .bilinear import band_rows, reflect_pad

__all__ = ["demosaic_menon2007"]

# Context (full-resolution pixels, even) around every band: the chain has 8 convolutions in a row, each
# wrong on the outermost packed cell (2 px) of its input, so 16 px would do; the output depends on input
# at most ~10 px away. 20 leaves a margin.
_MARGIN = 20
# Full-resolution pixels per band on the CPU (about 30 quarter-size planes live at once).
_CPU_BAND_PIXELS = 1 << 20

Site = tuple[int, int]
# The four sites of the canonical RGGB cell, in pixel_unshuffle channel order.
_R, _GR, _GB, _B = (0, 0), (0, 1), (1, 0), (1, 1)
_ALL = (_R, _GR, _GB, _B)

# Full-resolution taps (row offset, column offset, weight), correlation form.
# Directional green (Menon2007): h0 = [0, 1/2, 0, 1/2, 0] averages the two green neighbours and
# h1 = [-1/4, 0, 1/2, 0, -1/4] adds the Laplacian of the sampled colour.
_ROW5 = ((0, -2, -0.25), (0, -1, 0.5), (0, 0, 0.5), (0, 1, 0.5), (0, 2, -0.25))
# Gradient of the colour difference between samples two pixels apart.
_DIFF_ROW = ((0, 0, 1.0), (0, 2, -1.0))
# colour-demosaicing's decision window for the row gradients: its 5x5 kernel, convolved (so flipped),
# covers D_H at columns j-2..j, i.e. colour differences from j-2 to j+2.
_DECIDE_ROW = (
    (-2, -2, 1.0), (0, -2, 3.0), (2, -2, 1.0),
    (-1, -1, 1.0), (1, -1, 1.0),
    (-2, 0, 1.0), (0, 0, 3.0), (2, 0, 1.0),
)
# Mean of the two nearest samples along a row, and of a 3-pixel run along a row (refining step).
_PAIR_ROW = ((0, -1, 0.5), (0, 1, 0.5))
_MEAN3_ROW = ((0, -1, 1.0 / 3.0), (0, 0, 1.0 / 3.0), (0, 1, 1.0 / 3.0))


def _t(taps):
    """The same taps along columns."""
    return tuple((b, a, v) for a, b, v in taps)


# Both pairs at once: on a plane stored only at R (or B) sites, the absent sites select the direction
# (horizontal at a G site of an R row, vertical at one of a B row), exactly like the masked planes of
# colour-demosaicing.
_PAIR_CROSS = _PAIR_ROW + _t(_PAIR_ROW)


def _packed_weight(planes: list[tuple[Site, ...]], rules: list[tuple[Site, int, tuple]]) -> torch.Tensor:
    """Weights of a packed 3x3 convolution that evaluates full-resolution taps at chosen sites.

    Args:
        planes: the input, as full-resolution planes each stored at the listed sites (one packed channel
            per site, planes concatenated in order); a plane is zero at the sites it does not store.
        rules: one per output channel: ``(site, plane index, taps)``, the taps ``(dy, dx, weight)``
            evaluated at that site of the canonical cell on that plane.

    Returns:
        float64 ``(len(rules), channels, 3, 3)``.
    """
    first = [sum(len(p) for p in planes[:i]) for i in range(len(planes))]
    w = torch.zeros(len(rules), sum(len(p) for p in planes), 3, 3, dtype=torch.float64)
    for o, ((py, px), plane, taps) in enumerate(rules):
        for a, b, v in taps:
            y, x = py + a, px + b
            site = (y % 2, x % 2)
            if site in planes[plane]:
                # floor division maps the full-resolution offset to the packed one (-1, 0, 1)
                w[o, first[plane] + planes[plane].index(site), y // 2 + 1, x // 2 + 1] += v
    return w


@functools.lru_cache(maxsize=None)
def _weights_f64() -> dict[str, torch.Tensor]:
    rb = (_R, _B)
    return {
        # -> green along rows at R, B; along columns at R, B
        "green": _packed_weight([_ALL], [(_R, 0, _ROW5), (_B, 0, _ROW5), (_R, 0, _t(_ROW5)), (_B, 0, _t(_ROW5))]),
        # colour differences (row R, B; column R, B) -> their gradients, same order
        "gradient": _packed_weight(
            [rb, rb], [(_R, 0, _DIFF_ROW), (_B, 0, _DIFF_ROW), (_R, 1, _t(_DIFF_ROW)), (_B, 1, _t(_DIFF_ROW))]
        ),
        # gradients -> classifier sums, same order
        "decide": _packed_weight(
            [rb, rb], [(_R, 0, _DECIDE_ROW), (_B, 0, _DECIDE_ROW), (_R, 1, _t(_DECIDE_ROW)), (_B, 1, _t(_DECIDE_ROW))]
        ),
        # R - G at R sites, B - G at B sites -> corrections of R at Gr, Gb and of B at Gr, Gb
        "at_g": _packed_weight(
            [(_R,), (_B,)], [(_GR, 0, _PAIR_CROSS), (_GB, 0, _PAIR_CROSS), (_GR, 1, _PAIR_CROSS), (_GB, 1, _PAIR_CROSS)]
        ),
        # R - B at G sites -> along rows / columns at B, then at R
        "at_rb": _packed_weight(
            [(_GR, _GB)], [(_B, 0, _PAIR_ROW), (_B, 0, _t(_PAIR_ROW)), (_R, 0, _PAIR_ROW), (_R, 0, _t(_PAIR_ROW))]
        ),
        # R - G at R, Gr, Gb and B - G at B, Gr, Gb -> 3-tap means along rows / columns at R, then at B
        "refine_g": _packed_weight(
            [(_R, _GR, _GB), (_B, _GR, _GB)],
            [(_R, 0, _MEAN3_ROW), (_R, 0, _t(_MEAN3_ROW)), (_B, 1, _MEAN3_ROW), (_B, 1, _t(_MEAN3_ROW))],
        ),
        # R - B everywhere -> 3-tap means along rows / columns at B, then at R
        "refine_rb": _packed_weight(
            [_ALL], [(_B, 0, _MEAN3_ROW), (_B, 0, _t(_MEAN3_ROW)), (_R, 0, _MEAN3_ROW), (_R, 0, _t(_MEAN3_ROW))]
        ),
    }


def _weights(dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype=dtype, device=device) for k, v in _weights_f64().items()}


def _pick(horizontal: torch.Tensor, along_rows: torch.Tensor, along_cols: torch.Tensor) -> torch.Tensor:
    return torch.where(horizontal, along_rows, along_cols)


def _ddfapd_packed(x: torch.Tensor, w: dict[str, torch.Tensor], refine: bool) -> torch.Tensor:
    """DDFAPD on a packed RGGB mosaic ``(N, 4, h, w)``; returns ``(N, 12, h, w)`` in pixel_shuffle order.

    Values within 8 packed cells of the edges are wrong (zero-padded convolutions); callers add context.
    """

    def conv(inp, name):
        return F.conv2d(inp, w[name], padding=1)

    r, gr, gb, b = x.unbind(1)
    g_sites = x[:, 1:3].repeat(1, 2, 1, 1)  # (Gr, Gb, Gr, Gb)
    rb = torch.stack((r, b), 1)

    # 1. Green along rows and along columns at the R and B sites.
    green = conv(x, "green")  # (rows at R, B; columns at R, B)
    # 2. Decision from the gradients of the colour differences; ties go to rows, as in colour-demosaicing.
    sums = conv(conv(rb.repeat(1, 2, 1, 1) - green, "gradient").abs_(), "decide")
    rows = sums[:, 2:] >= sums[:, :2]  # (at R, at B)
    g_rb = _pick(rows, green[:, :2], green[:, 2:])
    del green, sums
    g_r, g_b = g_rb.unbind(1)

    # 3. R and B at G sites (bilinear colour difference), then R at B and B at R along the decision.
    r_gr, r_gb, b_gr, b_gb = (conv(rb - g_rb, "at_g") + g_sites).unbind(1)
    t = conv(torch.stack((r_gr - b_gr, r_gb - b_gb), 1), "at_rb")
    r_b = b + _pick(rows[:, 1], t[:, 0], t[:, 1])
    b_r = r - _pick(rows[:, 0], t[:, 2], t[:, 3])

    if refine:
        # 4a. Green at R and B from 3-tap means of the colour differences along the decision.
        t = conv(torch.stack((r - g_r, r_gr - gr, r_gb - gb, b - g_b, b_gr - gr, b_gb - gb), 1), "refine_g")
        g_r = r - _pick(rows[:, 0], t[:, 0], t[:, 1])
        g_b = b - _pick(rows[:, 1], t[:, 2], t[:, 3])
        # 4b. R and B at G sites again, from the refined green.
        r_gr, r_gb, b_gr, b_gb = (conv(torch.stack((r - g_r, b - g_b), 1), "at_g") + g_sites).unbind(1)
        # 4c. R at B and B at R from 3-tap means of R - B along the decision.
        t = conv(torch.stack((r - b_r, r_gr - b_gr, r_gb - b_gb, r_b - b), 1), "refine_rb")
        r_b, b_r = b + _pick(rows[:, 1], t[:, 0], t[:, 1]), r - _pick(rows[:, 0], t[:, 2], t[:, 3])

    return torch.stack((r, r_gr, r_gb, r_b, g_r, gr, gb, g_b, b_r, b_gr, b_gb, b), 1)


def demosaic_menon2007(mosaic: torch.Tensor, pattern: str, *, refine: bool = True) -> torch.Tensor:
    """DDFAPD demosaicking with the refining step (Menon2007), like colour-demosaicing's default.

    Args:
        mosaic: ``(*, 1, H, W)`` float Bayer mosaic, any units; H, W >= 2.
        pattern: the Bayer pattern of ``mosaic`` read from its top-left pixel ("RGGB", ...).
        refine: run the refining step (default, as the paper recommends).

    Returns:
        ``(*, 3, H, W)`` RGB, same dtype and device, not clipped. The mosaic is mirrored beyond its
        borders (no edge repeat); the measured R, G and B samples pass through unchanged.

    Example:
        >>> m = torch.full((1, 8, 8), 0.5)
        >>> bool(torch.allclose(demosaic_menon2007(m, "BGGR"), torch.full((3, 8, 8), 0.5)))
        True
    """
    lead = mosaic.shape[:-3]
    h, w = mosaic.shape[-2], mosaic.shape[-1]
    x = mosaic.reshape(-1, 1, h, w)
    n = x.shape[0]
    cell = pattern_cell(pattern)
    ry, rx = next((i, j) for i in range(2) for j in range(2) if cell[i][j] == 0)
    # Mirror so that the padded mosaic starts with R (RGGB) and has even sides.
    top, left = _MARGIN + ry, _MARGIN + rx
    xp = reflect_pad(x, top, _MARGIN + (h + top) % 2, left, _MARGIN + (w + left) % 2)
    weights = _weights(x.dtype, x.device)
    out = x.new_empty(n, 3, h, w)
    step = band_rows(n * w, x.device, h, _CPU_BAND_PIXELS)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        c0, c1 = (top + r0 - _MARGIN) // 2, (top + r1 + _MARGIN + 1) // 2  # packed rows with context
        planes = _ddfapd_packed(F.pixel_unshuffle(xp[:, :, 2 * c0 : 2 * c1], 2), weights, refine)
        band = F.pixel_shuffle(planes, 2)
        y0 = top + r0 - 2 * c0
        out[:, :, r0:r1] = band[:, :, y0 : y0 + r1 - r0, left : left + w]
    return out.reshape(*lead, 3, h, w)
