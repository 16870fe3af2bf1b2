"""Colour: white-balanced camera RGB -> linear sRGB (D65) with the camera's matrix.

The matrix comes from the file (DNG ColorMatrix / LibRaw's Adobe table), computed as LibRaw's
``cam_xyz_coeff`` does (see :func:`rawdev.io.raw._rgb_cam`), so that a white-balanced neutral stays
neutral: its rows sum to 1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_matrix"]


def apply_matrix(rgb, matrix):
    """``(*, 3, H, W)`` -> ``(*, 3, H, W)``: ``out_i = sum_j M_ij rgb_j``. ``None`` is the identity.
    A torch tensor or a numpy array; returns the same kind."""
    if matrix is None:
        return rgb
    if isinstance(rgb, np.ndarray):
        return np.einsum("ij,...jhw->...ihw", np.asarray(matrix, dtype=rgb.dtype), rgb)
    import torch

    m = torch.as_tensor(np.asarray(matrix, dtype=np.float64) if not torch.is_tensor(matrix) else matrix)
    m = m.to(device=rgb.device, dtype=rgb.dtype)
    return torch.einsum("ij,...jhw->...ihw", m, rgb)
