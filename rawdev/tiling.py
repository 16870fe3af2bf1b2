"""Tiled execution of any demosaicking back-end: bounded memory for any image size.

:func:`run_tiled` cuts a mosaic into tiles, runs a back-end's runner on each tile plus a margin of
context, and writes the results into one output allocated once at full size. Peak memory is set by
the tile size and the batch, never by the image size.

Geometry
    * Tile origins are multiples of ``step = lcm(multiple, CFA period)`` (2 for Bayer, 6 for X-Trans),
      so every tile's CFA phase follows from its origin (:func:`rawdev.cfa.pattern_after_crop` for
      Bayer, a cyclic roll of the 6x6 cell for X-Trans).
    * Each tile is fed with ``margin`` pixels of context per side (the back-end's receptive-field
      radius or more). Outside the image the context is a *phase-preserving reflection*: sample ``-k``
      is read from the nearest mirrored sample of the same CFA phase. For a period of 2 this is exactly
      reflect padding without edge repeat (``-k -> k``), which keeps the Bayer parity; for X-Trans it
      keeps the 6x6 layout periodic. The same virtual extension is used whatever the tiling, so tiled
      and whole-image runs see identical context.
    * Windows are grown at the end to a multiple of ``step`` (stride-2 networks need even sizes) and,
      when ``native_pattern`` is given, at the start by the (dy, dx) shift that makes every window
      begin on that pattern (learned_backends.md 1.4: GRBG for demosaicnet).

Stitching
    * ``exact=True`` (back-ends whose output does not depend on where the tile starts, e.g. valid
      convolutions with margin >= receptive field): the tile interiors are copied side by side.
    * ``exact=False``: neighbouring tiles overlap by ``2 * overlap`` pixels and are cross-faded with a
      raised-cosine ramp. The 1-D weights of two neighbours sum to one in every overlap and the 2-D
      weight is their product, so the weights form a partition of unity and no normalisation buffer is
      needed. ``overlap <= margin`` and ``2 * overlap <= tile``.

Runners
    A runner is ``run(mosaic (B, 1, h, w), pattern, noise=None) -> (B, C, h, w)`` (the contract of
    :mod:`rawdev.backends.registry`), where ``pattern`` is a Bayer string or a ``(p, p)`` numpy cell of
    colour indices for the window's top-left pixel and ``noise`` is ``(B,)`` or None. With
    ``valid=True`` the runner instead returns only the window interior, ``(B, C, h - 2m, w - 2m)`` with
    ``m = margin`` (valid convolutions; saves computing the margin twice).

Shape:
    mosaic (N, 1, H, W) -> (N, C, H, W), same dtype and device as the mosaic.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch

from .cfa import align_phase, check_pattern
from .errors import BackendError, UsageError
from .types import CFALayout

__all__ = [
    "run_tiled",
    "plan_tiles",
    "TileGeometry",
    "mirror_indices",
    "tile_origins",
    "raised_cosine_ramp",
    "resolve_device",
    "resolve_dtype",
    "cfa_period",
    "window_pattern",
    "mirror_pad",
    "check_mosaic",
]

def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None) -> CUDA when available, else CPU; ``cpu``/``cuda[:n]`` as asked.

    Raises:
        BackendError: CUDA asked for but not available.
        UsageError: not a device name.
    """
    if isinstance(device, torch.device):
        dev = device
    else:
        name = "auto" if device is None else str(device).lower()
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if not (name == "cpu" or name == "cuda" or name.startswith("cuda:")):
            raise UsageError(f"unknown device {device!r}; use auto, cpu or cuda")
        dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendError("CUDA asked for, but CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"unsupported device {dev}; use auto, cpu or cuda")
    return dev


_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float64": torch.float64, "double": torch.float64,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The compute dtype: float32 by default; half/bfloat16 only on CUDA (float64 allowed for tests).

    Raises:
        UsageError: unknown dtype, or a reduced precision asked for on the CPU.
    """
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        try:
            dtype = _DTYPES[dtype.lower()]
        except KeyError:
            raise UsageError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16") from None
    if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise UsageError(f"unsupported compute dtype {dtype}")
    if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
        raise UsageError(f"{dtype} is only supported on CUDA; the CPU computes in float32")
    return dtype


def cfa_period(pattern) -> int:
    """2 for a Bayer pattern string, the cell size for a :class:`~rawdev.types.CFALayout` or a numpy
    ``(p, p)`` cell."""
    if isinstance(pattern, (str, CFALayout)):
        return CFALayout.of(pattern).period
    cell = np.asarray(pattern)
    if cell.ndim != 2 or cell.shape[0] != cell.shape[1] or cell.shape[0] < 1:
        raise UsageError(f"a CFA cell must be a square (p, p) array of colour indices, got shape {cell.shape}")
    return int(cell.shape[0])


def window_pattern(pattern, top: int, left: int):
    """The CFA description of the window starting at ``(top, left)`` (may be negative), in the form
    given: a Bayer string, a :class:`~rawdev.types.CFALayout`, or a ``(p, p)`` cell."""
    if isinstance(pattern, (str, CFALayout)):
        shifted = CFALayout.of(pattern).shifted(top, left)
        return shifted if isinstance(pattern, CFALayout) else shifted.bayer_pattern
    cell = np.asarray(pattern)
    p = cell.shape[0]
    return np.roll(cell, (-(top % p), -(left % p)), axis=(0, 1))


def mirror_indices(start: int, stop: int, size: int, period: int = 1, device=None) -> torch.Tensor:
    """Source indices of positions ``start..stop-1`` of a length-``size`` axis, mirrored outside it.

    Mirroring is without edge repeat (``-k -> k``, ``size-1+k -> size-1-k``), repeated for long
    excursions, then moved inwards to the nearest index with the same phase modulo ``period``, so
    that a CFA of that period stays periodic across the border. Requires ``size >= period``.
    """
    if size < max(1, period):
        raise UsageError(f"an axis of {size} pixels is shorter than the CFA period {period}")
    idx = torch.arange(start, stop, dtype=torch.long)
    if size == 1:
        return torch.zeros_like(idx, device=device)
    p2 = 2 * (size - 1)
    m = torch.remainder(idx, p2)
    m = torch.where(m >= size, p2 - m, m)
    if period > 1:
        m = m - torch.remainder(m - idx, period)  # same phase as idx, <= mirrored index
        m = torch.where(m < 0, m + period, m)
    return m.to(device)


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int, period: int = 1) -> torch.Tensor:
    """``x (..., H, W)`` extended by ``top``/``bottom`` rows and ``left``/``right`` columns, mirrored
    without edge repeat (:func:`mirror_indices`: repeated for pads longer than the axis, the phase
    modulo ``period`` kept). Mirroring without edge repeat keeps the Bayer parity, so a padded mosaic
    is still a mosaic of the same pattern."""
    h, w = x.shape[-2:]
    if top or bottom:
        x = x.index_select(-2, mirror_indices(-top, h + bottom, h, period, device=x.device))
    if left or right:
        x = x.index_select(-1, mirror_indices(-left, w + right, w, period, device=x.device))
    return x


def tile_origins(size: int, tile: int) -> list[tuple[int, int]]:
    """``(origin, length)`` of the tiles covering ``[0, size)`` with stride ``tile``."""
    return [(o, min(tile, size - o)) for o in range(0, size, tile)]


def raised_cosine_ramp(n: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """``n`` weights rising from ~0 to ~1; ``ramp + ramp.flip(0) == 1`` exactly (up to rounding)."""
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / max(n, 1)
    return (0.5 - 0.5 * torch.cos(math.pi * t)).to(dtype=dtype, device=device)


def _axis_weight(o: int, length: int, size: int, ov: int) -> torch.Tensor:
    """1-D blend weight over ``[o - ov, o + length + ov)`` clipped to the image (for exact=False)."""
    a, b = max(0, o - ov), min(size, o + length + ov)
    w = torch.ones(b - a, dtype=torch.float64)
    if ov > 0:
        ramp = raised_cosine_ramp(2 * ov, dtype=torch.float64)
        if o > 0:  # rising over [o - ov, o + ov)
            n = min(2 * ov, b - a)
            w[:n] = ramp[:n]
        if o + length < size:  # falling over [o + length - ov, o + length + ov)
            s = o + length - ov - a
            e = min(b - a, s + 2 * ov)
            w[s:e] = w[s:e] * ramp.flip(0)[: e - s]
    return w


@contextlib.contextmanager
def _intra_op_threads(n: int):
    """Temporarily set torch's intra-op thread count (process-wide) to ``n``."""
    old = torch.get_num_threads()
    if n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _balanced(size: int, tile: int, step: int) -> int:
    """The smallest multiple of ``step`` that covers ``size`` in ``ceil(size / tile)`` tiles."""
    n = -(-size // tile)
    t = -(-size // n)
    return min(tile, -(-t // step) * step)


def check_mosaic(mosaic: torch.Tensor) -> None:
    """Raise :class:`UsageError` unless ``mosaic`` is a float (N, 1, H, W) tensor."""
    if not torch.is_tensor(mosaic) or mosaic.dim() != 4 or mosaic.shape[1] != 1:
        shape = tuple(mosaic.shape) if torch.is_tensor(mosaic) else type(mosaic).__name__
        raise UsageError(f"expected a (N, 1, H, W) mosaic tensor, got {shape}")
    if not mosaic.is_floating_point():
        raise UsageError(f"expected a float mosaic, got {mosaic.dtype}")


def _as_noise(noise, n: int) -> torch.Tensor | None:
    if noise is None:
        return None
    t = torch.as_tensor(noise, dtype=torch.float32).reshape(-1).cpu()
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise UsageError(f"noise must be a scalar or one value per image ({n}), got {t.numel()}")
    return t


def run_tiled(
    runner: Callable,
    mosaic: torch.Tensor,
    pattern,
    *,
    tile: int | Sequence[int] = 512,
    margin: int,
    multiple: int = 2,
    exact: bool = True,
    noise=None,
    batch: int = 1,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    native_pattern: str | None = None,
    valid: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    threads: int | None = None,
    balance: bool = True,
    region: tuple[int, int, int, int] | None = None,
) -> torch.Tensor:
    """Run ``runner`` tile by tile over ``mosaic``; see the module docstring for the geometry.

    Args:
        runner: ``run(windows (B, 1, h, w), pattern, noise=None)`` -> ``(B, C, h, w)``
            (or ``(B, C, h - 2*margin, w - 2*margin)`` with ``valid=True``).
        mosaic: (N, 1, H, W) float; any H, W >= the CFA period, any phase.
        pattern: Bayer string ("RGGB", ...) or a numpy ``(p, p)`` colour-index cell (X-Trans: 6x6),
            describing ``mosaic[..., 0, 0]``.
        tile: tile size in pixels (int or (h, w)), rounded up to a multiple of the step.
        margin: context pixels per side (>= the runner's receptive-field radius).
        multiple: tile origins are multiples of ``lcm(multiple, CFA period)``.
        exact: stitch without blending (True) or cross-fade overlapping tiles (False).
        noise: None, a scalar or ``(N,)`` per-image noise levels passed on per window.
        batch: how many equal-size windows go through the runner at once.
        overlap: half-width of the cross-fade for ``exact=False``; default ``margin // 2``.
        device: where windows are sent (the runner's device); None keeps the mosaic's device.
        dtype: compute dtype of the windows; None keeps the mosaic's dtype (see :func:`resolve_dtype`).
        native_pattern: if given (Bayer only), every window starts on this pattern.
        valid: the runner returns only the window interior (valid convolutions).
        progress: called as ``progress(done_tiles, total_tiles)`` after each batch.
        workers: CPU only: how many batches run concurrently (Python threads; torch releases the GIL
            in its kernels). Each then uses ``threads // workers`` intra-op threads (restored after).
        threads: the CPU threads to share out; default ``torch.get_num_threads()``.
        balance: ``tile`` is the largest tile side: per axis the tile count ``ceil(size / tile)`` is
            kept and the tiles are made as equal as the step allows (less margin work on the last
            tile, even load across workers). False: tiles of exactly ``tile``, the last one shorter.

    Returns:
        (N, C, H, W) in the mosaic's dtype and on its device, allocated once.

    Raises:
        UsageError: bad shapes, sizes or options.
        BackendError: the runner returned an unexpected shape.
    """
    check_mosaic(mosaic)
    n_img = mosaic.shape[0]
    geom, win_pattern = plan_tiles(
        tuple(mosaic.shape[-2:]), pattern, tile=tile, margin=margin, multiple=multiple, exact=exact,
        overlap=overlap, native_pattern=native_pattern, valid=valid, balance=balance, region=region,
    )
    dev = mosaic.device if device is None else resolve_device(device)
    cdtype = mosaic.dtype if dtype is None else resolve_dtype(dtype, dev)
    noise_t = _as_noise(noise, n_img)
    chunks = _batches(geom, n_img, max(1, int(batch)))
    read = _WindowReader(mosaic, geom)
    stitch = _Stitcher(geom, n_img, mosaic.dtype, mosaic.device, total=geom.tiles * n_img, progress=progress)

    def compute(item) -> torch.Tensor:
        (wh, ww), chunk = item
        with torch.no_grad():  # grad mode is per thread: set it in every worker
            windows = torch.stack([read(*j) for j in chunk]).to(device=dev, dtype=cdtype)
            nz = None if noise_t is None else noise_t[[j[0] for j in chunk]].to(device=dev, dtype=cdtype)
            res = runner(windows, win_pattern, noise=nz)
        m = geom.margin
        exp_h, exp_w = (wh - 2 * m, ww - 2 * m) if geom.valid else (wh, ww)
        if not torch.is_tensor(res) or res.dim() != 4 or res.shape[0] != len(chunk) or res.shape[-2:] != (exp_h, exp_w):
            got = tuple(res.shape) if torch.is_tensor(res) else type(res).__name__
            raise BackendError(
                f"runner returned {got} for windows {tuple(windows.shape)}; expected ({len(chunk)}, C, {exp_h}, {exp_w})"
            )
        return res

    # Inference mode is thread-local: worker threads must run in the caller's mode, or writing into
    # an output allocated under inference mode fails.
    inference = torch.is_inference_mode_enabled()

    def job(item) -> None:
        with torch.inference_mode(inference):
            stitch.write(item[1], compute(item))

    _execute(chunks, job, workers=workers, threads=threads, device=dev)
    return stitch.out


@dataclass(frozen=True)
class TileGeometry:
    """Where :func:`run_tiled`'s tiles and their windows lie, in mosaic pixels (see the module
    docstring): the computed ``region`` ``(top, bottom, left, right)``, the tile origins and lengths
    per axis, the context ``margin``, the ``shift`` ``(dy, dx)`` that starts every window on the
    native pattern, the cross-fade half-width ``overlap`` (0: exact stitching) and whether the
    runner returns window interiors only (``valid``)."""

    height: int
    width: int
    region: tuple[int, int, int, int]
    step: int
    period: int
    margin: int
    shift: tuple[int, int]
    overlap: int
    exact: bool
    valid: bool
    rows: tuple[tuple[int, int], ...]
    cols: tuple[tuple[int, int], ...]

    @property
    def tiles(self) -> int:
        return len(self.rows) * len(self.cols)

    def _extent(self, o: int, length: int, shift: int) -> tuple[int, int]:
        a = o - self.margin - shift
        size = -(-(length + 2 * self.margin + shift) // self.step) * self.step
        return a, a + size

    def window(self, y0: int, hl: int, x0: int, wl: int) -> tuple[int, int, int, int]:
        """``(ya, yb, xa, xb)``: the window (context included, may leave the image) of a tile."""
        return (*self._extent(y0, hl, self.shift[0]), *self._extent(x0, wl, self.shift[1]))

    def groups(self) -> "OrderedDict[tuple[int, int], list[tuple[int, int, int, int]]]":
        """Tiles ``(y0, hl, x0, wl)`` grouped by window size (equal sizes can be batched)."""
        out: "OrderedDict[tuple[int, int], list[tuple[int, int, int, int]]]" = OrderedDict()
        for (y0, hl) in self.rows:
            for (x0, wl) in self.cols:
                ya, yb, xa, xb = self.window(y0, hl, x0, wl)
                out.setdefault((yb - ya, xb - xa), []).append((y0, hl, x0, wl))
        return out

    @property
    def offset(self) -> tuple[int, int]:
        """Where a tile's interior starts in the runner's output for its window."""
        dy, dx = self.shift
        return (dy, dx) if self.valid else (self.margin + dy, self.margin + dx)


def plan_tiles(
    shape: tuple[int, int],
    pattern,
    *,
    tile: int | Sequence[int] = 512,
    margin: int,
    multiple: int = 2,
    exact: bool = True,
    overlap: int | None = None,
    native_pattern: str | None = None,
    valid: bool = False,
    balance: bool = True,
    region: tuple[int, int, int, int] | None = None,
):
    """The :class:`TileGeometry` of :func:`run_tiled` on an ``(H, W)`` mosaic with CFA ``pattern``
    (same arguments), and the CFA description every window starts with.

    Raises:
        UsageError: bad sizes or options.
    """
    H, W = shape
    period = cfa_period(pattern)
    if native_pattern is not None:
        if period != 2:
            raise UsageError("native_pattern is for Bayer patterns only")
        native_pattern = check_pattern(native_pattern)
    step = math.lcm(max(1, int(multiple)), period)
    if H < period or W < period:
        raise UsageError(f"mosaic {H}x{W} is smaller than the CFA period {period}")
    th, tw = (int(tile), int(tile)) if np.isscalar(tile) else (int(tile[0]), int(tile[1]))
    if th < 1 or tw < 1:
        raise UsageError(f"tile must be positive, got {tile}")
    th, tw = -(-th // step) * step, -(-tw // step) * step
    Y0, Y1, X0, X1 = (0, H, 0, W) if region is None else (int(v) for v in region)
    if not (0 <= Y0 < Y1 <= H and 0 <= X0 < X1 <= W) or Y0 % step or X0 % step:
        raise UsageError(f"region {region} must lie in the {H}x{W} mosaic and start on multiples of {step}")
    if region is not None and not exact:
        raise UsageError("a region is computed by exact runners only (blend weights need the whole image)")
    if balance:  # same number of tiles per axis, sizes evened out (no thin last tile)
        th = _balanced(Y1 - Y0, th, step)
        tw = _balanced(X1 - X0, tw, step)
    margin = int(margin)
    if margin < 0:
        raise UsageError("margin must be >= 0")
    if valid and not exact:
        raise UsageError("valid runners return only the tile interiors: they cannot be cross-faded (exact=False)")
    ov = 0
    if not exact:
        ov = margin // 2 if overlap is None else int(overlap)
        if ov < 0 or ov > margin:
            raise UsageError(f"overlap {ov} must be between 0 and the margin {margin}")
        ov = min(ov, th // 2, tw // 2)
    # Alignment shift so that windows start on native_pattern (same for every window: origins are
    # multiples of the step and the margin is fixed).
    dy, dx = (0, 0) if native_pattern is None else align_phase(pattern, native_pattern, margin)
    geom = TileGeometry(
        height=H, width=W, region=(Y0, Y1, X0, X1), step=step, period=period, margin=margin, shift=(dy, dx),
        overlap=ov, exact=exact, valid=valid,
        rows=tuple((Y0 + o, n) for o, n in tile_origins(Y1 - Y0, th)),
        cols=tuple((X0 + o, n) for o, n in tile_origins(X1 - X0, tw)),
    )
    return geom, window_pattern(pattern, -margin - dy, -margin - dx)


def _batches(geom: TileGeometry, n_img: int, batch: int) -> list:
    """``((window h, window w), [(image, y0, hl, x0, wl), ...])`` runner calls of at most ``batch``
    equal-size windows."""
    chunks = []
    for size, tiles in geom.groups().items():
        jobs = [(n, *t) for t in tiles for n in range(n_img)]
        chunks += [(size, jobs[k : k + batch]) for k in range(0, len(jobs), batch)]
    return chunks


class _WindowReader:
    """``read(n, y0, hl, x0, wl)``: the window of a tile of image ``n``, outside the image read from
    the phase-preserving mirror (:func:`mirror_indices`; index vectors cached per extent)."""

    def __init__(self, mosaic: torch.Tensor, geom: TileGeometry) -> None:
        self.mosaic, self.geom = mosaic, geom
        self._idx: dict[tuple[int, int, int], torch.Tensor] = {}

    def _indices(self, a: int, b: int, size: int) -> torch.Tensor:
        key = (a, b, size)
        if key not in self._idx:
            self._idx[key] = mirror_indices(a, b, size, self.geom.period)
        return self._idx[key]

    def __call__(self, n: int, y0: int, hl: int, x0: int, wl: int) -> torch.Tensor:
        H, W = self.geom.height, self.geom.width
        ya, yb, xa, xb = self.geom.window(y0, hl, x0, wl)
        src = self.mosaic[n]
        if ya >= 0 and xa >= 0 and yb <= H and xb <= W:
            return src[:, ya:yb, xa:xb]
        iy, ix = self._indices(ya, yb, H), self._indices(xa, xb, W)
        y_lo, y_hi = int(iy.min()), int(iy.max()) + 1
        x_lo, x_hi = int(ix.min()), int(ix.max()) + 1
        part = src[:, y_lo:y_hi, x_lo:x_hi]
        return part.index_select(1, (iy - y_lo).to(part.device)).index_select(2, (ix - x_lo).to(part.device))


class _Stitcher:
    """Writes runner outputs into the one full-size output (allocated by the first write, under a
    lock: workers write concurrently): tile interiors copied side by side (exact), or accumulated
    with raised-cosine weights that sum to one (cross-faded)."""

    def __init__(self, geom: TileGeometry, n_img: int, dtype: torch.dtype, device: torch.device, *,
                 total: int, progress: Callable[[int, int], None] | None) -> None:
        self.geom, self.n_img, self.dtype, self.device = geom, n_img, dtype, device
        self.total, self.progress = total, progress
        self.out: torch.Tensor | None = None
        self.done = 0
        self._lock = threading.Lock()

    def write(self, chunk, res: torch.Tensor) -> None:
        g = self.geom
        Y0, Y1, X0, X1 = g.region
        H, W, ov = g.height, g.width, g.overlap
        off_y, off_x = g.offset
        with self._lock, torch.no_grad():
            out = self.out
            if out is None:  # every pixel is written once (exact) or accumulated (blend)
                alloc = torch.empty if g.exact else torch.zeros
                out = self.out = alloc((self.n_img, res.shape[1], Y1 - Y0, X1 - X0), dtype=self.dtype,
                                       device=self.device)
            for i, (n, y0, hl, x0, wl) in enumerate(chunk):
                if g.exact:
                    part = res[i, :, off_y : off_y + hl, off_x : off_x + wl]
                    out[n, :, y0 - Y0 : y0 - Y0 + hl, x0 - X0 : x0 - X0 + wl] = part.to(out.dtype)
                else:
                    ya0, yb0 = max(0, y0 - ov), min(H, y0 + hl + ov)
                    xa0, xb0 = max(0, x0 - ov), min(W, x0 + wl + ov)
                    sy, sx = off_y - (y0 - ya0), off_x - (x0 - xa0)
                    acc = torch.float64 if out.dtype == torch.float64 else torch.float32
                    part = res[i, :, sy : sy + (yb0 - ya0), sx : sx + (xb0 - xa0)].to(device=out.device, dtype=acc)
                    wgt = _axis_weight(y0, hl, H, ov)[:, None] * _axis_weight(x0, wl, W, ov)[None, :]
                    view = out[n, :, ya0:yb0, xa0:xb0]
                    view += (part * wgt.to(device=out.device, dtype=acc)).to(out.dtype)
            self.done += len(chunk)
            if self.progress is not None:
                self.progress(self.done, self.total)


def _execute(chunks: list, job: Callable, *, workers: int, threads: int | None, device: torch.device) -> None:
    """Run ``job`` on every chunk: in order, or (CPU, ``workers`` > 1) on a thread pool."""
    workers = max(1, min(int(workers), len(chunks)))
    if workers == 1 or device.type != "cpu":
        for item in chunks:
            job(item)
        return
    # Set by the first failing batch: batches not yet started return at once, so an error (or
    # Ctrl-C) stops the work within one batch per worker, however late the caller's thread is
    # scheduled to see the failure (it waits on the futures in order).
    failed = threading.Event()

    def guarded(item) -> None:
        if failed.is_set():
            return
        try:
            job(item)
        except BaseException:
            failed.set()
            raise

    # Tiles run concurrently, each op single-threaded (or threads // workers): no barrier per
    # layer, which is faster on a CPU and far more robust when other processes share the cores.
    # The first write allocates the output (under the lock).
    with _intra_op_threads(max(1, (threads or torch.get_num_threads()) // workers)):
        with ThreadPoolExecutor(workers, thread_name_prefix="rawdev-tile") as pool:
            futures = [pool.submit(guarded, item) for item in chunks]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                failed.set()  # stop at the first failure (or Ctrl-C)
                for f in futures:
                    f.cancel()
                raise
