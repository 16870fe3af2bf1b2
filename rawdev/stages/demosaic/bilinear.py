"""Bilinear Bayer demosaicking, and the phase-stencil machinery the linear methods share.

Public objects: :func:`demosaic_bilinear`.

A linear demosaicker computes every output pixel as a fixed 5x5 stencil of the mosaic around it; the
stencil depends only on the pixel's position in the 2x2 CFA cell and on the output colour. Packing the
mosaic into its four sub-lattices (``pixel_unshuffle``) turns the twelve (site, colour) stencils into a
single 3x3 convolution from 4 to 12 channels, and ``pixel_shuffle`` puts the result back in place. That
evaluates only the stencils each pixel needs, in one dense convolution, and processes the image in row
bands so that the peak memory is the padded input, the output and one band.

Borders are mirrored without repeating the edge pixel (``reflect``), which keeps the CFA parity: a
mirrored R sample lands on an R site.

Shape:
    mosaic ``(*, 1, H, W)`` -> image ``(*, 3, H, W)``, same dtype and device. Not clipped.

References:
    Losson2010: O. Losson, L. Macaire, Y. Yang, "Comparison of color demosaicing methods",
    Advances in Imaging and Electron Physics 162, 2010, pp. 173-265 (bilinear interpolation of each
    colour plane, their Sec. 2.2).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ...cfa import pattern_cell

__all__ = ["demosaic_bilinear"]

# Bilinear kernels applied to each masked colour plane (Losson2010): G has 4 neighbours at distance 1,
# R and B have 2 or 4 neighbours at distance 1 or sqrt(2). The same kernels as colour-demosaicing.
_H_G = ((0.0, 1.0, 0.0), (1.0, 4.0, 1.0), (0.0, 1.0, 0.0))
_H_RB = ((1.0, 2.0, 1.0), (2.0, 4.0, 2.0), (1.0, 2.0, 1.0))

# Pixels (packed for the linear methods) per band on the CPU: about 2^17 keeps a band's temporaries in
# the caches (measured on 2 cores, Malvar at 24 MP: 0.24 s in bands of 2^17 against 0.35 s for the
# convolution of the whole image alone). GPUs want large launches instead.
_CPU_BAND_PIXELS = 1 << 17
_GPU_BAND_PIXELS = 1 << 26


def _mirror_index(n: int, before: int, after: int, device) -> torch.Tensor:
    """Indices of a length-``n`` axis padded by mirroring without edge repeat, for any pad width."""
    i = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)  # even, so every mirrored index keeps the parity of the CFA
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


def reflect_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Mirror-pad the last two dims of a 4-D tensor (no edge repeat), also when a pad exceeds the size.

    ``F.pad(mode="reflect")`` needs every pad to be smaller than the axis; tiny mosaics (down to 2x2) fall
    back to index arithmetic that mirrors repeatedly, which is what a mirrored infinite plane would hold.
    """
    h, w = x.shape[-2], x.shape[-1]
    if top < h and bottom < h and left < w and right < w:
        return F.pad(x, (left, right, top, bottom), mode="reflect")
    iy = _mirror_index(h, top, bottom, x.device)
    ix = _mirror_index(w, left, right, x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def band_rows(pixels_per_row: int, device: torch.device, total_rows: int, cpu_pixels: int = _CPU_BAND_PIXELS) -> int:
    """Rows per band so that a band holds about ``cpu_pixels`` pixels on the CPU (the whole image on GPUs)."""
    budget = _GPU_BAND_PIXELS if device.type != "cpu" else cpu_pixels
    return max(8, min(total_rows, budget // max(1, pixels_per_row)))


def stencils_to_packed_weight(stencils) -> torch.Tensor:
    """Turn per-site 5x5 stencils into the ``(12, 4, 3, 3)`` weight of a packed 3x3 convolution.

    Args:
        stencils: ``stencils[dy][dx][c]`` is the 5x5 stencil (nested sequences, correlation orientation:
            entry ``[2 + a][2 + b]`` multiplies the sample at offset ``(a, b)``) giving colour ``c`` at CFA
            site ``(dy, dx)``.

    Returns:
        float64 weight; output channel ``4 * c + 2 * dy + dx`` is the ``pixel_shuffle`` order, input
        channel ``2 * py + px`` is the ``pixel_unshuffle`` order of the sub-lattice ``(py, px)``.
    """
    # Callers cache the result: a tensor first built under inference_mode would refuse autograd later.
    with torch.inference_mode(False):
        w = torch.zeros(12, 4, 3, 3, dtype=torch.float64)
        for dy in range(2):
            for dx in range(2):
                for c in range(3):
                    k = stencils[dy][dx][c]
                    for a in range(-2, 3):
                        for b in range(-2, 3):
                            v = k[a + 2][b + 2]
                            if v:
                                y, x = dy + a, dx + b
                                # floor division maps the full-resolution offset to the packed one (-1, 0, 1)
                                w[4 * c + 2 * dy + dx, 2 * (y % 2) + x % 2, y // 2 + 1, x // 2 + 1] += v
    return w


@functools.lru_cache(maxsize=None)
def _weight_taps(weight_key: bytes) -> tuple:
    """Non-zero entries of a packed weight, per output channel: ``((channel, ky, kx, value), ...)``."""
    w = torch.frombuffer(bytearray(weight_key), dtype=torch.float64).view(12, 4, 3, 3)
    return tuple(tuple((c, ky, kx, float(w[o, c, ky, kx])) for c, ky, kx in w[o].nonzero().tolist()) for o in range(12))


def demosaic_packed_stencils(mosaic: torch.Tensor, weight: torch.Tensor, *, use_conv: bool | None = None) -> torch.Tensor:
    """Apply a packed stencil weight (see :func:`stencils_to_packed_weight`) to a ``(*, 1, H, W)`` mosaic.

    Odd sizes are mirrored up to even ones and cropped back, so every size from 2x2 works.

    ``use_conv`` (default: on the CPU only) evaluates the stencils with one dense convolution; otherwise
    each output plane is a sum of its few non-zero taps. GPUs take the second path because cuDNN may run
    float32 convolutions in TF32 (10-bit mantissa), which would cost the output its precision.
    """
    lead = mosaic.shape[:-3]
    h, w = mosaic.shape[-2], mosaic.shape[-1]
    x = mosaic.reshape(-1, 1, h, w)
    n = x.shape[0]
    if use_conv is None:
        use_conv = x.device.type == "cpu"
    hc, wc = (h + 1) // 2, (w + 1) // 2  # packed output size
    # 2 px of context each side (one packed cell), plus one mirrored row/column to make odd sizes even.
    xp = reflect_pad(x, 2, 2 + h % 2, 2, 2 + w % 2)
    weight64 = weight.to(dtype=torch.float64, device="cpu").contiguous()
    weight = weight64.to(dtype=x.dtype, device=x.device)
    taps = None if use_conv else _weight_taps(weight64.numpy().tobytes())
    out = x.new_empty(n, 3, 2 * hc, 2 * wc)
    # The output seen as (N, colour, packed row, dy, packed column, dx): each band's result is written in
    # place with one strided copy (no pixel_shuffle temporary).
    out_cells = out.view(n, 3, hc, 2, wc, 2)
    step = band_rows(n * wc, x.device, hc)
    for r0 in range(0, hc, step):
        r1 = min(hc, r0 + step)
        # Unshuffling per band keeps the packed copy in cache.
        packed = F.pixel_unshuffle(xp[:, :, 2 * r0 : 2 * r1 + 4], 2)  # (N, 4, r1 - r0 + 2, wc + 2)
        if use_conv:
            cells = F.conv2d(packed, weight).view(n, 3, 2, 2, r1 - r0, wc)
            out_cells[:, :, r0:r1].copy_(cells.permute(0, 1, 4, 2, 5, 3))
            continue
        for o, out_taps in enumerate(taps):
            c, dy, dx = o // 4, (o % 4) // 2, o % 2
            dst = out_cells[:, c, r0:r1, dy, :, dx]
            for k, (ch, ky, kx, v) in enumerate(out_taps):
                src = packed[:, ch, ky : ky + r1 - r0, kx : kx + wc]
                if k == 0:
                    torch.mul(src, v, out=dst)
                else:
                    dst.add_(src, alpha=v)
    if (h, w) != (2 * hc, 2 * wc):
        out = out[:, :, :h, :w].contiguous()
    return out.reshape(*lead, 3, h, w)


def _masked_plane_stencils(pattern: str, kernels) -> list:
    """Stencils of 'convolve the colour-``c`` masked plane with ``kernels[c]``' at each CFA site."""
    cell = pattern_cell(pattern)
    stencils = []
    for dy in range(2):
        row = []
        for dx in range(2):
            site = []
            for c in range(3):
                k3 = kernels[c]
                k5 = [[0.0] * 5 for _ in range(5)]
                for a in range(-1, 2):
                    for b in range(-1, 2):
                        if cell[(dy + a) % 2][(dx + b) % 2] == c:
                            k5[a + 2][b + 2] = k3[a + 1][b + 1] / 4.0
                site.append(k5)
            row.append(site)
        stencils.append(row)
    return stencils


@functools.lru_cache(maxsize=None)
def _bilinear_weight(pattern: str) -> torch.Tensor:
    return stencils_to_packed_weight(_masked_plane_stencils(pattern, (_H_RB, _H_G, _H_RB)))


def demosaic_bilinear(mosaic: torch.Tensor, pattern: str) -> torch.Tensor:
    """Bilinear demosaicking: each colour plane is interpolated from its own samples only (Losson2010).

    R and B take the mean of their 2 or 4 nearest samples (kernel ``[1 2 1; 2 4 2; 1 2 1] / 4`` on the
    masked plane), G the mean of its 4 nearest (``[0 1 0; 1 4 1; 0 1 0] / 4``). Known samples pass through.

    Args:
        mosaic: ``(*, 1, H, W)`` float Bayer mosaic, any units; H, W >= 2.
        pattern: the Bayer pattern of ``mosaic`` read from its top-left pixel ("RGGB", ...).

    Returns:
        ``(*, 3, H, W)`` RGB, same dtype and device, not clipped. Borders are mirrored without edge repeat.

    Example:
        >>> m = torch.full((1, 4, 4), 0.5)
        >>> demosaic_bilinear(m, "RGGB").shape
        torch.Size([3, 4, 4])
    """
    return demosaic_packed_stencils(mosaic, _bilinear_weight(pattern))
