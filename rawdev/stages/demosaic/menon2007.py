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

How it is computed. Every step only reads and writes particular CFA sites, so the mosaic is split into
its four sub-lattices (quarter-size planes) and each linear step becomes a few shifted multiply-adds
between planes (translated from the full-resolution taps by :func:`_packed_taps`): only the values the
algorithm uses are computed, with no masks and no mostly-zero kernels (4x faster than full-resolution
masked filtering on a CPU). The mosaic is first mirrored (without edge repeat, which keeps the CFA
parity) by a margin that also puts an R sample at the top-left, so one set of RGGB taps serves all four
patterns. Borders therefore behave as if the mosaic were mirrored to
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

from ...cfa import pattern_cell
from .bilinear import band_rows, reflect_pad

__all__ = ["demosaic_menon2007"]

# Context (full-resolution pixels, even) around every band: the chain has 8 linear steps in a row, each
# leaving the outermost packed cell (2 px) unset, so 16 px would do; the output depends on input at most
# ~10 px away. 20 leaves a margin.
_MARGIN = 20
# Full-resolution pixels per band on the CPU (about 30 quarter-size planes, ~130 MB, live at once). The
# single-thread speed is the same from 2^20 to 2^22, but fewer, larger bands mean fewer thread
# synchronisations, which matters on a busy machine: 24 MP took 4-16 s in bands of 2^22 against
# 31-35 s in bands of 2^20 on 2 cores shared with other jobs.
_CPU_BAND_PIXELS = 1 << 22

Site = tuple[int, int]
# The four sites (row, column parity) of the canonical RGGB cell.
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


