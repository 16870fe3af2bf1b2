"""Highlight handling: what to do where a channel reached the sensor's clip point.

After white balance, channel ``c`` saturates at ``gain_c``; where the least amplified channel has
clipped, colour is unknown. ``clip`` (dcraw ``-H 0``) cuts every channel at that level, so blown areas
are neutral white. ``unclip`` (``-H 1``) keeps the raw values (magenta highlights, for experts).
``blend`` (``-H 2``) keeps the lightness of the unclipped values and the chroma of the clipped ones.
``reconstruct`` (dcraw's ``-H 3..9`` rebuild it by other means) rebuilds each clipped photosite from
the channels that did not clip around it, "inpaint opposed" (Schwalm, with G'MIC's garagecoder and
Iain, darktable 4.2, 2022): a clipped sample of colour ``c`` becomes at least the mean of the two
other colours in its 3x3 neighbourhood (averaged as cube roots, :func:`opposed_mean`) plus one
image-wide correction per colour (:func:`opposed_chroma`), the mean difference between a colour and
that estimate over the unclipped photosites just around clipped ones. The correction carries the
colour of the light around a blown area into it; a blown area whose every channel clipped stays
white.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:
    import torch

__all__ = ["HIGHLIGHT_MODES", "clip_level", "clip_mosaic", "blend_highlights", "opposed_mean", "opposed_chroma",
           "reconstruct_mosaic", "RECONSTRUCT_CONTEXT"]

HIGHLIGHT_MODES = ("clip", "unclip", "blend", "reconstruct")
#: A photosite this close to its clip point counts as clipped: sensors flatten a little below the
#: stated white level (the margin darktable's opposed mode uses).
CLIP_MARGIN = 0.987
#: Pixels of context :func:`reconstruct_mosaic` reads around a photosite (its 3x3 neighbourhood).
RECONSTRUCT_CONTEXT = 1
#: Unclipped photosites of a colour next to clipped ones needed for its correction (fewer: none).
MIN_CHROMA_SAMPLES = 100

# dcraw's blend_highlights: a decorrelating transform (lightness, two opponent axes) and its inverse.
_TRANS = np.array([[1.0, 1.0, 1.0], [1.7320508, -1.7320508, 0.0], [-1.0, -1.0, 2.0]], np.float32)
_ITRANS = np.array([[1.0, 0.8660254, -0.5], [1.0, -0.8660254, -0.5], [1.0, 0.0, 1.0]], np.float32)


def check_mode(mode: str) -> str:
    if mode not in HIGHLIGHT_MODES:
        raise UsageError(f"unknown highlight mode {mode!r}; use {', '.join(HIGHLIGHT_MODES)}")
    return mode


def clip_level(gains: tuple[float, float, float]) -> float:
    """The white-balanced level at which the first channel saturates."""
    return float(min(gains))


def clip_mosaic(mosaic: torch.Tensor, level: float) -> torch.Tensor:
    """Cut the white-balanced mosaic at ``level``, in place."""
    return mosaic.clamp_(max=level)


def blend_highlights(rgb, level: float):
    """dcraw ``-H 2`` on an ``(*, 3, H, W)`` white-balanced camera image (a numpy array, or a torch
    tensor on the CPU); returns a new array (float32) or tensor, or ``rgb`` itself where nothing is
    above ``level``.

    Where any channel exceeds ``level``: transform the unclipped and the clipped pixel into the
    opponent space, scale the unclipped chroma to the clipped chroma's magnitude, transform back.
    Numpy only, on the pixels over the level alone (torch is not imported for it: the default develop
    never imports torch).
    """
    if not isinstance(rgb, np.ndarray):  # a tensor: the same work on its numpy view
        import torch

        out = blend_highlights(rgb.detach().cpu().numpy(), level)
        return rgb if out is None else torch.from_numpy(np.ascontiguousarray(out)).to(rgb)
    rgb = np.asarray(rgb, np.float32)
    pixels = np.moveaxis(rgb, -3, -1)  # (*, H, W, 3) view
    over = (pixels > level).any(axis=-1)
    if not over.any():
        return rgb
    p0 = pixels[over]  # (N, 3)
    lab0 = p0 @ _TRANS.T
    lab1 = np.minimum(p0, level) @ _TRANS.T
    c0 = np.square(lab0[:, 1:]).sum(axis=1, keepdims=True)
    c1 = np.square(lab1[:, 1:]).sum(axis=1, keepdims=True)
    lab0[:, 1:] *= np.sqrt(c1 / np.maximum(c0, 1e-20))
    out = rgb.copy()
    np.moveaxis(out, -3, -1)[over] = (lab0 @ _ITRANS.T) / 3.0
    return out


def opposed_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The mean of two channels as cube roots, cubed: an estimate of a third channel that weighs the
    two closer to how their lightness is seen than a linear mean (darktable's opposed mode)."""
    return (0.5 * (np.cbrt(np.maximum(a, 0.0)) + np.cbrt(np.maximum(b, 0.0)))) ** 3


