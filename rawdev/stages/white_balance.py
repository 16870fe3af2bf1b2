"""White balance: choosing per-channel gains and applying them to a mosaic or an image.

Gains are (R, G, B) multipliers on linear normalised camera values, green = 1. Where they come from,
in order of preference for ``--wb camera`` (:func:`choose_gains`):

1. the camera's as-shot record. A stored 1, 1, 1 is taken as stored (some cameras, e.g. the
   Nikon D1, balance in analogue gain before conversion), unless the embedded preview disagrees;
2. the camera's own rendering: the gains that make the neutral render's mean chromaticity match the
   embedded preview's over well-exposed, unclipped regions (:func:`preview_gains`);
3. a robust automatic estimate, grey-edge (van de Weijer, Gevers & Gijsenij 2007,
   :func:`grey_edge_gains`);
4. LibRaw's daylight multipliers, as the last resort.

``--wb preview`` asks for 2 explicitly, ``--wb auto`` for 3, ``--wb daylight`` for 4; every fallback
comes with a notice, and :class:`WhiteBalance` says which one was used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from ..errors import UsageError
from ..types import RawImage

__all__ = [
    "parse_area",
    "area_gains",
    "WhiteBalance",
    "WBSource",
    "PreviewFit",
    "PreviewSamples",
    "preview_samples",
    "CameraThumb",
    "area_mean",
    "camera_thumbnail",
    "choose_gains",
    "grey_world_gains",
    "grey_edge_gains",
    "gains_for_white_xy",
    "gains_for_temperature",
    "parse_temperature",
    "planckian_xy",
    "preview_gains",
    "chromaticity_error",
    "apply_gains_mosaic",
    "fit_preview",
    "cfa_white_balance",
    "LibRawWB",
    "libraw_white_balance",
    "white_balance_for",
]

WBSource = Literal["camera", "preview", "auto", "daylight", "custom", "temperature", "monochrome", "area"]
WB_MODES = ("camera", "preview", "daylight", "auto")

#: A stored 1, 1, 1 stands unless the preview's chromaticity differs from its render by more than
#: this (largest relative difference of mean R/G or B/G); 10-15 % is a visible cast.
ONES_TOLERANCE = 0.10
#: Preview samples (sRGB-encoded) outside this range are too dark or too close to clipping to show
#: the camera's balance; the same bounds as the chromaticity check the docs quote.
_PREVIEW_RANGE = (0.01, 0.95)
#: Camera values at or above this fraction of the clip point carry no colour.
_CLIP = 0.95
#: The fit gives up on a preview of which fewer than this fraction of samples is usable.
_MIN_USABLE = 0.05
#: With a chroma-subsampled JPEG preview the fit uses samples whose eight neighbours are within this
#: fraction of their own value in every channel, in the raw thumbnail and the preview both: next to a
#: colour edge the JPEG's subsampled chroma smears colour across it, which put the mean linear R of
#: a synthetic tungsten preview 1.2 % below its exact rendering's (-1.3 % from non-flat samples,
#: +0.1 % from flat ones). Over the twelve synthetic preview cases 0.2-0.4 all keep the gains
#: within 0.4 % of the light's and the chromaticity within 0.8 %; at 0.1 and 0.05 too few samples
#: are flat in some cases (1.4 % and 0.9 % error).
_FLAT = 0.2
#: The fit works on the preview's grid, at most this many samples on the long side.
_FIT_SIZE = 160


@dataclass(frozen=True)
class WhiteBalance:
    """Chosen gains, where they came from, and a notice for the user when we had to fall back."""

    gains: tuple[float, float, float]
    source: WBSource
    notice: str | None = None


@dataclass(frozen=True)
class CameraThumb:
    """A small camera-RGB image of the raw data (linear, normalised, *not* white-balanced), in
    display orientation: ``rgb`` ``(h, w, 3)`` cell means per colour, and ``clipped`` ``(h, w)``,
    True where any sample of the cell reaches the clip point."""

    rgb: np.ndarray
    clipped: np.ndarray


@dataclass(frozen=True)
class PreviewFit:
    """Gains fitted to the embedded preview, and how far the as-stored gains' render is from it."""

    gains: tuple[float, float, float]
    usable: float  # fraction of the preview's samples the fit used
    preview_chroma: tuple[float, float]  # mean R/G, B/G of the preview, linear light


