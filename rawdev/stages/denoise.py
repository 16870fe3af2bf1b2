"""Noise reduction for the classical developers: smooth chroma, edge-preserving luma.

Demosaicking interpolates noise along with signal; a classical demosaicker hands it on, coloured by
the colour-difference interpolation ("colour noise": blotches of a few pixels, in every channel at
once). What this stage does to the demosaicked, white-balanced camera RGB, in the sRGB-encoded domain
(where shot noise is closer to one level across the tones than in linear light):

1. split each pixel into its mean ``Y = (R + G + B) / 3`` and its colour differences ``C = RGB - Y``;
2. low-pass ``C`` with a Gaussian of ``chroma_px`` pixels: the eye's acuity for colour is a fraction
   of that for luminance (the reason JPEG and video subsample chroma), so colour noise can be
   averaged over a wide window at little visible cost;
3. filter ``Y`` with a bilateral filter (Tomasi & Manduchi 1998, eq. 4: weights that fall with the
   distance, spatial sigma 1.5 px, and with the difference of values, range sigma ``3 sigma``): noise
   of amplitude ``sigma`` is averaged, edges much stronger than it are kept.

The strength follows the noise model's figure for the file (``--noise``, the NoiseProfile or the
estimate from the data, :mod:`rawdev.stages.noise`): off below :data:`MIN_SIGMA` (clean files and the
estimator's floor on textured ones), and a chroma radius growing with the noise above it.

Measured on the noisy round trip (docs/benchmarks.md, "Noise reduction"): 4-6 dB above the same
develop without it; on clean files it does not run.

References:
    Tomasi1998: C. Tomasi, R. Manduchi, "Bilateral filtering for gray and color images", ICCV 1998.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_SIGMA", "MARGIN", "chroma_radius", "reduce_noise"]

#: Noise (sRGB-encoded std on the 0-1 scale) below which nothing is done: 3 of 255, above what the
#: estimator reads into clean, textured photos (0.6-2.7 of 255 on the round trip).
MIN_SIGMA = 3.0 / 255.0
#: The largest chroma radius (Gaussian sigma, pixels).
_MAX_CHROMA_PX = 4.0
#: Context each side a region needs for its result to equal a whole-image run: the Gaussian's
#: kernel half-width at the largest radius (OpenCV: 4 sigma for float data).
MARGIN = int(4 * _MAX_CHROMA_PX) + 2
_SPATIAL_PX = 1.5
_RANGE_SIGMAS = 3.0
_DIAMETER = 5


def chroma_radius(sigma: float) -> float:
    """The chroma low-pass's Gaussian sigma (pixels) for noise ``sigma``, or 0 (nothing done):
    one pixel per 4 levels of noise (of 255), from 1 to :data:`_MAX_CHROMA_PX`."""
    if not sigma >= MIN_SIGMA:
        return 0.0
    return float(min(max(sigma * 255.0 / 4.0, 1.0), _MAX_CHROMA_PX))


def reduce_noise(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """The stage on ``(3, h, w)`` float32 sRGB-encoded camera RGB with noise ``sigma`` (encoded std,
    0-1 scale); returns a new array, or ``rgb`` itself when the noise is below :data:`MIN_SIGMA`.
    Borders are mirrored (OpenCV's default): give a region :data:`MARGIN` of context."""
    import cv2

    radius = chroma_radius(sigma)
    if not radius:
        return rgb
    rgb = np.ascontiguousarray(rgb, np.float32)
    y = cv2.addWeighted(rgb[0], 1.0 / 3.0, rgb[1], 1.0 / 3.0, 0.0)
    y = cv2.scaleAdd(rgb[2], 1.0 / 3.0, y)
    out = np.empty_like(rgb)
    luma = cv2.bilateralFilter(y, _DIAMETER, _RANGE_SIGMAS * float(sigma), _SPATIAL_PX)
    # The three colour differences sum to zero, and so do their low-passes: two are filtered, the
    # third follows (a third less work, the same result).
    c_r, c_g = (cv2.GaussianBlur(cv2.subtract(rgb[c], y), (0, 0), radius) for c in (0, 1))
    cv2.add(luma, c_r, dst=out[0])
    cv2.add(luma, c_g, dst=out[1])
    cv2.subtract(luma, cv2.add(c_r, c_g), dst=out[2])
    return out
