"""Malvar, He & Cutler (2004) gradient-corrected linear demosaicking.

Public objects: :func:`demosaic_malvar2004`.

Each missing colour is the bilinear estimate corrected by a scaled Laplacian of the colour sampled at
the pixel (the paper's gains alpha = 1/2, beta = 5/8, gamma = 3/4), which folds into four fixed 5x5
filters (Malvar2004, Fig. 2). They are applied with the packed phase-stencil convolution of
:mod:`.bilinear`, in row bands, so a 24-megapixel mosaic costs one dense 4->12 channel 3x3 convolution.

Shape:
    mosaic ``(*, 1, H, W)`` -> image ``(*, 3, H, W)``, same dtype and device. Not clipped.

References:
    Malvar2004: H. S. Malvar, L.-W. He, R. Cutler, "High-quality linear interpolation for demosaicing of
    Bayer-patterned color images", Proc. IEEE ICASSP 2004, vol. 3, pp. 485-488.
"""

from __future__ import annotations

import functools

import torch

from ...cfa import pattern_cell
from .bilinear import demosaic_packed_stencils, stencils_to_packed_weight

__all__ = ["demosaic_malvar2004"]

_R, _G, _B = 0, 1, 2

# The four filters of Malvar2004 Fig. 2 (times 8), in correlation orientation; all are symmetric.
# G at an R or B site.
_G_AT_RB = (
    (0, 0, -1, 0, 0),
    (0, 0, 2, 0, 0),
    (-1, 2, 4, 2, -1),
    (0, 0, 2, 0, 0),
    (0, 0, -1, 0, 0),
)
# R (B) at a G site whose row holds R (B) samples: the neighbours of the same colour are horizontal.
_ROW_AT_G = (
    (0, 0, 0.5, 0, 0),
    (0, -1, 0, -1, 0),
    (-1, 4, 5, 4, -1),
    (0, -1, 0, -1, 0),
    (0, 0, 0.5, 0, 0),
)
# R (B) at a G site whose column holds R (B) samples: the transpose.
_COL_AT_G = tuple(zip(*_ROW_AT_G))
# R at a B site and B at an R site: the four diagonal neighbours.
_DIAG_AT_RB = (
    (0, 0, -1.5, 0, 0),
    (0, 2, 0, 2, 0),
    (-1.5, 0, 6, 0, -1.5),
    (0, 2, 0, 2, 0),
    (0, 0, -1.5, 0, 0),
)
_IDENTITY = tuple(tuple(8.0 if (a, b) == (2, 2) else 0.0 for b in range(5)) for a in range(5))


def _site_stencils(colour: int, row_colour: int) -> tuple:
    """The (R, G, B) stencils (times 8) at a site sampling ``colour`` in a row also holding ``row_colour``."""
    if colour == _G:
        # The R/B colour of this row is found horizontally, the other one vertically.
        r = _ROW_AT_G if row_colour == _R else _COL_AT_G
        b = _ROW_AT_G if row_colour == _B else _COL_AT_G
        return r, _IDENTITY, b
    if colour == _R:
        return _IDENTITY, _G_AT_RB, _DIAG_AT_RB
    return _DIAG_AT_RB, _G_AT_RB, _IDENTITY


@functools.lru_cache(maxsize=None)
def _malvar_weight(pattern: str) -> torch.Tensor:
    cell = pattern_cell(pattern)
    stencils = []
    for dy in range(2):
        row_colour = cell[dy][0] if cell[dy][0] != _G else cell[dy][1]
        stencils.append([[tuple(tuple(v / 8.0 for v in r) for r in k)
                          for k in _site_stencils(cell[dy][dx], row_colour)] for dx in range(2)])
    return stencils_to_packed_weight(stencils)


def demosaic_malvar2004(mosaic: torch.Tensor, pattern: str) -> torch.Tensor:
    """Malvar-He-Cutler demosaicking: bilinear interpolation plus a Laplacian correction (Malvar2004).

    Args:
        mosaic: ``(*, 1, H, W)`` float Bayer mosaic, any units; H, W >= 2.
        pattern: the Bayer pattern of ``mosaic`` read from its top-left pixel ("RGGB", ...).

    Returns:
        ``(*, 3, H, W)`` RGB, same dtype and device, not clipped (the correction overshoots at edges).
        Borders are mirrored without edge repeat, so results match colour-demosaicing's at least 2 px
        inside the border.

    Example:
        >>> m = torch.full((1, 6, 6), 0.25)
        >>> bool(torch.allclose(demosaic_malvar2004(m, "GRBG"), torch.full((3, 6, 6), 0.25)))
        True
    """
    return demosaic_packed_stencils(mosaic, _malvar_weight(pattern))
