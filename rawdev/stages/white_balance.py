"""White balance: choosing per-channel gains and applying them to a mosaic or an image.

Gains are (R, G, B) multipliers on linear normalised camera values, green = 1. Where they come from,
in order of preference for ``--wb camera`` (:func:`choose_gains`):

1. the camera's as-shot record. A stored 1, 1, 1 is taken as stored (some cameras, e.g. the
   Nikon D1, balance in analogue gain before conversion), unless the embedded preview disagrees;
2. the camera's own rendering: the gains that make the neutral render's mean chromaticity match the
   embedded preview's over well-exposed, unclipped regions (:func:`preview_gains`);
3. a robust automatic estimate, grey-edge (van de Weijer, Gevers & Gijsenij 2007,
   :func:`grey_edge_gains`);
4. LibRaw's daylight multipliers, as the last resort.

``--wb preview`` asks for 2 explicitly, ``--wb auto`` for 3, ``--wb daylight`` for 4; every fallback
comes with a notice, and :class:`WhiteBalance` says which one was used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..errors import UsageError

__all__ = [
    "WhiteBalance",
    "WBSource",
    "PreviewFit",
    "CameraThumb",
    "camera_thumbnail",
    "choose_gains",
    "grey_world_gains",
    "grey_edge_gains",
    "preview_gains",
    "chromaticity_error",
    "apply_gains_mosaic",
]

WBSource = Literal["camera", "preview", "auto", "daylight", "custom"]
WB_MODES = ("camera", "preview", "daylight", "auto")

#: A stored 1, 1, 1 stands unless the preview's chromaticity differs from its render by more than
#: this (largest relative difference of mean R/G or B/G); 10-15 % is a visible cast.
ONES_TOLERANCE = 0.10
#: Preview samples (sRGB-encoded) outside this range are too dark or too close to clipping to show
#: the camera's balance; the same bounds as the chromaticity check the docs quote.
_PREVIEW_RANGE = (0.01, 0.95)
#: Camera values at or above this fraction of the clip point carry no colour.
_CLIP = 0.95
#: The fit works on the preview's grid, at most this many samples on the long side.
_FIT_SIZE = 160


@dataclass(frozen=True)
class WhiteBalance:
    """Chosen gains, where they came from, and a notice for the user when we had to fall back."""

    gains: tuple[float, float, float]
    source: WBSource
    notice: str | None = None


@dataclass(frozen=True)
class CameraThumb:
    """A small camera-RGB image of the raw data (linear, normalised, *not* white-balanced), in
    display orientation: ``rgb`` ``(h, w, 3)`` cell means per colour, and ``clipped`` ``(h, w)``,
    True where any sample of the cell reaches the clip point."""

    rgb: np.ndarray
    clipped: np.ndarray


@dataclass(frozen=True)
class PreviewFit:
    """Gains fitted to the embedded preview, and how far the as-stored gains' render is from it."""

    gains: tuple[float, float, float]
    usable: float  # fraction of the preview's samples the fit used
    preview_chroma: tuple[float, float]  # mean R/G, B/G of the preview, linear light


def camera_thumbnail(mosaic: torch.Tensor, colors: np.ndarray, size: tuple[int, int], orientation: int = 1) -> CameraThumb:
    """Per-colour means of a normalised ``(H, W)`` mosaic over a ``size`` = ``(h, w)`` grid (before
    orientation), then turned by EXIF ``orientation``: the neutral render's raw material, cheap enough
    to make for every file (one pooling pass)."""
    from .orientation import apply_orientation

    m = mosaic.float()[None, None]
    col = torch.as_tensor(np.asarray(colors), dtype=torch.long)[None, None]
    pool = torch.nn.functional.adaptive_avg_pool2d
    out = []
    for c in range(3):
        mask = (col == c).float()
        s, n = pool(m * mask, size), pool(mask, size)
        out.append((s / n.clamp(min=1e-9))[0, 0])
    rgb = torch.stack(out, dim=-1).numpy()
    clipped = (pool((m >= _CLIP).float(), size)[0, 0] > 0).numpy()
    return CameraThumb(apply_orientation(rgb, orientation), apply_orientation(clipped, orientation))


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _trim_bars(preview: np.ndarray) -> np.ndarray:
    """The preview without black letterbox bars: edge rows and columns whose brightest sample is
    nearly black (the Nikon D1 pads its 3:2 frame into a 4:3 bitmap)."""
    dark = preview.max(-1) <= 8
    rows, cols = ~dark.all(1), ~dark.all(0)
    if not rows.any() or not cols.any():
        return preview
    y = np.nonzero(rows)[0]
    x = np.nonzero(cols)[0]
    return preview[y[0]:y[-1] + 1, x[0]:x[-1] + 1]


