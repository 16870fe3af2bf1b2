"""Orientation: apply an EXIF Orientation (1..8) to pixels, so the output can say Orientation = 1."""

from __future__ import annotations

import numpy as np

__all__ = ["apply_orientation", "oriented_size", "INVERSE_ORIENTATION"]

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
