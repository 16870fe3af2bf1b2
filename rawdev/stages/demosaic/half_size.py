"""Half-size developing: one RGB pixel per block of the colour filter array, nothing interpolated.

Public objects: :func:`bin_cfa_blocks`, :func:`block_grid`.

This is dcraw's ``-h`` (and LibRaw's ``half_size``): every 2x2 Bayer cell becomes one pixel whose
red and blue are the cell's red and blue samples and whose green is the mean of its two greens. An
X-Trans 6x6 cell has no 2x2 blocks holding all three colours, but each of its four 3x3 blocks holds
five greens, two reds and two blues (Fujifilm's layout), so an X-Trans mosaic is binned in 3x3 blocks
and comes out at a third of each side. Each output channel is the mean of the block's samples of that
colour: no sample is invented, the noise of the greens is averaged down, and the cost is one pass
over the mosaic (a preview of a 24 MP file in a fraction of a demosaic's time). The price is the
resolution, and a sub-pixel offset between the colours of a block (a hint of colour on sharp edges,
as in dcraw's half-size output).

A mosaic whose sides are not a multiple of the block loses its last rows and columns (at most
``block - 1``), as dcraw's does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bin_cfa_blocks", "block_grid"]


def block_grid(cell: np.ndarray) -> tuple[int, int, int]:
    """The binning blocks of a mosaic whose top-left CFA cell is ``cell``: ``(b, oy, ox)``, the block
    side (2 for a 2x2 Bayer cell, 3 for a 6x6 X-Trans one) and the grid's first offset (rows,
    columns) at which every block holds red, green and blue ((0, 0) for Bayer).

    Raises:
        ValueError: a cell that is not 2x2 or 6x6, or that has no such grid.
    """
    cell = np.asarray(cell)
    p = int(cell.shape[0])
    if p not in (2, 6):
        raise ValueError(f"no half-size binning for a {p}x{p} CFA cell (Bayer 2x2 and X-Trans 6x6 only)")
    b = 2 if p == 2 else 3
    for oy in range(b):
        for ox in range(b):
            c = np.roll(cell, (-oy, -ox), axis=(0, 1))
            blocks = c.reshape(p // b, b, p // b, b).transpose(0, 2, 1, 3).reshape(-1, b * b)
            if all({0, 1, 2} <= set(blk.tolist()) for blk in blocks):
                return b, oy, ox
    raise ValueError("this CFA cell has no block grid whose every block holds red, green and blue")


def bin_cfa_blocks(mosaic: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Bin a CFA mosaic into one RGB pixel per block (see the module docstring).

    Args:
        mosaic: ``(H, W)`` float mosaic, any units (white-balanced or not: binning is linear).
        cell: ``(p, p)`` colour indices (0 R, 1 G, 2 B) of the mosaic's top-left cell, p = 2 or 6.

    Returns:
        ``(3, (H - oy) // b, (W - ox) // b)`` float32 RGB, ``(b, oy, ox)`` from :func:`block_grid`:
        each channel the mean of its colour's samples in the block.

    Raises:
        ValueError: a cell that is not 2x2 or 6x6, or that has no such block grid.
    """
    cell = np.asarray(cell, dtype=np.int64)
    b, oy, ox = block_grid(cell)
    cell = np.roll(cell, (-oy, -ox), axis=(0, 1))
    p = cell.shape[0]
    k = p // b  # blocks per cell side
    m = np.asarray(mosaic, dtype=np.float32)
    h, w = (m.shape[0] - oy) // b, (m.shape[1] - ox) // b
    if h < 1 or w < 1:
        raise ValueError(f"a {m.shape[0]} x {m.shape[1]} mosaic holds no whole {b}x{b} block")
    m = m[oy : oy + h * b, ox : ox + w * b]
    out = np.zeros((3, h, w), np.float32)
    # Sample (i, j) of every cell falls in block (i // b, j // b) of that cell: strided slices add
    # each of the p * p sample sites to its block's channel in one pass. (The slices of site (i, j)
    # and of its block have the same length because h * b is a whole number of blocks.)
    for i in range(p):
        for j in range(p):
            out[cell[i, j], i // b :: k, j // b :: k] += m[i::p, j::p]
    for bi in range(k):
        for bj in range(k):
            block = cell[bi * b : (bi + 1) * b, bj * b : (bj + 1) * b]
            for c in range(3):
                out[c, bi::k, bj::k] *= np.float32(1.0 / np.count_nonzero(block == c))
    return out