def _align(preview: np.ndarray, aspect: float) -> np.ndarray:
    """The preview without letterbox bars, cropped about its centre to the raw frame's aspect ratio
    (width / height): cameras store previews of the recorded frame, sometimes letterboxed or of a
    slightly different crop."""
    preview = _trim_bars(preview)
    h, w = preview.shape[:2]
    if w / h > aspect * 1.02:
        nw = max(1, int(round(h * aspect)))
        x0 = (w - nw) // 2
        return preview[:, x0:x0 + nw]
    if w / h < aspect / 1.02:
        nh = max(1, int(round(w / aspect)))
        y0 = (h - nh) // 2
        return preview[y0:y0 + nh]
    return preview


def preview_grid(preview: np.ndarray, aspect: float, limit: int = _FIT_SIZE) -> tuple[np.ndarray, tuple[int, int]]:
    """The preview (``(H, W, 3)`` uint8 sRGB, display orientation) aligned to the raw frame's
    ``aspect`` and reduced to at most ``limit`` (and :data:`_FIT_SIZE`) samples on its long side:
    float sRGB ``(h, w, 3)`` and that ``(h, w)``."""
    limit = max(1, min(int(limit), _FIT_SIZE))
    p = _align(np.asarray(preview, dtype=np.uint8)[..., :3], aspect).astype(np.float32) / 255.0
    h, w = p.shape[:2]
    k = max(1, int(np.ceil(max(h, w) / limit)))
    size = (max(1, h // k), max(1, w // k))
    t = torch.from_numpy(np.ascontiguousarray(p)).permute(2, 0, 1)[None]
    return torch.nn.functional.adaptive_avg_pool2d(t, size)[0].permute(1, 2, 0).numpy(), size


def _render(thumb: CameraThumb, rgb_cam: np.ndarray | None, gains) -> np.ndarray:
    """The neutral render of ``thumb`` with ``gains``: ``rgb_cam @ (g * cam)`` per sample, linear sRGB."""
    m = np.eye(3) if rgb_cam is None else np.asarray(rgb_cam, dtype=np.float64)
    return (np.asarray(thumb.rgb, dtype=np.float64) * np.asarray(gains[:3], dtype=np.float64)) @ m.T


def _usable(p: np.ndarray, render: np.ndarray, thumb: CameraThumb) -> np.ndarray:
    """Samples where both the preview (sRGB-encoded) and the render (linear) are neither near black
    nor near clipping, in the same sRGB-encoded bounds for both, and the raw is unclipped."""
    lo, hi = _PREVIEW_RANGE
    r_lo, r_hi = _srgb_to_linear(np.array([lo, hi]))
    return ((p.min(-1) > lo) & (p.max(-1) < hi) & (render.min(-1) > r_lo) & (render.max(-1) < r_hi)
            & ~thumb.clipped & np.isfinite(render).all(-1))


def preview_gains(thumb: CameraThumb, preview_srgb: np.ndarray, rgb_cam: np.ndarray | None) -> PreviewFit | None:
    """Gains that make the neutral render of ``thumb`` match the camera's own rendering.

    The render is ``rgb_cam @ (g * cam)`` (linear sRGB), the preview ``preview_srgb`` (the same grid,
    sRGB-encoded floats) linearised with the sRGB EOTF. Over samples well exposed in both and unclipped
    in the raw, the means must agree up to exposure: ``rgb_cam (g * mean(cam)) ∝ mean(preview)``, so
    ``g ∝ (rgb_cam^-1 mean(preview)) / mean(cam)``, in closed form; which samples are well exposed in
    the render depends on ``g``, so fit and selection alternate three times. Means (not per-pixel
    ratios) are what a chromaticity comparison sees, and they shrug off small misalignments and the
    camera's tone curve on neutral regions.

    Returns None when the preview is useless: fewer than 5 % usable samples, a grey-scale preview,
    or gains that are not plausible (outside 1/8..8).
    """
    p = np.asarray(preview_srgb, dtype=np.float64)
    if p.shape[:2] != thumb.rgb.shape[:2]:
        raise ValueError(f"preview grid {p.shape[:2]} and camera thumbnail {thumb.rgb.shape[:2]} differ")
    m = np.eye(3) if rgb_cam is None else np.asarray(rgb_cam, dtype=np.float64)
    cam = np.asarray(thumb.rgb, dtype=np.float64)
    g = np.ones(3)
    ok = None
    for _ in range(3):
        r = _render(thumb, rgb_cam, g)
        # the render's exposure is not the preview's: compare it at the preview's brightness
        ok0 = _usable(p, r, thumb) if ok is None else ok
        scale = _srgb_to_linear(p[ok0]).mean() / max(r[ok0].mean(), 1e-12) if ok0.any() else 1.0
        ok = _usable(p, r * scale, thumb)
        if ok.mean() < 0.05:
            return None
        lin = _srgb_to_linear(p[ok])
        if float(np.abs(lin - lin.mean(-1, keepdims=True)).max()) < 1e-3:
            return None  # a grey-scale preview says nothing about colour
        v = np.linalg.solve(m, lin.mean(0))
        g = v / cam[ok].mean(0)
        if not np.all(np.isfinite(g)) or g[1] <= 0:
            return None
        g = g / g[1]
        if np.any(g < 1 / 8) or np.any(g > 8):
            return None
    pm = _srgb_to_linear(p[ok]).mean(0)
    return PreviewFit((float(g[0]), 1.0, float(g[2])), float(ok.mean()), (float(pm[0] / pm[1]), float(pm[2] / pm[1])))


def chromaticity_error(thumb: CameraThumb, preview_srgb: np.ndarray, rgb_cam: np.ndarray | None,
                       gains: tuple[float, ...]) -> float:
    """Largest relative difference of mean R/G and B/G (linear light) between the render of
    ``thumb`` with ``gains`` and the preview, over samples usable in both (inf where none is)."""
    p = np.asarray(preview_srgb, dtype=np.float64)
    r = _render(thumb, rgb_cam, gains)
    ok = _usable(p, r, thumb)
    if not ok.any():
        return float("inf")
    rm, pm = r[ok].mean(0), _srgb_to_linear(p[ok]).mean(0)
    return float(max(abs(rm[0] / rm[1] / (pm[0] / pm[1]) - 1), abs(rm[2] / rm[1] / (pm[2] / pm[1]) - 1)))


def grey_edge_gains(thumb: CameraThumb, p: float = 6.0, sigma: float = 1.0) -> tuple[float, float, float] | None:
    """Grey-edge illuminant estimate (van de Weijer, Gevers & Gijsenij 2007, "Edge-based color
    constancy", IEEE TIP 16(9), eq. 10 with n = 1): the Minkowski ``p``-norm of each channel's
    Gaussian-smoothed (``sigma``, in thumbnail samples) gradient magnitude is proportional to the
    illuminant, ``(∫ |∇ f_c^σ|^p dx)^(1/p) = k e_c``; gains are ``e_G / e_c``. The average reflectance
    *difference* is achromatic far more often than the average reflectance (grey-world), so large
    uniformly coloured areas do not pull it. Cells near clipped ones are left out (clipping makes
    false, white edges). None when the image has no usable edges.
    """
    rgb = torch.from_numpy(np.ascontiguousarray(thumb.rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    r = max(1, int(round(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    pad = torch.nn.functional.pad(rgb, (r, r, r, r), mode="replicate")
    sm = torch.nn.functional.conv2d(pad, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    sm = torch.nn.functional.conv2d(sm, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]
    if sm.shape[-1] < 3 or sm.shape[-2] < 3:
        return None
    gx = sm[:, 1:-1, 2:] - sm[:, 1:-1, :-2]
    gy = sm[:, 2:, 1:-1] - sm[:, :-2, 1:-1]
    mag = (gx * gx + gy * gy).sqrt()
    clip = torch.from_numpy(thumb.clipped.astype(np.float32))[None, None]
    near = torch.nn.functional.max_pool2d(clip, 2 * r + 3, stride=1, padding=r + 1)[0, 0, 1:-1, 1:-1] > 0
    ok = ~near & torch.isfinite(mag).all(0)
    if int(ok.sum()) < 16:
        return None
    e = mag[:, ok].double().pow(p).mean(-1).pow(1.0 / p).numpy()
    if not np.all(e > 0) or not np.all(np.isfinite(e)):
        return None
    return (float(e[1] / e[0]), 1.0, float(e[1] / e[2]))


def grey_world_gains(mosaic: torch.Tensor, colors: torch.Tensor, clip: float = 0.98) -> tuple[float, float, float]:
    """Grey-world estimate (Buchsbaum 1980): the mean of each colour over unclipped pixels is equal.

    ``mosaic`` is ``(H, W)`` linear normalised, ``colors`` the ``(H, W)`` colour index map. Pixels at or
    above ``clip`` are left out because clipped values carry no colour. Subsampled for speed: the
    estimate is a mean, and every 4th row/column of each CFA phase is plenty.
    """
    h, w = mosaic.shape[-2:]
    step = 4 if min(h, w) >= 64 else 2
    h2, w2 = h // step * step, w // step * step
    # The top-left 2x2 of every step x step block: all CFA phases are sampled, at 1/4 of the cost.
    m = mosaic[:h2, :w2].reshape(h2 // step, step, w2 // step, step)[:, :2, :, :2].reshape(-1)
    c = colors[:h2, :w2].reshape(h2 // step, step, w2 // step, step)[:, :2, :, :2].reshape(-1)
    ok = (m < clip) & (m > 0)
    means = []
    for ch in range(3):
        sel = m[ok & (c == ch)]
        means.append(float(sel.mean()) if sel.numel() else float("nan"))
    if not all(np.isfinite(means)) or min(means) <= 0:
        return (1.0, 1.0, 1.0)
    g = means[1]
    return (g / means[0], 1.0, g / means[2])


GainsFn = Callable[[], "tuple[float, float, float] | None"]


def _is_ones(v: tuple[float, ...]) -> bool:
    return all(abs(float(x) - 1.0) < 1e-6 for x in v[:3])


def choose_gains(
    mode: str | tuple[float, ...],
    *,
    camera: tuple[float, ...] | None,
    daylight: tuple[float, ...] | None,
    preview: Callable[[], PreviewFit | None] | None = None,
    ones_error: Callable[[], float | None] | None = None,
    auto: GainsFn | None = None,
    grey_world: GainsFn | None = None,
) -> WhiteBalance:
    """Resolve ``mode`` ("camera", "preview", "auto", "daylight", or explicit R,G,B[,G]) to gains with
    G = 1, following the chain of the module docstring.

    The estimators are callables, run only when the chain reaches them: ``preview`` fits the
    embedded preview (None: absent or useless), ``ones_error`` is the chromaticity error of a stored
    1, 1, 1 against the preview (None: no preview), ``auto`` is grey-edge (None: no usable edges),
    ``grey_world`` its own fallback (kept for callers that pass only it).
    """
    if isinstance(mode, (tuple, list)):
        vals = [float(v) for v in mode]
        if len(vals) not in (3, 4) or any(not np.isfinite(v) or v <= 0 for v in vals):
            raise UsageError(f"custom white balance needs 3 or 4 positive numbers, got {mode!r}")
        return WhiteBalance((vals[0] / vals[1], 1.0, vals[2] / vals[1]), "custom")
    mode = str(mode).lower()
    if mode in ("grey-world", "gray-world", "grey-edge", "gray-edge"):
        mode = "auto"
    if mode not in WB_MODES:
        raise UsageError(f"unknown white balance {mode!r}; use camera, preview, auto, daylight or R,G,B[,G]")

    def run(fn):
        return fn() if fn is not None else None

    def from_auto(why: str | None) -> WhiteBalance | None:
        g = run(auto) or run(grey_world)
        if g is None:
            return None
        return WhiteBalance(tuple(g), "auto", None if why is None else f"{why}; using grey-edge (automatic)")

    def from_daylight(why: str | None) -> WhiteBalance:
        if daylight is not None:
            return WhiteBalance((daylight[0], 1.0, daylight[2]), "daylight",
                                None if why is None else f"{why}; using daylight multipliers")
        return WhiteBalance((1.0, 1.0, 1.0), "custom",
                            f"{why or 'no daylight multipliers known for this camera'}; no estimate possible, using 1, 1, 1")

    def from_preview(why: str | None) -> WhiteBalance | None:
        fit = run(preview)
        if fit is None:
            return None
        note = None if why is None else f"{why}; fitted to the embedded preview ({fit.usable:.0%} of it used)"
        return WhiteBalance(fit.gains, "preview", note)

    if mode == "camera":
        if camera is not None and not _is_ones(camera):
            return WhiteBalance((camera[0], 1.0, camera[2]), "camera")
        if camera is not None:  # stored 1, 1, 1: stands unless the camera's own preview disagrees
            err = run(ones_error)
            if err is None or err <= ONES_TOLERANCE:
                return WhiteBalance((1.0, 1.0, 1.0), "camera")
            wb = from_preview(f"the stored white balance 1, 1, 1 differs from the embedded preview by {err:.0%}")
            if wb is not None:
                return wb
            return WhiteBalance((1.0, 1.0, 1.0), "camera")
        why = "no as-shot white balance in the file"
        return (from_preview(why) or from_auto(f"{why} and no usable embedded preview")
                or from_daylight(f"{why}, no usable preview and no edges to estimate from"))
    if mode == "preview":
        return (from_preview(None) or from_auto("no usable embedded preview")
                or from_daylight("no usable embedded preview and no edges to estimate from"))
    if mode == "auto":
        return from_auto(None) or from_daylight("no edges to estimate a white balance from")
    if daylight is not None:
        return WhiteBalance((daylight[0], 1.0, daylight[2]), "daylight")
    return from_auto("no daylight multipliers known for this camera") or from_daylight(None)


def apply_gains_mosaic(mosaic: torch.Tensor, colors: torch.Tensor, gains: tuple[float, float, float]) -> torch.Tensor:
    """Multiply each mosaic sample by the gain of its colour, in place; returns ``mosaic``."""
    g = torch.tensor(gains, dtype=mosaic.dtype, device=mosaic.device)
    mosaic.mul_(g[colors.long()])
    return mosaic