def _packed_taps(planes: list[tuple[Site, ...]], rules: list[tuple[Site, int, tuple]]) -> tuple:
    """Translate full-resolution taps evaluated at chosen CFA sites into taps between packed planes.

    Args:
        planes: the input, as full-resolution planes each stored at the listed sites (one packed plane per
            site, planes concatenated in order); a plane is zero at the sites it does not store.
        rules: one per output: ``(site, plane index, taps)``, the taps ``(dy, dx, weight)`` evaluated at
            that site of the canonical cell on that plane.

    Returns:
        per output, a tuple of ``(input index, dy, dx, weight)`` with packed offsets ``dy, dx`` in -1..1.
    """
    first = [sum(len(p) for p in planes[:i]) for i in range(len(planes))]
    out = []
    for (py, px), plane, taps in rules:
        acc: dict[tuple[int, int, int], float] = {}
        for a, b, v in taps:
            y, x = py + a, px + b
            site = (y % 2, x % 2)
            if site in planes[plane]:
                # floor division maps the full-resolution offset to the packed one (-1, 0, 1)
                key = (first[plane] + planes[plane].index(site), y // 2, x // 2)
                acc[key] = acc.get(key, 0.0) + v
        out.append(tuple((c, dy, dx, v) for (c, dy, dx), v in acc.items() if v))
    return tuple(out)


def _apply(inputs: list[torch.Tensor], taps) -> list[torch.Tensor]:
    """Evaluate packed taps (see :func:`_packed_taps`) on ``(N, h, w)`` planes: shifted multiply-adds.

    The outermost ring of each output is set to 0, not computed; callers provide enough context. A few
    taps per output make this cheaper than a dense convolution with mostly-zero weights.
    """
    h, w = inputs[0].shape[-2], inputs[0].shape[-1]
    outs = []
    for out_taps in taps:
        o = torch.empty_like(inputs[0])
        o[..., 0, :] = 0
        o[..., -1, :] = 0
        o[..., :, 0] = 0
        o[..., :, -1] = 0
        inner = o[..., 1:-1, 1:-1]
        for k, (c, dy, dx, v) in enumerate(out_taps):
            src = inputs[c][..., 1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx]
            if k == 0:
                torch.mul(src, v, out=inner)
            else:
                inner.add_(src, alpha=v)
        outs.append(o)
    return outs


@functools.lru_cache(maxsize=None)
def _taps() -> dict[str, tuple]:
    rb = (_R, _B)
    return {
        # -> green along rows at R, B; along columns at R, B
        "green": _packed_taps([_ALL], [(_R, 0, _ROW5), (_B, 0, _ROW5), (_R, 0, _t(_ROW5)), (_B, 0, _t(_ROW5))]),
        # colour differences (row R, B; column R, B) -> their gradients, same order
        "gradient": _packed_taps(
            [rb, rb], [(_R, 0, _DIFF_ROW), (_B, 0, _DIFF_ROW), (_R, 1, _t(_DIFF_ROW)), (_B, 1, _t(_DIFF_ROW))]
        ),
        # gradients -> classifier sums, same order
        "decide": _packed_taps(
            [rb, rb], [(_R, 0, _DECIDE_ROW), (_B, 0, _DECIDE_ROW), (_R, 1, _t(_DECIDE_ROW)), (_B, 1, _t(_DECIDE_ROW))]
        ),
        # R - G at R sites, B - G at B sites -> corrections of R at Gr, Gb and of B at Gr, Gb
        "at_g": _packed_taps(
            [(_R,), (_B,)], [(_GR, 0, _PAIR_CROSS), (_GB, 0, _PAIR_CROSS), (_GR, 1, _PAIR_CROSS), (_GB, 1, _PAIR_CROSS)]
        ),
        # R - B at G sites -> along rows / columns at B, then at R
        "at_rb": _packed_taps(
            [(_GR, _GB)], [(_B, 0, _PAIR_ROW), (_B, 0, _t(_PAIR_ROW)), (_R, 0, _PAIR_ROW), (_R, 0, _t(_PAIR_ROW))]
        ),
        # R - G at R, Gr, Gb and B - G at B, Gr, Gb -> 3-tap means along rows / columns at R, then at B
        "refine_g": _packed_taps(
            [(_R, _GR, _GB), (_B, _GR, _GB)],
            [(_R, 0, _MEAN3_ROW), (_R, 0, _t(_MEAN3_ROW)), (_B, 1, _MEAN3_ROW), (_B, 1, _t(_MEAN3_ROW))],
        ),
        # R - B everywhere -> 3-tap means along rows / columns at B, then at R
        "refine_rb": _packed_taps(
            [_ALL], [(_B, 0, _MEAN3_ROW), (_B, 0, _t(_MEAN3_ROW)), (_R, 0, _MEAN3_ROW), (_R, 0, _t(_MEAN3_ROW))]
        ),
    }


def _ddfapd_packed(r, gr, gb, b, refine: bool) -> list[torch.Tensor]:
    """DDFAPD on the four planes ``(N, h, w)`` of a packed RGGB mosaic.

    Returns the 12 planes (R, G, B at the sites R, Gr, Gb, B) in pixel_shuffle order. Values within 8
    packed cells of the edges are wrong (each linear step leaves its outer ring at 0); callers add context.
    """
    taps = _taps()

    # 1. Green along rows and along columns at the R and B sites.
    gh_r, gh_b, gv_r, gv_b = _apply([r, gr, gb, b], taps["green"])
    # 2. Decision from the gradients of the colour differences; ties go to rows, as in colour-demosaicing.
    d = [t.abs_() for t in _apply([r - gh_r, b - gh_b, r - gv_r, b - gv_b], taps["gradient"])]
    sh_r, sh_b, sv_r, sv_b = _apply(d, taps["decide"])
    del d
    rows_r, rows_b = sv_r >= sh_r, sv_b >= sh_b
    del sh_r, sh_b, sv_r, sv_b
    g_r = torch.where(rows_r, gh_r, gv_r)
    g_b = torch.where(rows_b, gh_b, gv_b)
    del gh_r, gh_b, gv_r, gv_b

    # 3. R and B at G sites (bilinear colour difference), then R at B and B at R along the decision.
    r_gr, r_gb, b_gr, b_gb = _apply([r - g_r, b - g_b], taps["at_g"])
    r_gr, r_gb, b_gr, b_gb = r_gr.add_(gr), r_gb.add_(gb), b_gr.add_(gr), b_gb.add_(gb)
    h_b, v_b, h_r, v_r = _apply([r_gr - b_gr, r_gb - b_gb], taps["at_rb"])
    r_b = b + torch.where(rows_b, h_b, v_b)
    b_r = r - torch.where(rows_r, h_r, v_r)

    if refine:
        # 4a. Green at R and B from 3-tap means of the colour differences along the decision.
        h_r, v_r, h_b, v_b = _apply([r - g_r, r_gr - gr, r_gb - gb, b - g_b, b_gr - gr, b_gb - gb], taps["refine_g"])
        g_r = r - torch.where(rows_r, h_r, v_r)
        g_b = b - torch.where(rows_b, h_b, v_b)
        # 4b. R and B at G sites again, from the refined green.
        r_gr, r_gb, b_gr, b_gb = _apply([r - g_r, b - g_b], taps["at_g"])
        r_gr, r_gb, b_gr, b_gb = r_gr.add_(gr), r_gb.add_(gb), b_gr.add_(gr), b_gb.add_(gb)
        # 4c. R at B and B at R from 3-tap means of R - B along the decision.
        h_b, v_b, h_r, v_r = _apply([r - b_r, r_gr - b_gr, r_gb - b_gb, r_b - b], taps["refine_rb"])
        r_b, b_r = b + torch.where(rows_b, h_b, v_b), r - torch.where(rows_r, h_r, v_r)

    return [r, r_gr, r_gb, r_b, g_r, gr, gb, g_b, b_r, b_gr, b_gb, b]


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
    out = x.new_empty(n, 3, h, w)
    step = band_rows(n * w, x.device, h, _CPU_BAND_PIXELS)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        c0, c1 = (top + r0 - _MARGIN) // 2, (top + r1 + _MARGIN + 1) // 2  # packed rows with context
        cells = xp[:, 0, 2 * c0 : 2 * c1].unflatten(-2, (c1 - c0, 2)).unflatten(-1, (-1, 2))
        sites = [cells[:, :, sy, :, sx].contiguous() for sy, sx in _ALL]  # packed R, Gr, Gb, B
        planes = _ddfapd_packed(*sites, refine)
        # Scatter each (colour, site) plane to its pixels of the band: strided copies, no shuffle.
        for k, plane in enumerate(planes):
            sy, sx = _ALL[k % 4]
            y = r0 + (sy - top - r0) % 2  # first row of this site parity in the band
            x0 = (sx - left) % 2
            i, j = (y + top - sy) // 2 - c0, (x0 + left - sx) // 2
            ny, nx = len(range(y, r1, 2)), len(range(x0, w, 2))
            out[:, k // 4, y:r1:2, x0::2] = plane[:, i : i + ny, j : j + nx]
    return out.reshape(*lead, 3, h, w)