def _bins(n: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of ``n_out`` bins over ``n`` samples: bin ``i`` covers
    ``[floor(i n / n_out), ceil((i + 1) n / n_out))``, so neighbouring bins share a sample where ``n``
    is not a multiple of ``n_out`` (PyTorch's ``adaptive_avg_pool2d`` cells)."""
    i = np.arange(n_out)
    return (i * n) // n_out, -((-(i + 1) * n) // n_out)


def _running_sums(x: np.ndarray, bounds: list[np.ndarray], axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The cuts between all ``bounds`` (and 0, n) along ``axis`` and the running sum of ``x`` at each
    cut: the disjoint pieces between the cuts are summed once each (``reduceat``), so any range
    between two cuts is a difference of two running sums. float64 (int64 for integer data: casting
    uint8 to float64 inside ``reduceat`` is several times slower)."""
    n = x.shape[axis]
    # sorted(set()) rather than np.unique, whose first call imports numpy.ma (22 ms of `rawdev info`)
    cuts = np.array(sorted(set(np.concatenate(list(bounds) + [[0, n]]).tolist())), dtype=np.int64)
    acc = np.int64 if np.issubdtype(x.dtype, np.integer) else np.float64
    pieces = np.add.reduceat(x, cuts[:-1], axis=axis, dtype=acc)
    shape = list(pieces.shape)
    shape[axis] = 1
    return cuts, np.concatenate([np.zeros(shape, acc), np.cumsum(pieces, axis=axis)], axis=axis)


def _range_sums(x: np.ndarray, start: np.ndarray, end: np.ndarray, axis: int) -> np.ndarray:
    """Sums of ``x`` over the index ranges ``[start[i], end[i])`` along ``axis`` (empty ranges sum to
    0), in one pass over ``x`` (:func:`_running_sums`)."""
    cuts, run = _running_sums(x, [start, end], axis)
    return (np.take(run, np.searchsorted(cuts, end), axis=axis)
            - np.take(run, np.searchsorted(cuts, start), axis=axis))


def _weighted_range_sums(x: np.ndarray, ranges: list[tuple[np.ndarray, np.ndarray, float]], axis: int) -> np.ndarray:
    """``sum_k w_k * (sums of x over [start_k[i], end_k[i]))`` along ``axis`` for ``ranges`` =
    ``[(start_k, end_k, w_k), ...]``, in one pass over ``x`` (:func:`_running_sums`), float64."""
    cuts, run = _running_sums(x, [b for s, e, _ in ranges for b in (s, e)], axis)
    return sum(w * (np.take(run, np.searchsorted(cuts, e), axis=axis) - np.take(run, np.searchsorted(cuts, s), axis=axis))
               for s, e, w in ranges)


def _grid_sums(x: np.ndarray, rows: tuple[np.ndarray, np.ndarray], cols: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Sums of an ``(H, W, ...)`` array over the rectangles ``rows[0][i]:rows[1][i]`` x
    ``cols[0][j]:cols[1][j]``.

    Columns first: summing along rows (contiguous) in float64 took 0.08 s on a 24 MP float32 mosaic
    against 1.06 s for the same along columns, and leaves a small array for the second axis."""
    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    if x.ndim > 2:  # channel by channel: reducing (H, W, 3) along W walks 3-wide rows (6x slower)
        flat = x.reshape(x.shape[:2] + (-1,))
        out = np.stack([_grid_sums(flat[..., k], rows, cols) for k in range(flat.shape[-1])], axis=-1)
        return out.reshape(out.shape[:2] + x.shape[2:])
    return _range_sums(_range_sums(x, *cols, axis=1), *rows, axis=0)


def area_mean(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An ``(H, W, ...)`` array reduced to ``(h, w, ...)`` by averaging over a grid of cells: cell
    ``(i, j)`` covers rows ``floor(i H / h) .. ceil((i + 1) H / h)`` and the same in columns (area
    averaging, as PyTorch's ``adaptive_avg_pool2d``), float64."""
    (r0, r1), (c0, c1) = _bins(x.shape[0], size[0]), _bins(x.shape[1], size[1])
    area = np.outer(r1 - r0, c1 - c0).reshape(tuple(size) + (1,) * (x.ndim - 2))
    return _grid_sums(x, (r0, r1), (c0, c1)) / area


def _on_lattice(bounds: tuple[np.ndarray, np.ndarray], offset: int, period: int) -> tuple[np.ndarray, np.ndarray]:
    """Bins over the full-resolution axis mapped to the sub-lattice ``offset, offset + period, ...``:
    sample ``offset + period k`` lies in ``[s, e)`` when ``k`` lies in ``[ceil((s - offset) / period),
    ceil((e - offset) / period))``."""
    s, e = bounds
    return np.maximum(-(-(s - offset) // period), 0), np.maximum(-(-(e - offset) // period), 0)


def _tent_ranges(bounds: tuple[np.ndarray, np.ndarray], offset: int, period: int, n: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Bins over the full-resolution axis as weighted ranges of the sub-lattice ``offset, offset +
    period, ...`` (``n`` samples) whose weighted sum is the sum, over each bin, of the sub-lattice
    *linearly interpolated* to every position: sample ``offset + period k`` reaches position ``offset +
    period k + d`` with weight ``1 - |d| / period`` (``|d| < period``), so it counts with that weight in
    a bin ``[s, e)`` when it lies in ``[s - d, e - d)``. Past the first and last sample nothing is
    extrapolated (the counts, the same sums over ones, say how much weight a bin got)."""
    s, e = bounds
    out = []
    for d in range(1 - period, period):
        ls, le = _on_lattice((s - d, e - d), offset, period)
        out.append((np.minimum(ls, n), np.minimum(le, n), 1.0 - abs(d) / period))
    return out


def _cfa_cell(colors) -> np.ndarray | None:
    """The cell a colour map repeats (a :class:`~rawdev.types.CellMap`'s own, else the smallest of at
    most 16 x 16 that tiles the map), None when it repeats none."""
    cell = getattr(colors, "cell", None)
    if cell is not None:
        return np.asarray(cell)
    full = np.asarray(colors)
    H, W = full.shape
    for p in (1, 2, 4, 6, 8, 16):
        for q in (1, 2, 4, 6, 8, 16):
            if p <= H and q <= W and np.array_equal(full, np.tile(full[:p, :q], (-(-H // p), -(-W // q)))[:H, :W]):
                return full[:p, :q]
    return None


def camera_thumbnail(mosaic: np.ndarray, colors, size: tuple[int, int], orientation: int = 1) -> CameraThumb:
    """Per-colour means of a normalised ``(H, W)`` mosaic over a ``size`` = ``(h, w)`` grid (before
    orientation; cells as in :func:`area_mean`), then turned by EXIF ``orientation``: the neutral
    render's raw material, cheap enough to make for every file.

    ``colors`` is the colour map (R, G, B = 0, 1, 2), an array or a :class:`~rawdev.types.CellMap`.
    A CFA repeats a small cell, so each of its positions is a regular sub-lattice of one colour: the
    sums are taken per sub-lattice with the grid's bounds mapped onto it, every sample read once and
    the counts exact from the geometry (no per-colour masks over the whole mosaic).

    Each sub-lattice is averaged as if linearly interpolated to every pixel (:func:`_tent_ranges`),
    not over its own samples inside the cell: those sit off the cell's centre by up to half the CFA
    period, in a different direction for every colour (RGGB: R half a pixel up-left of the centre, B
    half a pixel down-right), so on any gradient the plain means differ in colour where the scene
    has none. On the grey ramp of the synthetic preview test that shifted the fitted R and B gains
    by 0.3-0.5 % (docs/white_balance.md). Interpolated, every colour's mean is centred on the cell.
    A map that repeats no cell is averaged per colour over the cell's own samples.
    """
    from .orientation import apply_orientation

    m = np.asarray(mosaic, dtype=np.float32)
    H, W = m.shape
    rows, cols = _bins(H, size[0]), _bins(W, size[1])
    cell = _cfa_cell(colors)
    sums = np.zeros((3,) + tuple(size))
    counts = np.zeros((3,) + tuple(size))
    reach = (0, 0)  # how far outside its cell a sample still counts, rows and columns
    if cell is None:  # no repeating cell (none is known): per-colour masks over the whole map
        full = np.asarray(colors)
        for c in range(3):
            sums[c] = _grid_sums(np.where(full == c, m, np.float32(0)), rows, cols)
            counts[c] = _grid_sums(full == c, rows, cols)
    else:
        p, q = cell.shape
        reach = (p - 1, q - 1)
        for dy in range(min(p, H)):
            r = _tent_ranges(rows, dy, p, len(range(dy, H, p)))
            r_weight = sum(w * (e - s) for s, e, w in r)
            for dx in range(min(q, W)):
                c = int(cell[dy, dx])
                if c < 3:
                    cc = _tent_ranges(cols, dx, q, len(range(dx, W, q)))
                    sums[c] += _weighted_range_sums(_weighted_range_sums(m[dy::p, dx::q], cc, axis=1), r, axis=0)
                    counts[c] += np.outer(r_weight, sum(w * (e - s) for s, e, w in cc))
    rgb = np.moveaxis(np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0), 0, -1).astype(np.float32)
    # clipped: any sample that counts in the cell's means reaches the clip point
    grow = [(np.maximum(a - k, 0), np.minimum(b + k, n)) for (a, b), k, n in ((rows, reach[0], H), (cols, reach[1], W))]
    clipped = _grid_sums(m >= _CLIP, *grow) > 0
    return CameraThumb(apply_orientation(rgb, orientation), apply_orientation(clipped, orientation))


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _trim_bars(preview: np.ndarray) -> np.ndarray:
    """The preview without black letterbox bars: edge rows and columns whose brightest sample is
    nearly black (the Nikon D1 pads its 3:2 frame into a 4:3 bitmap)."""
    dark = preview.max(-1) <= 8
    rows, cols = ~dark.all(1), ~dark.all(0)
    if not rows.any() or not cols.any():
        return preview
    y = np.nonzero(rows)[0]
    x = np.nonzero(cols)[0]
    return preview[y[0]:y[-1] + 1, x[0]:x[-1] + 1]


def _align(preview: np.ndarray, aspect: float) -> np.ndarray:
    """The preview without letterbox bars, cropped about its centre to the raw frame's aspect ratio
    (width / height): cameras store previews of the recorded frame, sometimes letterboxed or of a
    slightly different crop."""
    preview = _trim_bars(preview)
    h, w = preview.shape[:2]
    if w / h > aspect * 1.02:
        nw = max(1, int(round(h * aspect)))
        x0 = (w - nw) // 2
        return preview[:, x0:x0 + nw]
    if w / h < aspect / 1.02:
        nh = max(1, int(round(w / aspect)))
        y0 = (h - nh) // 2
        return preview[y0:y0 + nh]
    return preview


def preview_grid(preview: np.ndarray, aspect: float, limit: int = _FIT_SIZE) -> tuple[np.ndarray, tuple[int, int]]:
    """The preview (``(H, W, 3)`` uint8 sRGB, display orientation) aligned to the raw frame's
    ``aspect`` and reduced to at most ``limit`` (and :data:`_FIT_SIZE`) samples on its long side:
    float sRGB ``(h, w, 3)`` and that ``(h, w)``."""
    limit = max(1, min(int(limit), _FIT_SIZE))
    p = _align(np.asarray(preview, dtype=np.uint8)[..., :3], aspect).astype(np.float32) / 255.0
    h, w = p.shape[:2]
    k = max(1, int(np.ceil(max(h, w) / limit)))
    size = (max(1, h // k), max(1, w // k))
    # Encoded values are averaged: averaging in linear light instead moved the synthetic fits by
    # 0.1 % at most and put the Canon G1 0.2 points further from its preview (docs/white_balance.md).
    return area_mean(p, size).astype(np.float32), size


def _render(thumb: CameraThumb, rgb_cam: np.ndarray | None, gains) -> np.ndarray:
    """The neutral render of ``thumb`` with ``gains``: ``rgb_cam @ (g * cam)`` per sample, linear sRGB."""
    m = np.eye(3) if rgb_cam is None else np.asarray(rgb_cam, dtype=np.float64)
    return (np.asarray(thumb.rgb, dtype=np.float64) * np.asarray(gains[:3], dtype=np.float64)) @ m.T


def _usable(p: np.ndarray, render: np.ndarray, thumb: CameraThumb) -> np.ndarray:
    """Samples where both the preview (sRGB-encoded) and the render (linear) are neither near black
    nor near clipping, in the same sRGB-encoded bounds for both, and the raw is unclipped."""
    lo, hi = _PREVIEW_RANGE
    r_lo, r_hi = _srgb_to_linear(np.array([lo, hi]))
    return ((p.min(-1) > lo) & (p.max(-1) < hi) & (render.min(-1) > r_lo) & (render.max(-1) < r_hi)
            & ~thumb.clipped & np.isfinite(render).all(-1))


def _flat(x: np.ndarray, tolerance: float) -> np.ndarray:
    """True where each of the eight neighbours of a sample of ``x`` (``(h, w, 3)``, linear; edges
    replicated) is within ``tolerance`` of the sample in every channel, relative to the sample."""
    h, w = x.shape[:2]
    pad = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    bound = tolerance * np.abs(x)
    ok = np.ones((h, w), dtype=bool)
    for dy in range(3):
        for dx in range(3):
            ok &= (np.abs(pad[dy:dy + h, dx:dx + w] - x) <= bound).all(-1)
    return ok


def _comparable(thumb: CameraThumb, p: np.ndarray, subsampled: bool) -> np.ndarray:
    """Where a preview sample can be compared with the render: everywhere for a preview with full
    chroma, only where the scene is flat (:data:`_FLAT`) for a JPEG with subsampled chroma."""
    if not subsampled:
        return np.ones(p.shape[:2], dtype=bool)
    return _flat(np.asarray(thumb.rgb, dtype=np.float64), _FLAT) & _flat(_srgb_to_linear(p), _FLAT)


def _fit_samples(p: np.ndarray, render: np.ndarray, thumb: CameraThumb, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The samples a comparison of ``render`` with the preview ``p`` uses, and the usable ones
    (:func:`_usable`): the usable ones where the scene is ``flat`` around them, or all usable ones
    where fewer than :data:`_MIN_USABLE` of the grid are both."""
    ok = _usable(p, render, thumb)
    both = ok & flat
    return (both if both.mean() >= _MIN_USABLE else ok), ok


def preview_gains(thumb: CameraThumb, preview_srgb: np.ndarray, rgb_cam: np.ndarray | None, *,
                  subsampled: bool = False) -> PreviewFit | None:
    """Gains that make the neutral render of ``thumb`` match the camera's own rendering.

    The render is ``rgb_cam @ (g * cam)`` (linear sRGB), the preview ``preview_srgb`` (the same grid,
    sRGB-encoded floats) linearised with the sRGB EOTF. Over samples well exposed in both and unclipped
    in the raw, the means must agree up to exposure: ``rgb_cam (g * mean(cam)) ∝ mean(preview)``, so
    ``g ∝ (rgb_cam^-1 mean(preview)) / mean(cam)``, in closed form; which samples are well exposed in
    the render depends on ``g``, so fit and selection alternate three times. Means (not per-pixel
    ratios) are what a chromaticity comparison sees, and they shrug off small misalignments and the
    camera's tone curve on neutral regions.

    ``subsampled``: the preview is a JPEG with subsampled chroma (4:2:2, 4:2:0), whose chroma is
    smeared across colour edges; the means are then taken over the usable samples in flat
    surroundings (:data:`_FLAT`), or all usable ones where fewer than 5 % of the grid are both.

    Returns None when the preview is useless: fewer than 5 % usable samples, a grey-scale preview,
    or gains that are not plausible (outside 1/8..8).
    """
    p = np.asarray(preview_srgb, dtype=np.float64)
    if p.shape[:2] != thumb.rgb.shape[:2]:
        raise ValueError(f"preview grid {p.shape[:2]} and camera thumbnail {thumb.rgb.shape[:2]} differ")
    m = np.eye(3) if rgb_cam is None else np.asarray(rgb_cam, dtype=np.float64)
    cam = np.asarray(thumb.rgb, dtype=np.float64)
    # Start from grey-world gains, not 1, 1, 1: under a strongly coloured light (shade, tungsten)
    # camera RGB with unit gains renders most samples with a channel at or below zero through the
    # matrix, too few stay usable and the fit gave up (95 % unusable on a shade test file; 0.9 % off
    # the preview from the grey-world start). The alternation below refines it either way.
    cm = cam.reshape(-1, 3).mean(0)
    g = cm[1] / cm if np.all(cm > 0) else np.ones(3)
    flat = _comparable(thumb, p, subsampled)
    ok = None
    for _ in range(3):
        r = _render(thumb, rgb_cam, g)
        # the render's exposure is not the preview's: compare it at the preview's brightness
        ok0 = _fit_samples(p, r, thumb, flat)[0] if ok is None else ok
        scale = _srgb_to_linear(p[ok0]).mean() / max(r[ok0].mean(), 1e-12) if ok0.any() else 1.0
        ok, usable = _fit_samples(p, r * scale, thumb, flat)
        if usable.mean() < _MIN_USABLE:
            return None
        lin = _srgb_to_linear(p[ok])
        if float(np.abs(lin - lin.mean(-1, keepdims=True)).max()) < 1e-3:
            return None  # a grey-scale preview says nothing about colour
        v = np.linalg.solve(m, lin.mean(0))
        g = v / cam[ok].mean(0)
        if not np.all(np.isfinite(g)) or g[1] <= 0:
            return None
        g = g / g[1]
        if np.any(g < 1 / 8) or np.any(g > 8):
            return None
    pm = _srgb_to_linear(p[ok]).mean(0)
    return PreviewFit((float(g[0]), 1.0, float(g[2])), float(ok.mean()), (float(pm[0] / pm[1]), float(pm[2] / pm[1])))


def chromaticity_error(thumb: CameraThumb, preview_srgb: np.ndarray, rgb_cam: np.ndarray | None,
                       gains: tuple[float, ...], *, subsampled: bool = False) -> float:
    """Largest relative difference of mean R/G and B/G (linear light) between the render of
    ``thumb`` with ``gains`` and the preview, over the samples :func:`preview_gains` would use
    (``subsampled`` as there; inf where there are none)."""
    p = np.asarray(preview_srgb, dtype=np.float64)
    r = _render(thumb, rgb_cam, gains)
    ok = _fit_samples(p, r, thumb, _comparable(thumb, p, subsampled))[0]
    if not ok.any():
        return float("inf")
    rm, pm = r[ok].mean(0), _srgb_to_linear(p[ok]).mean(0)
    return float(max(abs(rm[0] / rm[1] / (pm[0] / pm[1]) - 1), abs(rm[2] / rm[1] / (pm[2] / pm[1]) - 1)))


def grey_edge_gains(thumb: CameraThumb, p: float = 6.0, sigma: float = 1.0) -> tuple[float, float, float] | None:
    """Grey-edge illuminant estimate (van de Weijer, Gevers & Gijsenij 2007, "Edge-based color
    constancy", IEEE TIP 16(9), eq. 10 with n = 1): the Minkowski ``p``-norm of each channel's
    Gaussian-smoothed (``sigma``, in thumbnail samples) gradient magnitude is proportional to the
    illuminant, ``(∫ |∇ f_c^σ|^p dx)^(1/p) = k e_c``; gains are ``e_G / e_c``. The average reflectance
    *difference* is achromatic far more often than the average reflectance (grey-world), so large
    uniformly coloured areas do not pull it. Cells near clipped ones are left out (clipping makes
    false, white edges). None when the image has no usable edges.
    """
    rgb = np.asarray(thumb.rgb, dtype=np.float32)
    r = max(1, int(round(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    h, w = rgb.shape[:2]
    pad = np.pad(rgb, ((r, r), (r, r), (0, 0)), mode="edge")
    # separable Gaussian, valid part of the edge-replicated image: the thumbnail's size again
    sm = sum(k[j] * pad[:, j:j + w] for j in range(2 * r + 1))
    sm = sum(k[j] * sm[j:j + h] for j in range(2 * r + 1))
    if h < 3 or w < 3:
        return None
    gx = sm[1:-1, 2:] - sm[1:-1, :-2]
    gy = sm[2:, 1:-1] - sm[:-2, 1:-1]
    mag = np.sqrt(gx * gx + gy * gy)
    # within r + 1 cells of a clipped one (a square window, taken one axis at a time)
    near = np.pad(np.asarray(thumb.clipped, dtype=bool), r + 1)
    win = 2 * r + 3
    near = np.lib.stride_tricks.sliding_window_view(near, win, axis=0).any(-1)
    near = np.lib.stride_tricks.sliding_window_view(near, win, axis=1).any(-1)[1:-1, 1:-1]
    ok = ~near & np.isfinite(mag).all(-1)
    if int(ok.sum()) < 16:
        return None
    e = (mag[ok].astype(np.float64) ** p).mean(0) ** (1.0 / p)
    if not np.all(e > 0) or not np.all(np.isfinite(e)):
        return None
    return (float(e[1] / e[0]), 1.0, float(e[1] / e[2]))


#: Correlated colour temperature (K) of each EXIF LightSource code a DNG's CalibrationIlluminant can
#: hold (the values Adobe's DNG SDK uses to interpolate between a file's two colour matrices).
ILLUMINANT_CCT = {1: 5500, 2: 4150, 3: 2850, 4: 5500, 9: 5500, 10: 6500, 11: 7500, 12: 6430, 13: 5000,
                  14: 4150, 15: 3450, 16: 2940, 17: 2856, 18: 4874, 19: 6774, 20: 5503, 21: 6504, 22: 7504,
                  23: 5003, 24: 3200}


def cct_mccamy(x: float, y: float) -> float:
    """Correlated colour temperature (K) of a CIE 1931 chromaticity near the Planckian locus
    (McCamy 1992, Color Res. Appl. 17(2), eq. 1; within a few kelvin from 2856 to 6504 K)."""
    d = 0.1858 - y
    if abs(d) < 1e-9:  # off the formula's range (its epicentre); far from any light's white
        return float("inf") if x < 0.3320 else 0.0
    n = (x - 0.3320) / d
    return 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33


def gains_for_white_xy(xy: tuple[float, float], matrices) -> tuple[float, float, float]:
    """White-balance gains (R, G, B; G = 1) for a DNG whose as-shot white is the chromaticity ``xy``
    (AsShotWhiteXY), from its colour matrices (:class:`~rawdev.types.DngWhite`): the camera neutral
    is ``CM XYZ``, the white's XYZ (Y = 1) through the XYZ -> camera matrix, and the gains its
    reciprocal. With two matrices, CM is interpolated linearly in inverse colour temperature between
    the two calibration illuminants, clamped at either end (DNG specification 1.7, chapter 6,
    "Mapping Camera Color Space to CIE XYZ Space"; the white's temperature is McCamy's).

    Raises:
        ValueError: no matrix, or a white the matrices map to a non-positive camera value.
    """
    if not matrices:
        raise ValueError("AsShotWhiteXY needs a ColorMatrix to map it to the camera")
    from ..cameras import xyz_of_xy

    x, y = float(xy[0]), float(xy[1])
    white = xyz_of_xy(x, y)
    cms = [np.asarray(m, np.float64).reshape(3, 3) for m, _ in matrices]
    cm = cms[0]
    temps = [ILLUMINANT_CCT.get(int(light)) for _, light in matrices]
    if len(cms) == 2 and None not in temps and temps[0] != temps[1]:
        (t1, c1), (t2, c2) = sorted(zip(temps, cms), key=lambda tc: tc[0])
        t = min(max(cct_mccamy(x, y), t1), t2)
        g = (1.0 / t - 1.0 / t2) / (1.0 / t1 - 1.0 / t2)
        cm = g * c1 + (1.0 - g) * c2
    neutral = cm @ white
    if not np.all(neutral > 0):
        raise ValueError(f"the colour matrix maps white {x:.4f}, {y:.4f} to camera {neutral.round(4).tolist()}")
    gains = neutral[1] / neutral
    return float(gains[0]), 1.0, float(gains[2])


#: Colour temperatures ``--wb NNNNK`` takes: the range of Kim et al.'s Planckian fit.
TEMPERATURE_RANGE = (1667.0, 25000.0)


def parse_temperature(mode) -> float | None:
    """The kelvins of a white balance written as a colour temperature ("5500K", any case), else None.

    Raises:
        UsageError: a temperature outside :data:`TEMPERATURE_RANGE`.
    """
    if not isinstance(mode, str) or not mode.strip().lower().endswith("k"):
        return None
    try:
        kelvin = float(mode.strip()[:-1])
    except ValueError:
        return None
    lo, hi = TEMPERATURE_RANGE
    if not lo <= kelvin <= hi:
        raise UsageError(f"white balance {mode!r}: a colour temperature from {lo:.0f} K to {hi:.0f} K")
    return kelvin


def planckian_xy(kelvin: float) -> tuple[float, float]:
    """CIE 1931 chromaticity of a black body at ``kelvin`` (1667-25000 K), the cubic fit of the
    Planckian locus by Kim et al. (J. Korean Phys. Soc. 41(6), 865, 2002; within 6e-4 of the tabulated
    locus at 2856, 5000, 6500 and 10000 K, ``tests/test_white_balance.py``): the white a "5500 K,
    tint 0" means in raw converters, which measure tint from this locus."""
    t = float(kelvin)
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def gains_for_temperature(kelvin: float, rgb_cam: np.ndarray | None, daylight) -> tuple[float, float, float]:
    """White-balance gains (R, G, B; G = 1) that make a black body at ``kelvin`` neutral, for any camera
    LibRaw describes: its white ``xy`` (:func:`planckian_xy`) goes to linear sRGB, back through the
    colour matrix ``rgb_cam`` (white-balanced camera RGB -> sRGB) and divided by the daylight
    multipliers ``daylight`` (which the matrix assumes: LibRaw's are D65's for it), giving the raw
    response; the gains are its reciprocal. Without a matrix the camera is taken as sRGB, without
    daylight multipliers as 1, 1, 1, as the developer does.

    Raises:
        ValueError: a camera the white maps to a non-positive raw value.
    """
    from ..cameras import XYZ_TO_SRGB, xyz_of_xy

    srgb = XYZ_TO_SRGB @ xyz_of_xy(*planckian_xy(kelvin))
    balanced = srgb if rgb_cam is None else np.linalg.solve(np.asarray(rgb_cam, np.float64), srgb)
    raw = balanced / (np.ones(3) if daylight is None else np.asarray(daylight, np.float64)[:3])
    if not np.all(raw > 0):
        raise ValueError(f"{kelvin:.0f} K maps to the camera values {raw.round(4).tolist()}")
    gains = raw[1] / raw
    return float(gains[0]), 1.0, float(gains[2])


def grey_world_gains(mosaic: np.ndarray, colors: np.ndarray, clip: float = 0.98) -> tuple[float, float, float]:
    """Grey-world estimate (Buchsbaum 1980): the mean of each colour over unclipped pixels is equal.

    ``mosaic`` is ``(H, W)`` linear normalised, ``colors`` the ``(H, W)`` colour index map. Pixels at or
    above ``clip`` are left out because clipped values carry no colour. Subsampled for speed: the
    estimate is a mean, and every 4th row/column of each CFA phase is plenty.
    """
    h, w = mosaic.shape[-2:]
    step = 4 if min(h, w) >= 64 else 2
    h2, w2 = h // step * step, w // step * step
    # The top-left 2x2 of every step x step block: all CFA phases are sampled, at 1/4 of the cost.
    m = np.asarray(mosaic)[:h2, :w2].reshape(h2 // step, step, w2 // step, step)[:, :2, :, :2].reshape(-1)
    c = np.asarray(colors)[:h2, :w2].reshape(h2 // step, step, w2 // step, step)[:, :2, :, :2].reshape(-1)
    ok = (m < clip) & (m > 0)
    means = []
    for ch in range(3):
        sel = m[ok & (c == ch)]
        means.append(float(sel.mean(dtype=np.float64)) if sel.size else float("nan"))
    if not all(np.isfinite(means)) or min(means) <= 0:
        return (1.0, 1.0, 1.0)
    g = means[1]
    return (g / means[0], 1.0, g / means[2])


GainsFn = Callable[[], "tuple[float, float, float] | None"]


def parse_area(mode) -> tuple[int, int, int, int] | None:
    """``--wb area:X,Y,W,H`` -> ``(x, y, w, h)``: a neutral area (grey card, white wall) given by its
    left, top, width and height in pixels of the developed picture, upright, at full size (what
    ``rawdev develop`` writes without ``--size`` or ``--half-size``); None for any other mode. dcraw's
    ``-A x y w h``, whose box is in the sensor's own, unturned, coordinates.

    Raises:
        UsageError: ``area:`` followed by anything but four whole numbers, a width or height below 1.
    """
    text = str(mode).strip().lower()
    if not text.startswith("area:"):
        return None
    from ..config import parse_box

    return parse_box(text[5:], "--wb", prefix="area:")


def area_gains(values: np.ndarray, colors: np.ndarray, clip: float = _CLIP) -> tuple[float, float, float]:
    """Gains (G = 1) that make the mean of a neutral area neutral: ``values`` the area's linear,
    normalised samples, ``(h, w)`` of a mosaic with colour indices ``colors`` (0 R, 1 G, 2 B), or
    ``(h, w, 3)`` pixels (``colors`` None). Samples at or above ``clip`` carry no colour and are left
    out; more than 2 % of a colour's at or above it is an area partly blown out, refused.

    Raises:
        UsageError: a colour is partly blown out in the area, or has no light there.
    """
    v = np.asarray(values, np.float64)
    if colors is None:
        chans = [v[..., k].reshape(-1) for k in range(3)]
    else:
        c = np.asarray(colors)
        chans = [v[c == k] for k in range(3)]
    means = []
    for name, x in zip(("red", "green", "blue"), chans):
        kept = x[x < clip]
        # leaving out a brighter part of the area would bias its mean: a partly blown area is refused
        if x.size == 0 or kept.size < 0.98 * x.size or kept.mean() <= 0:
            why = "is blown out in" if x.size and kept.size < 0.98 * x.size else "holds no light in"
            raise UsageError(f"--wb area: the area {why} {name}; choose a grey or white area that is neither "
                             "blown out nor black")
        means.append(float(kept.mean()))
    return means[1] / means[0], 1.0, means[1] / means[2]


def _is_ones(v: tuple[float, ...]) -> bool:
    return all(abs(float(x) - 1.0) < 1e-6 for x in v[:3])


def choose_gains(
    mode: str | tuple[float, ...],
    *,
    camera: tuple[float, ...] | None,
    daylight: tuple[float, ...] | None,
    preview: Callable[[], PreviewFit | None] | None = None,
    ones_error: Callable[[], float | None] | None = None,
    auto: GainsFn | None = None,
    grey_world: GainsFn | None = None,
    temperature: Callable[[float], tuple[float, float, float]] | None = None,
) -> WhiteBalance:
    """Resolve ``mode`` ("camera", "preview", "auto", "daylight", a colour temperature "5500K", or
    explicit R,G,B[,G]) to gains with G = 1, following the chain of the module docstring.

    The estimators are callables, run only when the chain reaches them: ``preview`` fits the
    embedded preview (None: absent or useless), ``ones_error`` is the chromaticity error of a stored
    1, 1, 1 against the preview (None: no preview), ``auto`` is grey-edge (None: no usable edges),
    ``grey_world`` its own fallback (kept for callers that pass only it), ``temperature`` the gains of
    a colour temperature for this camera (:func:`gains_for_temperature`).
    """
    if isinstance(mode, (tuple, list)):
        vals = [float(v) for v in mode]
        if len(vals) not in (3, 4) or any(not np.isfinite(v) or v <= 0 for v in vals):
            raise UsageError(f"custom white balance needs 3 or 4 positive numbers, got {mode!r}")
        return WhiteBalance((vals[0] / vals[1], 1.0, vals[2] / vals[1]), "custom")
    mode = str(mode).lower()
    if mode in ("grey-world", "gray-world", "grey-edge", "gray-edge"):
        mode = "auto"
    kelvin = parse_temperature(mode)
    if kelvin is not None:
        if temperature is None:
            raise UsageError(f"white balance {mode!r}: no colour matrix to map a temperature with")
        return WhiteBalance(temperature(kelvin), "temperature")
    if mode not in WB_MODES:
        raise UsageError(f"unknown white balance {mode!r}; use camera, preview, auto, daylight, a temperature "
                         "(5500K) or R,G,B[,G]")

    def run(fn):
        return fn() if fn is not None else None

    def from_auto(why: str | None) -> WhiteBalance | None:
        g = run(auto) or run(grey_world)
        if g is None:
            return None
        return WhiteBalance(tuple(g), "auto", None if why is None else f"{why}; using grey-edge (automatic)")

    def from_daylight(why: str | None) -> WhiteBalance:
        if daylight is not None:
            return WhiteBalance((daylight[0], 1.0, daylight[2]), "daylight",
                                None if why is None else f"{why}; using daylight multipliers")
        return WhiteBalance((1.0, 1.0, 1.0), "custom",
                            f"{why or 'no daylight multipliers known for this camera'}; no estimate possible, using 1, 1, 1")

    def from_preview(why: str | None) -> WhiteBalance | None:
        fit = run(preview)
        if fit is None:
            return None
        note = None if why is None else f"{why}; fitted to the embedded preview ({fit.usable:.0%} of it used)"
        return WhiteBalance(fit.gains, "preview", note)

    if mode == "camera":
        if camera is not None and not _is_ones(camera):
            return WhiteBalance((camera[0], 1.0, camera[2]), "camera")
        if camera is not None:  # stored 1, 1, 1: stands unless the camera's own preview disagrees
            err = run(ones_error)
            if err is None or err <= ONES_TOLERANCE:
                return WhiteBalance((1.0, 1.0, 1.0), "camera")
            wb = from_preview(f"the stored white balance 1, 1, 1 differs from the embedded preview by {err:.0%}")
            if wb is not None:
                return wb
            return WhiteBalance((1.0, 1.0, 1.0), "camera")
        why = "no as-shot white balance in the file"
        return (from_preview(why) or from_auto(f"{why} and no usable embedded preview")
                or from_daylight(f"{why}, no usable preview and no edges to estimate from"))
    if mode == "preview":
        return (from_preview(None) or from_auto("no usable embedded preview")
                or from_daylight("no usable embedded preview and no edges to estimate from"))
    if mode == "auto":
        return from_auto(None) or from_daylight("no edges to estimate a white balance from")
    if daylight is not None:
        return WhiteBalance((daylight[0], 1.0, daylight[2]), "daylight")
    return from_auto("no daylight multipliers known for this camera") or from_daylight(None)


def apply_gains_mosaic(mosaic: np.ndarray, colors: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """Multiply each mosaic sample by the gain of its colour, in place; returns ``mosaic``."""
    mosaic *= np.asarray(gains, dtype=mosaic.dtype)[np.asarray(colors, dtype=np.intp)]
    return mosaic


# --------------------------------------------------------------------------------------------------
# The white balance of a file: the chain above run on its data, its embedded preview and, for the
# sensors LibRaw renders itself, LibRaw's render (numpy throughout: ``rawdev info`` shows it without
# importing torch)


@dataclass(frozen=True)
class PreviewSamples:
    """The embedded preview on its fitting grid (sRGB-encoded floats), a camera thumbnail on the same
    grid, and whether the preview is a JPEG with subsampled chroma (the fit's ``subsampled``)."""

    grid: np.ndarray
    thumb: CameraThumb
    subsampled: bool


def fit_preview(raw: RawImage) -> tuple[np.ndarray, CameraThumb] | None:
    """The grid and thumbnail of :func:`preview_samples`, or None."""
    s = preview_samples(raw)
    return None if s is None else (s.grid, s.thumb)


def preview_samples(raw: RawImage) -> PreviewSamples | None:
    """The embedded preview on its fitting grid and a camera thumbnail on the same grid, or None when
    the file has no preview rawpy can read (:mod:`rawdev.io.preview` decodes it)."""
    from ..errors import RawdevError
    from ..io.preview import load_preview
    from .normalise import normalise
    from .orientation import oriented_size

    try:
        stored, pv = load_preview(raw.meta.path)
    except (RawdevError, OSError, ValueError):
        return None
    H, W = raw.data.shape[:2]
    ow, oh = oriented_size(W, H, raw.meta.orientation)
    # every cell of the grid must hold samples of every colour of the CFA
    grid, (gh, gw) = preview_grid(pv, ow / oh, max(H, W) // (2 * raw.meta.cfa.period))
    size = (gw, gh) if raw.meta.orientation in (5, 6, 7, 8) else (gh, gw)
    m = normalise(raw.data, np.asarray(raw.black_map), raw.meta.white_level)
    thumb = camera_thumbnail(m, raw.colors, size, raw.meta.orientation)
    return PreviewSamples(grid, thumb, stored.chroma_subsampled)


def _temperature_gains(kelvin: float, meta) -> tuple[float, float, float]:
    """:func:`gains_for_temperature` for a file's matrix and daylight multipliers, as a usage error
    when they cannot map it."""
    try:
        return gains_for_temperature(kelvin, meta.rgb_cam, meta.daylight_wb)
    except ValueError as err:
        raise UsageError(f"white balance {kelvin:.0f} K: {err}", meta.path) from None


def cfa_white_balance(raw: RawImage, mode) -> WhiteBalance:
    """:func:`choose_gains` for a CFA ``raw``, with the estimators it may need made lazily from the
    data (the preview is read only when the chain reaches it); gains scaled so the smallest is 1."""
    from .normalise import normalise

    meta = raw.meta
    cache: dict = {}

    def fitted():
        if "p" not in cache:
            cache["p"] = preview_samples(raw) if raw.colors is not None and raw.data.size else None
        return cache["p"]

    def preview():
        f = fitted()
        return None if f is None else preview_gains(f.thumb, f.grid, meta.rgb_cam, subsampled=f.subsampled)

    def ones_error():
        f = fitted()
        return None if f is None else chromaticity_error(f.thumb, f.grid, meta.rgb_cam, (1.0, 1.0, 1.0),
                                                         subsampled=f.subsampled)

    def auto():
        if raw.colors is None or raw.data.size == 0:
            return None
        H, W = raw.data.shape[:2]
        k = max(2 * meta.cfa.period, int(np.ceil(max(H, W) / 512)))
        m = normalise(raw.data, np.asarray(raw.black_map), meta.white_level)
        return grey_edge_gains(camera_thumbnail(m, raw.colors, (max(1, H // k), max(1, W // k))))

    wb = choose_gains(mode, camera=meta.camera_wb, daylight=meta.daylight_wb, preview=preview,
                      ones_error=ones_error, auto=auto, temperature=lambda k: _temperature_gains(k, meta))
    # LibRaw's convention: the smallest multiplier is 1, so every channel's clip point is >= 1.0
    # and clipped highlights come out white, not grey.
    lo = min(wb.gains)
    return replace(wb, gains=tuple(g / lo for g in wb.gains))


@dataclass(frozen=True)
class LibRawWB:
    """How LibRaw is asked to white-balance a sensor it renders itself (4-colour CFAs, linear DNGs):
    its own settings (``user_wb`` multipliers in its colour order, or the as-shot or automatic ones,
    or its daylight default), then ``post``, per-channel gains on its linear sRGB output (the
    preview fit, which has no camera-space form for a 4-colour sensor). ``render``: LibRaw's linear
    render with exactly these settings, where the preview fit already made it (the develop uses it
    instead of rendering the same thing again: 0.45 s of a Canon G1 develop)."""

    wb: WhiteBalance
    user_wb: tuple[float, ...] | None = None
    camera: bool = False
    auto: bool = False
    post: tuple[float, float, float] = (1.0, 1.0, 1.0)
    highlight_mode: int = 0
    render: np.ndarray | None = field(default=None, compare=False, repr=False)


def libraw_white_balance(raw: RawImage, mode, highlight_mode: int, *, quick: bool = False) -> LibRawWB:
    """``--wb`` for LibRaw-rendered sensors, in LibRaw's own terms, so that every choice renders
    exactly as LibRaw renders it; ``preview`` fits a correction of the as-shot render to the
    embedded preview. Falls back like :func:`choose_gains`, with notices. ``highlight_mode`` is
    LibRaw's (dcraw ``-H``: 0 clip, 1 unclip, 2 blend). ``quick`` (``rawdev info``): the preview fit
    runs on LibRaw's linear-interpolation render instead of the develop's (see
    :func:`_fit_libraw_preview`)."""
    meta = raw.meta
    ones = (1.0, 1.0, 1.0)
    if isinstance(mode, (tuple, list)):
        vals = [float(v) for v in mode]
        wb = choose_gains(mode, camera=None, daylight=None)
        return LibRawWB(wb, user_wb=tuple(vals) if len(vals) == 4 else (vals[0], vals[1], vals[2], vals[1]))
    mode = str(mode).lower()
    kelvin = parse_temperature(mode)
    if kelvin is not None:
        if meta.num_colors != 3:
            raise UsageError(f"white balance {mode!r}: a colour temperature needs an RGB sensor; this one is "
                             f"{meta.num_colors}-colour ({meta.cfa.color_desc}); use camera, preview, auto or daylight",
                             meta.path)
        r, g, b = _temperature_gains(kelvin, meta)
        return LibRawWB(WhiteBalance((r, g, b), "temperature"), user_wb=(r, g, b, g))
    if mode in ("camera", "preview"):
        if meta.camera_wb is None:
            base = LibRawWB(WhiteBalance(ones, "daylight"))
        elif meta.white_xy is not None:  # multipliers LibRaw does not know of (AsShotWhiteXY)
            base = LibRawWB(WhiteBalance(ones, "camera"), user_wb=tuple(meta.camera_wb))
        else:
            base = LibRawWB(WhiteBalance(ones, "camera"), camera=True)
        # A 4-colour sensor's as-shot multipliers go through LibRaw's generic CMYG conversion, not
        # a colour matrix rawdev can check; the camera's own preview is the camera's conversion, so
        # where one is usable the as-shot render is corrected to it (the Canon G1's as-shot render
        # is 13 % off its preview, a visible cast), with a notice saying by how much.
        check = meta.cfa.kind == "other"
        if mode == "camera" and meta.camera_wb is not None and not check:
            return base
        base = replace(base, highlight_mode=highlight_mode)
        fit = _fit_libraw_preview(raw, base, quick=quick)
        if mode == "camera" and meta.camera_wb is not None:
            if fit is None:
                return base
            return replace(base, wb=WhiteBalance(fit[0], "preview", f"{meta.num_colors}-colour sensor: the as-shot render "
                                                 f"differs from the embedded preview by {fit[1]:.0%}; corrected to the preview"
                                                 ), post=fit[0], render=fit[2])
        if fit is not None:
            why = None if mode == "preview" else "no as-shot white balance in the file"
            return replace(base, wb=WhiteBalance(fit[0], "preview", None if why is None else f"{why}; fitted to the embedded preview"),
                           post=fit[0], render=fit[2])
        why = "no usable embedded preview" if mode == "preview" else "no as-shot white balance and no usable embedded preview"
        return LibRawWB(WhiteBalance(ones, "auto", f"{why}; using LibRaw's automatic white balance"), auto=True)
    if mode in ("auto", "grey-world", "gray-world", "grey-edge", "gray-edge"):
        return LibRawWB(WhiteBalance(ones, "auto"), auto=True)
    if mode == "daylight":
        return LibRawWB(WhiteBalance(ones, "daylight"))
    choose_gains(mode, camera=None, daylight=None)  # raises the usage error for an unknown mode
    raise AssertionError(mode)


def _fit_libraw_preview(
    raw: RawImage, base: LibRawWB, *, quick: bool = False
) -> tuple[tuple[float, float, float], float, np.ndarray | None] | None:
    """Per-channel gains on LibRaw's linear sRGB render (with ``base``'s settings) that make its mean
    chromaticity match the embedded preview's (:func:`preview_gains` with an identity matrix), how
    far the render is from the preview without them (:func:`chromaticity_error`), and the render.

    ``quick``: the render is LibRaw's linear interpolation (0.18 s on a Canon G1 against 0.52 s for
    the develop's, which LibRaw makes with VNG on 4-colour sensors) and is not returned. The fit
    reads only area means at the preview's resolution, but edges differ: on the G1 the quick fit's
    blue gain is 0.917 against 0.906, and applied to the develop's render it lands 4.4 % from the
    preview in chromaticity against 3.2 %, so a develop always fits on its own render.
    """
    from ..backends.registry import LIBRAW, get
    from ..errors import RawdevError
    from ..io.preview import load_preview
    from .orientation import apply_orientation, oriented_size

    try:
        stored, pv = load_preview(raw.meta.path)
    except (RawdevError, OSError, ValueError):
        return None
    lin = get(LIBRAW).build()(raw.meta.path, wb=base.user_wb, camera_wb=base.camera, auto_wb=base.auto,
                              highlight_mode=base.highlight_mode, **({"demosaic": "LINEAR"} if quick else {}))
    H, W = lin.shape[:2]
    ow, oh = oriented_size(W, H, raw.meta.orientation)
    grid, (gh, gw) = preview_grid(pv, ow / oh)
    size = (gw, gh) if raw.meta.orientation in (5, 6, 7, 8) else (gh, gw)
    rgb = area_mean(lin, size).astype(np.float32)
    # any channel at the clip point, one channel at a time (.any(-1) over 3-wide rows is 7x slower)
    over = np.logical_or.reduce([lin[..., k] >= _CLIP for k in range(lin.shape[-1])])
    clipped = _grid_sums(over, _bins(H, size[0]), _bins(W, size[1])) > 0
    thumb = CameraThumb(apply_orientation(rgb, raw.meta.orientation), apply_orientation(clipped, raw.meta.orientation))
    sub = stored.chroma_subsampled
    fit = preview_gains(thumb, grid, None, subsampled=sub)
    return None if fit is None else (fit.gains, chromaticity_error(thumb, grid, None, (1.0, 1.0, 1.0), subsampled=sub),
                                     None if quick else lin)


def white_balance_for(raw: RawImage, mode="camera", highlight_mode: int = 0, *, quick: bool = False) -> WhiteBalance:
    """The white balance a develop of ``raw`` with ``--wb mode`` uses (gains, source, notice); on
    LibRaw-rendered sensors the gains are the correction applied to LibRaw's render
    (``highlight_mode`` and ``quick`` as in :func:`libraw_white_balance`: with ``quick`` a preview
    fit there is an estimate: 1.2 % off the develop's in blue on a Canon G1). A monochrome sensor has
    none (``monochrome``)."""
    if raw.meta.num_colors == 1:
        return WhiteBalance((1.0, 1.0, 1.0), "monochrome")
    if raw.rendered_by_libraw:
        return libraw_white_balance(raw, mode, highlight_mode, quick=quick).wb
    return cfa_white_balance(raw, mode)
