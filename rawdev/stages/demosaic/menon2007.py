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

The algorithm (the taps and the order of the steps, :func:`_ddfapd_packed`) is written once; two
executors run its steps: torch (:class:`_TorchOps`: any device, any float dtype, batched; the learned
ISPs' start uses it on their tensors) and OpenCV (:class:`_OpenCVOps`: numpy float32 planes). The
developer uses the second, so a classical develop needs no torch: importing torch alone takes longer
(1.3 s on a 2-core machine) than LibRaw's whole develop of a 24 MP file, and OpenCV's filters are as
fast as torch's here (both vectorised and threaded; docs/benchmarks.md).

Shape:
    mosaic ``(*, 1, H, W)`` -> image ``(*, 3, H, W)``, same dtype and device for a tensor, float32 for a
    numpy array. Not clipped.

References:
    Menon2007: D. Menon, S. Andriani, G. Calvagno, "Demosaicing with directional filtering and a
    posteriori decision", IEEE Transactions on Image Processing 16(1), 2007, pp. 132-141.
"""

from __future__ import annotations

import functools

import numpy as np

from ...cfa import pattern_cell

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


class _TorchOps:
    """The steps on ``(N, h, w)`` torch tensors (any device): shifted multiply-adds."""

    @staticmethod
    def apply(inputs, taps) -> list:
        """Evaluate packed taps (see :func:`_packed_taps`) on ``(N, h, w)`` planes.

        The outermost ring of each output is set to 0, not computed; callers provide enough context. A
        few taps per output make this cheaper than a dense convolution with mostly-zero weights.
        """
        import torch

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

    @staticmethod
    def where(mask, a, b):
        import torch

        return torch.where(mask, a, b)

    absolute = staticmethod(lambda t: t.abs_())
    add = staticmethod(lambda a, b: a + b)
    sub = staticmethod(lambda a, b: a - b)
    ge = staticmethod(lambda a, b: a >= b)


class _OpenCVOps:
    """The same steps on one image's ``(h, w)`` float32 numpy planes, with OpenCV's vectorised,
    multi-threaded kernels: each output's taps on one input are a 3x3 correlation
    (``cv2.filter2D``), so a step costs a few passes over quarter-size planes. Its outer ring is
    mirrored, not zeroed: callers provide context either way."""

    @staticmethod
    def apply(inputs, taps) -> list:
        import cv2

        outs = []
        for out_taps in taps:
            kernels: dict[int, np.ndarray] = {}
            for c, dy, dx, v in out_taps:
                kernels.setdefault(c, np.zeros((3, 3), np.float32))[1 + dy, 1 + dx] += v
            o = None
            for c, k in kernels.items():
                f = cv2.filter2D(inputs[c], -1, k, borderType=cv2.BORDER_REFLECT)
                o = f if o is None else cv2.add(o, f, dst=o)
            outs.append(o)
        return outs

    @staticmethod
    def where(mask, a, b):
        import cv2

        out = b.copy()
        cv2.copyTo(a, mask, out)
        return out

    @staticmethod
    def absolute(t):
        return np.abs(t, out=t)

    @staticmethod
    def add(a, b):
        import cv2

        return cv2.add(a, b)

    @staticmethod
    def sub(a, b):
        import cv2

        return cv2.subtract(a, b)

    @staticmethod
    def ge(a, b):
        import cv2

        return cv2.compare(a, b, cv2.CMP_GE)


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


def _ddfapd_packed(r, gr, gb, b, refine: bool, ops=_TorchOps) -> list:
    """DDFAPD on the four planes of a packed RGGB mosaic (``(N, h, w)`` tensors with
    :class:`_TorchOps`, ``(h, w)`` float32 arrays with :class:`_OpenCVOps`).

    Returns the 12 planes (R, G, B at the sites R, Gr, Gb, B) in pixel_shuffle order. Values within 8
    packed cells of the edges are wrong (each linear step leaves its outer ring unset); callers add context.
    """
    taps, apply, sub, add, where = _taps(), ops.apply, ops.sub, ops.add, ops.where

    # 1. Green along rows and along columns at the R and B sites.
    gh_r, gh_b, gv_r, gv_b = apply([r, gr, gb, b], taps["green"])
    # 2. Decision from the gradients of the colour differences; ties go to rows, as in colour-demosaicing.
    d = [ops.absolute(t) for t in apply([sub(r, gh_r), sub(b, gh_b), sub(r, gv_r), sub(b, gv_b)], taps["gradient"])]
    sh_r, sh_b, sv_r, sv_b = apply(d, taps["decide"])
    del d
    rows_r, rows_b = ops.ge(sv_r, sh_r), ops.ge(sv_b, sh_b)
    del sh_r, sh_b, sv_r, sv_b
    g_r = where(rows_r, gh_r, gv_r)
    g_b = where(rows_b, gh_b, gv_b)
    del gh_r, gh_b, gv_r, gv_b

    def rb_at_g(g_r, g_b):
        """R and B at the G sites: G plus the mean colour difference of the two nearest R (B) samples."""
        r_gr, r_gb, b_gr, b_gb = apply([sub(r, g_r), sub(b, g_b)], taps["at_g"])
        return add(r_gr, gr), add(r_gb, gb), add(b_gr, gr), add(b_gb, gb)

    # 3. R and B at G sites (bilinear colour difference), then R at B and B at R along the decision.
    r_gr, r_gb, b_gr, b_gb = rb_at_g(g_r, g_b)
    h_b, v_b, h_r, v_r = apply([sub(r_gr, b_gr), sub(r_gb, b_gb)], taps["at_rb"])
    r_b = add(b, where(rows_b, h_b, v_b))
    b_r = sub(r, where(rows_r, h_r, v_r))

    if refine:
        # 4a. Green at R and B from 3-tap means of the colour differences along the decision.
        h_r, v_r, h_b, v_b = apply([sub(r, g_r), sub(r_gr, gr), sub(r_gb, gb), sub(b, g_b), sub(b_gr, gr),
                                    sub(b_gb, gb)], taps["refine_g"])
        g_r = sub(r, where(rows_r, h_r, v_r))
        g_b = sub(b, where(rows_b, h_b, v_b))
        # 4b. R and B at G sites again, from the refined green.
        r_gr, r_gb, b_gr, b_gb = rb_at_g(g_r, g_b)
        # 4c. R at B and B at R from 3-tap means of R - B along the decision.
        h_b, v_b, h_r, v_r = apply([sub(r, b_r), sub(r_gr, b_gr), sub(r_gb, b_gb), sub(r_b, b)], taps["refine_rb"])
        r_b, b_r = add(b, where(rows_b, h_b, v_b)), sub(r, where(rows_r, h_r, v_r))

    return [r, r_gr, r_gb, r_b, g_r, gr, gb, g_b, b_r, b_gr, b_gb, b]


def demosaic_menon2007(mosaic, pattern: str, *, refine: bool = True):
    """DDFAPD demosaicking with the refining step (Menon2007), like colour-demosaicing's default.

    Args:
        mosaic: ``(*, 1, H, W)`` float Bayer mosaic, any units; H, W >= 2. A torch tensor (any device,
            computed in its dtype) or a numpy array (computed in float32 with OpenCV, no torch needed).
        pattern: the Bayer pattern of ``mosaic`` read from its top-left pixel ("RGGB", ...).
        refine: run the refining step (default, as the paper recommends).

    Returns:
        ``(*, 3, H, W)`` RGB, not clipped: same dtype and device for a tensor, float32 for an array.
        The mosaic is mirrored beyond its borders (no edge repeat); the measured R, G and B samples
        pass through unchanged.

    Example:
        >>> m = np.full((1, 8, 8), 0.5, np.float32)
        >>> bool(np.allclose(demosaic_menon2007(m, "BGGR"), 0.5))
        True
    """
    arrays = isinstance(mosaic, np.ndarray)
    lead = mosaic.shape[:-3]
    h, w = mosaic.shape[-2], mosaic.shape[-1]
    x = mosaic.reshape(-1, 1, h, w)
    n = x.shape[0]
    cell = pattern_cell(pattern)
    ry, rx = next((i, j) for i in range(2) for j in range(2) if cell[i][j] == 0)
    # Mirror so that the padded mosaic starts with R (RGGB) and has even sides.
    top, left = _MARGIN + ry, _MARGIN + rx
    bottom, right = _MARGIN + (h + top) % 2, _MARGIN + (w + left) % 2
    if arrays:
        xp = np.pad(x.astype(np.float32, copy=False), ((0, 0), (0, 0), (top, bottom), (left, right)), mode="reflect")
        out = np.empty((n, 3, h, w), np.float32)
        step = _band_step(n * w, h)
    else:
        from .bilinear import reflect_pad

        xp = reflect_pad(x, top, bottom, left, right)
        out = x.new_empty(n, 3, h, w)
        step = _band_step(n * w, h, x.device)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        c0, c1 = (top + r0 - _MARGIN) // 2, (top + r1 + _MARGIN + 1) // 2  # packed rows with context
        band = xp[:, 0, 2 * c0 : 2 * c1]
        if arrays:  # OpenCV works on one 2-D plane at a time
            for k in range(n):
                sites = [np.ascontiguousarray(band[k, sy::2, sx::2]) for sy, sx in _ALL]  # packed R, Gr, Gb, B
                planes = _ddfapd_packed(*sites, refine, _OpenCVOps)
                _scatter(out[k : k + 1], [p[None] for p in planes], r0, r1, c0, top, left)
        else:
            sites = [band[:, sy::2, sx::2].contiguous() for sy, sx in _ALL]
            _scatter(out, _ddfapd_packed(*sites, refine, _TorchOps), r0, r1, c0, top, left)
    return out.reshape(*lead, 3, h, w)


def _band_step(pixels_per_row: int, rows: int, device=None) -> int:
    """Rows per band: about :data:`_CPU_BAND_PIXELS` pixels on the CPU, the whole image on a GPU."""
    if device is not None and device.type != "cpu":
        from .bilinear import band_rows

        return band_rows(pixels_per_row, device, rows, _CPU_BAND_PIXELS)
    return max(8, min(rows, _CPU_BAND_PIXELS // max(1, pixels_per_row)))


def _scatter(out, planes, r0: int, r1: int, c0: int, top: int, left: int) -> None:
    """Each (colour, site) plane of a band to its pixels of ``out[..., r0:r1, :]``: strided copies, no
    shuffle. The planes start at packed row ``c0`` of the mosaic mirrored by ``top`` and ``left``."""
    w = out.shape[-1]
    for k, plane in enumerate(planes):
        sy, sx = _ALL[k % 4]
        y = r0 + (sy - top - r0) % 2  # first row of this site parity in the band
        x0 = (sx - left) % 2
        i, j = (y + top - sy) // 2 - c0, (x0 + left - sx) // 2
        ny, nx = len(range(y, r1, 2)), len(range(x0, w, 2))
        out[:, k // 4, y:r1:2, x0::2] = plane[:, i : i + ny, j : j + nx]
