"""Colour matrices of real cameras (XYZ -> camera RGB, D65), for synthetic RAW data and tests.

The four matrices are the ones Brooks et al. 2019 ("Unprocessing Images for Learned Raw Denoising",
CVPR; google-research/unprocessing ``unprocess.py``, ``random_ccm``) sample from; the source lists them
without camera names. Training code samples convex combinations of them, as Brooks does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["XYZ_TO_CAMERA", "SRGB_TO_XYZ", "XYZ_TO_SRGB", "camera_from_srgb", "xyz_of_xy"]

#: IEC 61966-2-1 linear sRGB (D65) -> XYZ.
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
XYZ_TO_SRGB = np.linalg.inv(SRGB_TO_XYZ)

#: XYZ -> camera matrices from Brooks et al. 2019 (their ``random_ccm``).
XYZ_TO_CAMERA = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
    ]
)


def camera_from_srgb(xyz_to_camera: np.ndarray) -> np.ndarray:
    """The 3x3 matrix taking linear sRGB to (un-white-balanced) camera RGB for a camera matrix."""
    return np.asarray(xyz_to_camera, dtype=np.float64) @ SRGB_TO_XYZ


def xyz_of_xy(x: float, y: float) -> np.ndarray:
    """CIE XYZ (Y = 1) of the CIE 1931 chromaticity ``x, y``."""
    return np.array([x / y, 1.0, (1.0 - x - y) / y])
