"""Bayer pattern arithmetic: masks, mosaicking, and how the phase changes under crops and flips.

A pattern is read in raster order from the top-left pixel of the array it describes (see
:mod:`rawdev.types`). Cropping an odd number of rows or columns, or flipping an array, changes the
pattern of the result; these helpers compute the new one so that no stage ever guesses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UsageError
from .types import BAYER_PATTERNS, BayerPattern

__all__ = [
    "check_pattern",
    "pattern_cell",
    "pattern_from_cell",
    "pattern_after_crop",
    "pattern_after_flip",
    "bayer_masks",
    "mosaic",
    "align_phase",
]

if TYPE_CHECKING:
    import torch

_INDEX = {"R": 0, "G": 1, "B": 2}


def check_pattern(pattern: str) -> BayerPattern:
    """Return ``pattern`` upper-cased if it is a Bayer pattern, else raise :class:`UsageError`."""
    p = str(pattern).upper()
    if p not in BAYER_PATTERNS:
        raise UsageError(f"unknown Bayer pattern {pattern!r}; expected one of {', '.join(BAYER_PATTERNS)}")
    return p  # type: ignore[return-value]


def pattern_cell(pattern: str) -> list[list[int]]:
    """The 2x2 cell of colour indices (0=R, 1=G, 2=B) of ``pattern``."""
    p = check_pattern(pattern)
    return [[_INDEX[p[0]], _INDEX[p[1]]], [_INDEX[p[2]], _INDEX[p[3]]]]


def pattern_from_cell(cell) -> BayerPattern:
    """Inverse of :func:`pattern_cell`: a 2x2 array of colour indices to its pattern string."""
    s = "".join("RGB"[int(c)] for row in cell for c in row)
    return check_pattern(s)


def pattern_after_crop(pattern: str, top: int, left: int) -> BayerPattern:
    """The pattern of ``mosaic[top:, left:]``: odd offsets swap rows or columns of the cell."""
    c = pattern_cell(pattern)
    if top % 2:
        c = [c[1], c[0]]
    if left % 2:
        c = [[r[1], r[0]] for r in c]
    return pattern_from_cell(c)


def pattern_after_flip(pattern: str, height: int, width: int, vertical: bool, horizontal: bool) -> BayerPattern:
    """The pattern of a ``height`` x ``width`` mosaic after flipping it.

    A flip moves the last row/column to the front; its parity decides the new phase.
    """
    top = (height - 1) if vertical else 0
    left = (width - 1) if horizontal else 0
    return pattern_after_crop(pattern, top, left)


def align_phase(pattern, target: str, offset: int = 0) -> tuple[int, int]:
    """``(dy, dx)`` in {0, 1}: the rows and columns to add in front of an array whose pixel
    ``(-offset, -offset)`` has Bayer ``pattern``, so that the extended array starts on ``target``
    (learned_backends.md 1.4: a network trained on one phase sees every phase through this shift).
    The extension is a mirror without edge repeat, which keeps the Bayer parity.

    Raises:
        UsageError: not Bayer patterns.
    """
    target = check_pattern(target)
    pattern = getattr(pattern, "bayer_pattern", None) or pattern  # a CFALayout: its pattern string
    for dy in (0, 1):
        for dx in (0, 1):
            if pattern_after_crop(pattern, -offset - dy, -offset - dx) == target:
                return dy, dx
    raise UsageError(f"not a Bayer pattern: {pattern!r}")  # unreachable for Bayer patterns


def bayer_masks(
    pattern: str, height: int, width: int, *, device=None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``(3, H, W)`` one-hot masks (``dtype``, float32 by default): ``masks[c, y, x] = 1`` where the
    sensor samples colour ``c``."""
    import torch  # here, not at the top: pattern arithmetic alone must not import torch

    dtype = torch.float32 if dtype is None else dtype
    cell = torch.tensor(pattern_cell(pattern), device=device)
    ys = torch.arange(height, device=device) % 2
    xs = torch.arange(width, device=device) % 2
    idx = cell[ys[:, None], xs[None, :]]
    return (idx[None] == torch.arange(3, device=device)[:, None, None]).to(dtype)


def mosaic(image: torch.Tensor, pattern: str) -> torch.Tensor:
    """Sample an ``(*, 3, H, W)`` image with a Bayer CFA: returns the ``(*, 1, H, W)`` mosaic."""
    if image.shape[-3] != 3:
        raise UsageError(f"mosaic expects (*, 3, H, W), got {tuple(image.shape)}")
    m = bayer_masks(pattern, image.shape[-2], image.shape[-1], device=image.device, dtype=image.dtype)
    return (image * m).sum(dim=-3, keepdim=True)
