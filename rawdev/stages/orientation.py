"""Orientation: apply an EXIF Orientation (1..8) to pixels, so the output can say Orientation = 1."""

from __future__ import annotations

import numpy as np

__all__ = ["apply_orientation", "oriented_size", "stored_box", "INVERSE_ORIENTATION"]

#: The orientation that undoes each EXIF orientation (6 and 8 are each other's inverse).
INVERSE_ORIENTATION = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip an ``(H, W, ...)`` array as EXIF ``orientation`` prescribes (TIFF 6.0 tag 274).

    1 none, 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose, 6 rotate 90 clockwise,
    7 transverse, 8 rotate 90 counter-clockwise. Returns a C-contiguous array.
    """
    o = int(orientation)
    if o == 2:
        img = img[:, ::-1]
    elif o == 3:
        img = img[::-1, ::-1]
    elif o == 4:
        img = img[::-1]
    elif o == 5:
        img = np.swapaxes(img, 0, 1)
    elif o == 6:
        img = np.swapaxes(img, 0, 1)[:, ::-1]
    elif o == 7:
        img = np.swapaxes(img, 0, 1)[::-1, ::-1]
    elif o == 8:
        img = np.swapaxes(img, 0, 1)[::-1]
    return np.ascontiguousarray(img)


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """(width, height) after :func:`apply_orientation`."""
    return (height, width) if int(orientation) in (5, 6, 7, 8) else (width, height)


def stored_box(area: tuple[int, int, int, int], stored: tuple[int, int], orientation: int,
               option: str = "") -> tuple[int, int, int, int]:
    """The rows and columns ``(y0, y1, x0, x1)`` of a picture stored ``stored = (H, W)`` and shown
    turned by the EXIF ``orientation`` that the upright picture's ``area`` (``x, y, w, h``) covers.

    Raises:
        UsageError: the area is not inside the upright picture (``option`` names what gave it).
    """
    from ..errors import UsageError

    H, W = stored
    ow, oh = oriented_size(W, H, orientation)
    x, y, w, h = area
    if x + w > ow or y + h > oh:
        raise UsageError(f"{option}{x},{y},{w},{h} is not inside the {ow} x {oh} picture")
    # the box marked on the upright picture and turned back (no corner arithmetic per orientation)
    mask = np.zeros((oh, ow), bool)
    mask[y : y + h, x : x + w] = True
    back = apply_orientation(mask, INVERSE_ORIENTATION[orientation])
    rows, cols = np.flatnonzero(back.any(axis=1)), np.flatnonzero(back.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