def _others(c: int) -> tuple[int, int]:
    return ((1, 2), (0, 2), (0, 1))[c]


def opposed_chroma(rgb: np.ndarray, clips) -> np.ndarray:
    """The image-wide correction of each colour for :func:`reconstruct_mosaic`: over the pixels of a
    small white-balanced camera RGB image (``(3, h, w)``, e.g. one pixel per CFA cell) that lie within
    3 pixels of one whose colour ``c`` clipped, are not clipped in ``c`` themselves and hold more
    than a fifth of its clip point, the mean of ``c`` minus :func:`opposed_mean` of the other two.
    0 for a colour with fewer than :data:`MIN_CHROMA_SAMPLES` such pixels.

    Args:
        rgb: ``(3, h, w)`` linear, white-balanced camera RGB, not clipped.
        clips: the clip point of each colour in the same units (after white balance: its gain).
    """
    import cv2

    clips = np.asarray(clips, np.float32)
    near = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    out = np.zeros(3, np.float32)
    for c in range(3):
        clipped = rgb[c] >= CLIP_MARGIN * clips[c]
        if not clipped.any():
            continue
        around = cv2.dilate(clipped.view(np.uint8), near).view(bool) & ~clipped & (rgb[c] > 0.2 * clips[c])
        if np.count_nonzero(around) < MIN_CHROMA_SAMPLES:
            continue
        a, b = _others(c)
        out[c] = float(np.mean(rgb[c][around] - opposed_mean(rgb[a][around], rgb[b][around])))
    return out


def reconstruct_mosaic(mosaic: np.ndarray, cell: np.ndarray, clips, chroma) -> np.ndarray:
    """Rebuild the clipped photosites of a white-balanced CFA mosaic ("inpaint opposed", see the
    module docstring): a photosite of colour ``c`` at or above ``CLIP_MARGIN * clips[c]`` becomes the
    larger of its value and :func:`opposed_mean` of the other two colours' means over its 3x3
    neighbourhood plus ``chroma[c]``. Edges are mirrored (the neighbour of row -1 is row 1).

    Args:
        mosaic: ``(H, W)`` float32, linear, white-balanced, not clipped.
        cell: ``(p, p)`` colour indices of the mosaic's top-left CFA cell (Bayer or X-Trans: every
            3x3 window of either holds all three colours).
        clips, chroma: per colour, the clip point and :func:`opposed_chroma`'s correction.

    Returns:
        A new ``(H, W)`` float32 array, or ``mosaic`` itself when nothing clipped.
    """
    import cv2

    h, w = mosaic.shape
    cell = np.asarray(cell)
    p = cell.shape[0]
    colours = np.tile(cell, (-(-h // p), -(-w // p)))[:h, :w]
    clipped = mosaic >= (CLIP_MARGIN * np.asarray(clips, np.float32))[colours]
    rows = np.flatnonzero(clipped.any(axis=1))
    if rows.size == 0:
        return mosaic
    # The 3x3 means on the rows around the clipped ones only (a blown area is usually a small part
    # of a band); the mirrored edge is the mosaic's, not the span's.
    r0, r1 = max(0, rows[0] - 1), min(h, rows[-1] + 2)
    pad_top, pad_bottom = int(r0 > 0), int(r1 < h)
    span = slice(r0 - pad_top, r1 + pad_bottom)
    m, cols = np.ascontiguousarray(mosaic[span], np.float32), colours[span]
    inner = slice(pad_top, m.shape[0] - pad_bottom)
    hit = clipped[r0:r1]
    means = []
    for c in range(3):
        site = (cols == c).astype(np.float32)
        total = cv2.boxFilter(m * site, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REFLECT_101)
        count = cv2.boxFilter(site, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REFLECT_101)
        means.append(total[inner][hit] / count[inner][hit])
    own = colours[r0:r1][hit]
    estimate = np.empty(own.shape, np.float32)
    for c in range(3):
        a, b = _others(c)
        at = own == c
        estimate[at] = opposed_mean(means[a][at], means[b][at]) + np.float32(chroma[c])
    out = np.array(mosaic, np.float32, copy=True)
    block = out[r0:r1]
    block[hit] = np.maximum(block[hit], estimate)
    return out
