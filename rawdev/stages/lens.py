"""Lens corrections from the lensfun database (``lensfunpy``): distortion, vignetting and lateral
chromatic aberration, for the camera and lens the file names (or the lens the user names).

Applied to linear light, before the tone step: vignetting is a multiplicative fall-off of exposure
(lensfun's ``pa`` model, ``1 + k1 r^2 + k2 r^4 + k3 r^6``, Kang & Weiss 2000), which is only a gain
in linear values; distortion (``ptlens``/``poly3``/``poly5``) and lateral chromatic aberration (a
per-channel radial scale) move samples, resampled bilinearly from lensfun's per-channel source
coordinates. The models are radial about the frame's centre, so they apply to the picture in
display orientation with its own width and height. Lensfun scales the corrected frame so that no
empty corner shows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["LensMatch", "find_lens", "correct_lens"]


@dataclass(frozen=True)
class LensMatch:
    """A camera and lens of the database, and the shot's focal length (mm) and f-number."""

    camera: object
    lens: object
    focal_mm: float
    f_number: float

    @property
    def name(self) -> str:
        maker, model = str(self.lens.maker), str(self.lens.model)
        return model if model.lower().startswith(maker.lower()) else f"{maker} {model}".strip()


@functools.lru_cache(maxsize=1)
def _database():
    import lensfunpy

    return lensfunpy.Database()


def find_lens(make: str | None, model: str | None, lens: str | None, focal_mm: float | None,
              f_number: float | None) -> tuple[LensMatch | None, str | None]:
    """The database's camera and lens for these EXIF names, or ``(None, why not)``."""
    if not make or not model:
        return None, "the file names no camera"
    db = _database()
    cams = db.find_cameras(make, model, loose_search=True)
    if not cams:
        return None, f"camera {model!r} is not in lensfun's database"
    if not lens:
        return None, "the file names no lens (use --lens \"Maker Model\")"
    lenses = db.find_lenses(cams[0], None, lens, loose_search=True)
    if not lenses:
        return None, f"lens {lens!r} is not in lensfun's database"
    l = lenses[0]
    focal = focal_mm or l.min_focal
    if not focal:
        return None, "the file gives no focal length"
    return LensMatch(cams[0], l, float(focal), float(f_number or l.min_aperture or 8.0)), None


def _bilinear(plane: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``plane`` sampled at ``(x, y)`` (pixel centres at integers), edges clamped."""
    h, w = plane.shape
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(x.astype(np.int64), w - 2)
    y0 = np.minimum(y.astype(np.int64), h - 2)
    fx, fy = x - x0, y - y0
    top = plane[y0, x0] * (1 - fx) + plane[y0, x0 + 1] * fx
    bot = plane[y0 + 1, x0] * (1 - fx) + plane[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def correct_lens(linear: np.ndarray, match: LensMatch, *, distance_m: float = 1000.0, reverse: bool = False,
                 rows: int = 128) -> np.ndarray:
    """``linear`` ``(H, W, 3)`` float32 with vignetting, distortion and lateral CA corrected (or, with
    ``reverse``, applied: how the lens would have rendered an ideal image; used to make test charts).
    """
    import lensfunpy

    h, w = linear.shape[:2]
    mod = lensfunpy.Modifier(match.lens, match.camera.crop_factor, w, h)
    mod.initialize(match.focal_mm, match.f_number, distance_m, scale=1.0 if reverse else 0.0,
                   pixel_format=np.float32, flags=lensfunpy.ModifyFlags.ALL, reverse=reverse)
    img = np.ascontiguousarray(linear, dtype=np.float32).copy()
    if not reverse:
        mod.apply_color_modification(img)  # vignetting: a gain per pixel, in place
    out = np.empty_like(img)
    for y0 in range(0, h, rows):
        n = min(rows, h - y0)
        coords = mod.apply_subpixel_geometry_distortion(0, y0, w, n)
        if coords is None:  # no geometric calibration: vignetting only
            out = img
            break
        for c in range(3):
            out[y0 : y0 + n, :, c] = _bilinear(img[..., c], coords[:, :, c, 0], coords[:, :, c, 1])
    if reverse:
        mod.apply_color_modification(out)
    return out
