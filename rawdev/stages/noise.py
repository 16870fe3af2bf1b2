"""The sensor's noise: a signal-dependent model per CFA channel, where it comes from, and what the
noise-aware back-ends are told.

Model (Foi et al. 2008, "Practical Poissonian-Gaussian noise modeling and fitting for single-image
raw-data", IEEE TIP 17(10), eq. 2-3): on normalised linear data ``x`` (black 0, clip 1) a sample's
variance is ``var(x) = a * x + b`` (``a`` the Poissonian / shot part, ``b`` the Gaussian / read part),
one pair per CFA colour. The DNG NoiseProfile tag and Brooks et al. 2019 use the same form.

Sources, in order of preference (:func:`choose_noise_model`): the user's ``--noise``, the DNG
NoiseProfile, an estimate from the RAW data alone (:func:`estimate_noise_model`). Real CR2, NEF, ARW,
RAF, ORF and RW2 files never carry a NoiseProfile, so the estimate is the usual case.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import numpy as np

from ..types import RawImage

__all__ = [
    "NoiseModel",
    "NoiseSource",
    "SIGMA_GREY",
    "srgb_slope",
    "estimate_noise_model",
    "choose_noise_model",
    "backend_sigma",
    "noise_map",
    "immerkaer_sigma",
]

#: Where a signal-dependent model is quoted as one figure: 18 % grey, the level exposure aims at.
SIGMA_GREY = 0.18
NoiseSource = Literal["--noise", "profile", "estimate"]

#: Patch side (samples of one CFA colour) and the most patches drawn per colour: the estimate is a
#: fit of two numbers, and 16 000 patches of 36 samples give it to about 1 %; more only costs time.
PATCH = 6
MAX_PATCHES = 16_000
#: Liu et al. 2013's significance level: a patch is weak-texture when its gradient energy is below
#: this quantile of what noise alone gives.
WEAK_TEXTURE_QUANTILE = 0.99
#: Patches whose samples reach this fraction of the clip point are left out: clipped noise is not noise.
CLIP_FRACTION = 0.95
_LEVEL_BINS = 12


def srgb_slope(x: float | np.ndarray = SIGMA_GREY) -> float | np.ndarray:
    """Derivative of the sRGB OETF (IEC 61966-2-1) at linear ``x``: how a small noise std in linear
    light scales once encoded; ``12.92`` on the linear segment, ``1.055 / 2.4 * x ** (1 / 2.4 - 1)``
    above it."""
    xa = np.maximum(np.asarray(x, dtype=np.float64), 0.0031308)
    s = np.where(np.asarray(x) <= 0.0031308, 12.92, 1.055 / 2.4 * xa ** (1 / 2.4 - 1))
    return float(s) if np.ndim(s) == 0 else s


@dataclass(frozen=True)
class NoiseModel:
    """``var = shot[c] * x + read[c]`` on normalised linear data (before white balance), per CFA
    colour index ``c``; ``source`` says where it came from."""

    shot: tuple[float, ...]
    read: tuple[float, ...]
    source: NoiseSource

    def variance(self, x: float | np.ndarray, channel: int = 1) -> float | np.ndarray:
        """Variance at normalised level ``x`` (clamped at 0: below black only read noise remains)."""
        c = min(channel, len(self.shot) - 1)
        return self.shot[c] * np.maximum(x, 0.0) + self.read[c]

    def sigma(self, x: float = SIGMA_GREY, channel: int = 1) -> float:
        """Standard deviation at normalised level ``x`` (default 18 % grey), channel ``channel``."""
        return float(np.sqrt(max(float(self.variance(x, channel)), 0.0)))

    def white_balanced(self, gains: tuple[float, ...]) -> "NoiseModel":
        """The model of ``g * x`` per channel: ``var = g a x_wb + g^2 b`` (since ``x = x_wb / g``)."""
        n = len(self.shot)
        g = [float(gains[min(c, len(gains) - 1)]) for c in range(n)]
        return replace(self, shot=tuple(g[c] * self.shot[c] for c in range(n)),
                       read=tuple(g[c] ** 2 * self.read[c] for c in range(n)))

    def describe(self) -> str:
        """One line for notices and ``rawdev info``: the green channel's model and its 18 % figure."""
        return (f"var = {self.shot[min(1, len(self.shot) - 1)]:.3g} x + {self.read[min(1, len(self.read) - 1)]:.3g} "
                f"(sigma {self.sigma():.3g} at 18 % grey)")

    def to_json(self) -> dict:
        return {"shot": [float(v) for v in self.shot], "read": [float(v) for v in self.read],
                "source": self.source, "sigma_18": self.sigma()}


# --------------------------------------------------------------------------------------------------
# Estimation from the data


#: The two constants of the patch statistics below for the shipped ``PATCH`` and
#: ``WEAK_TEXTURE_QUANTILE``, as :func:`_draw_texture_threshold` and :func:`_draw_median_to_mean` draw
#: them (fixed seeds, so exactly these numbers; tests/test_noise.py draws them again): drawing takes
#: about 0.1 s, which every ``rawdev info`` and noise-aware develop would pay.
_DRAWN_THRESHOLD = {(6, 0.99): 211.14050478421422}
_DRAWN_MEDIAN_TO_MEAN = {6: 1.0614412188998865}


def _texture_threshold(patch: int, quantile: float) -> float:
    """:func:`_draw_texture_threshold`, from the table where it holds the pair."""
    return _DRAWN_THRESHOLD.get((patch, quantile)) or _draw_texture_threshold(patch, quantile)


def _median_to_mean(patch: int) -> float:
    """:func:`_draw_median_to_mean`, from the table where it holds the size."""
    return _DRAWN_MEDIAN_TO_MEAN.get(patch) or _draw_median_to_mean(patch)


@lru_cache(maxsize=4)
def _draw_texture_threshold(patch: int, quantile: float) -> float:
    """The ``quantile`` of a patch's gradient energy (:func:`_gradient_energy`) over pure unit-variance
    Gaussian noise. Liu et al. 2013 derive it as a Gamma quantile (Sec. 3.2, eq. 12); drawing it once
    from 20 000 noise patches gives the same threshold for our exact operator without the
    approximation."""
    rng = np.random.default_rng(20130901)
    return float(np.quantile(_gradient_energy(rng.standard_normal((20_000, patch, patch))), quantile))


@lru_cache(maxsize=4)
def _draw_median_to_mean(patch: int) -> float:
    """Mean over median of :func:`_detail_variance` on pure Gaussian noise patches: the factor that
    makes a level set's median detail variance an unbiased noise variance (the median shrugs off the
    few textured patches that pass the selection; Foi et al. 2008 use a robust estimate for the same
    reason, Sec. IV-B)."""
    rng = np.random.default_rng(20080801)
    d = _detail_variance(rng.standard_normal((20_000, patch, patch)))
    return float(d.mean() / np.median(d))


def _gradient_energy(p: np.ndarray) -> np.ndarray:
    """Texture strength of ``(n, s, s)`` patches: the trace of the gradient covariance matrix
    ``G^T G`` of Liu et al. 2013 (eq. 6-7), i.e. the sum of squared horizontal and vertical
    differences."""
    return (np.diff(p, axis=2) ** 2).sum(axis=(1, 2)) + (np.diff(p, axis=1) ** 2).sum(axis=(1, 2))


def _detail_variance(p: np.ndarray) -> np.ndarray:
    """Per patch, the mean square of the finest-scale diagonal Haar detail
    ``(p[y,x] - p[y,x+1] - p[y+1,x] + p[y+1,x+1]) / 2``: Foi et al. 2008's wavelet detail (Sec. IV-A,
    eq. 7), whose variance is the noise variance for independent noise and which cancels constants
    and linear ramps in x and y."""
    d = (p[:, :-1, :-1] - p[:, :-1, 1:] - p[:, 1:, :-1] + p[:, 1:, 1:]) * 0.5
    return (d * d).mean(axis=(1, 2))


def _fit_affine(level: np.ndarray, var: np.ndarray, count: np.ndarray) -> tuple[float, float]:
    """``var = a * level + b`` fitted to level-set estimates with ``a, b >= 0``.

    Weighted least squares with weights ``count / var_model^2`` (the inverse variance of a mean of
    ``count`` chi-square samples), iterated: Foi et al. 2008's maximum-likelihood fit (Sec. V, eq. 27)
    to first order.
    """
    w = count / np.maximum(var, 1e-12) ** 2
    a = b = 0.0
    for _ in range(4):
        A = np.stack([level, np.ones_like(level)], axis=1) * np.sqrt(w)[:, None]
        a, b = np.linalg.lstsq(A, var * np.sqrt(w), rcond=None)[0]
        if b < 0:  # no read noise: the line through the origin
            b = 0.0
            a = float((w * level * var).sum() / max((w * level * level).sum(), 1e-30))
        if a < 0:  # no shot noise: a constant
            a = 0.0
            b = float((w * var).sum() / w.sum())
        model = np.maximum(a * level + b, 1e-12)
        w = count / model**2
    return max(float(a), 0.0), max(float(b), 0.0)


def _planes(raw: RawImage) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(colour, counts plane, black plane)`` for every position of the CFA cell (one regular
    sub-image each), or for every channel of linear data."""
    data = raw.data
    if data.ndim == 3:
        blacks = raw.meta.black_level
        return [(c, data[..., c], np.full((1, 1), blacks[min(c, len(blacks) - 1)], np.float32))
                for c in range(data.shape[2])]
    p = raw.meta.cfa.period if raw.colors is not None else 1
    out = []
    for dy in range(p):
        for dx in range(p):
            c = int(raw.colors[dy, dx]) if raw.colors is not None else 0
            black = np.asarray(raw.black_map[dy:dy + 1, dx:dx + 1], np.float32) if raw.black_map is not None \
                else np.full((1, 1), raw.meta.black_level[0], np.float32)
            out.append((c, data[dy::p, dx::p], black))
    return out


def _sample_patches(plane: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` patches of ``PATCH x PATCH`` from ``plane`` at random grid positions (stride
    ``PATCH // 2``), as float64 ``(n, PATCH, PATCH)`` raw counts."""
    s = PATCH
    h, w = plane.shape
    if h < s or w < s:
        return np.empty((0, s, s))
    ys = np.arange(0, h - s + 1, s // 2)
    xs = np.arange(0, w - s + 1, s // 2)
    total = len(ys) * len(xs)
    idx = rng.choice(total, size=min(n, total), replace=False) if total > n else np.arange(total)
    y0, x0 = ys[idx // len(xs)], xs[idx % len(xs)]
    off = np.arange(s)
    return plane[(y0[:, None, None] + off[None, :, None]), (x0[:, None, None] + off[None, None, :])].astype(np.float64)


def _estimate_channel(patches: np.ndarray) -> tuple[float, float] | None:
    """``(a, b)`` from normalised ``(n, s, s)`` patches of one colour (see :func:`estimate_noise_model`)."""
    if len(patches) < 64:
        return None
    patches = patches[patches.max(axis=(1, 2)) < CLIP_FRACTION]
    if len(patches) < 64:
        return None
    level = patches.mean(axis=(1, 2))
    texture = _gradient_energy(patches)
    detail = _detail_variance(patches)
    tau = _texture_threshold(PATCH, WEAK_TEXTURE_QUANTILE)
    kappa = _median_to_mean(PATCH)
    edges = np.quantile(level, np.linspace(0, 1, _LEVEL_BINS + 1))
    bins = np.clip(np.searchsorted(edges, level, side="right") - 1, 0, _LEVEL_BINS - 1)
    # Start: in each level bin the 15 % smoothest patches (Liu et al. 2013, Sec. 3.3 initialise with
    # the whole image; starting smooth needs fewer rounds on textured photos).
    sel = np.zeros(len(level), bool)
    for k in range(_LEVEL_BINS):
        in_k = np.nonzero(bins == k)[0]
        if len(in_k):
            sel[in_k[texture[in_k] <= np.quantile(texture[in_k], 0.15)]] = True
    ab = None
    for _ in range(4):
        lv, vv, nn = [], [], []
        for k in range(_LEVEL_BINS):
            m = sel & (bins == k)
            if m.sum() >= 8:
                lv.append(level[m].mean())
                vv.append(np.median(detail[m]) * kappa)
                nn.append(m.sum())
        if len(lv) < 2:
            break
        ab = _fit_affine(np.array(lv), np.array(vv), np.array(nn, float))
        model = np.maximum(ab[0] * np.maximum(level, 0) + ab[1], 1e-14)
        # Liu et al. 2013, eq. 12-13: weak-texture patches are those whose gradient energy noise alone
        # could give at the model's level; re-select with the new model and fit again.
        new = texture <= tau * model
        if np.array_equal(new, sel):
            break
        sel = new
    return ab


def estimate_noise_model(raw: RawImage, *, max_patches: int = MAX_PATCHES, seed: int = 0) -> NoiseModel:
    """The noise model of ``raw`` from its sensor data alone.

    Foi et al. 2008 (IEEE TIP 17(10)) fit ``var = a x + b`` (eq. 2-3) to level-set estimates of the
    finest-scale wavelet detail's variance (Sec. IV, eq. 7-9) taken over *smooth* regions; which
    regions are smooth is decided as in Liu, Tanaka & Okutomi 2013/2014 ("Single-image noise level
    estimation for blind denoising", IEEE TIP 22(12); "Practical signal-dependent noise parameter
    estimation from a single noisy image", IEEE TIP 23(10)): a patch is weak-texture when the trace of
    its gradient covariance (eq. 6-7) is below what noise at the current model's level gives with 99 %
    probability (eq. 12-13), and selection and fit alternate until the selection settles. Texture, the
    failure of one-figure estimators such as Immerkaer 1996 on detailed photos, thus never enters the
    fit, and the read/shot split comes from the spread of levels.

    Runs per CFA colour on the raw sub-images (no demosaicking, so no interpolation correlates the
    noise), on at most ``max_patches`` randomly placed 6x6 patches per colour: the cost does not grow
    with the image (about 0.1 s per file).
    """
    rng = np.random.default_rng(seed)
    planes = _planes(raw)
    ncol = max(c for c, _, _ in planes) + 1
    span = float(raw.meta.white_level)
    per_colour: dict[int, list[np.ndarray]] = {}
    counts = {c: sum(1 for cc, _, _ in planes if cc == c) for c in range(ncol)}
    for c, plane, black in planes:
        p = _sample_patches(plane, max(64, max_patches // counts[c]), rng)
        b = float(np.mean(black))
        per_colour.setdefault(c, []).append((p - b) / max(span - b, 1.0))
    shot, read = [], []
    for c in range(ncol):
        ab = _estimate_channel(np.concatenate(per_colour.get(c, [np.empty((0, PATCH, PATCH))])))
        shot.append(np.nan if ab is None else ab[0])
        read.append(np.nan if ab is None else ab[1])
    # A colour with too few usable patches (a tiny or saturated image) borrows the others' mean;
    # where no colour has enough, Immerkaer's one-figure estimate of the first plane stands in as
    # read noise (it reads texture as noise, but on so few samples nothing better is known).
    fine = [c for c in range(ncol) if np.isfinite(shot[c])]
    if not fine and planes:
        c0, plane, black = planes[0]
        b = float(np.mean(black))
        sig = immerkaer_sigma((plane.astype(np.float32) - b) / max(span - b, 1.0))
        shot, read, fine = [0.0] * ncol, [sig * sig] * ncol, list(range(ncol))
    for c in range(ncol):
        if not np.isfinite(shot[c]):
            shot[c] = float(np.mean([shot[k] for k in fine])) if fine else 0.0
            read[c] = float(np.mean([read[k] for k in fine])) if fine else 0.0
    return NoiseModel(tuple(float(v) for v in shot), tuple(float(v) for v in read), "estimate")


def choose_noise_model(raw: RawImage, noise: float | None = None) -> NoiseModel:
    """The model to develop ``raw`` with: ``noise`` (``--noise``: a read-noise sigma on normalised
    linear data, the same for every colour) if given, else the DNG NoiseProfile (var = S x + O), else
    :func:`estimate_noise_model`."""
    n = max(3, int(raw.meta.num_colors))
    if noise is not None:
        return NoiseModel((0.0,) * n, (float(noise) ** 2,) * n, "--noise")
    if raw.meta.noise_profile is not None:
        s, o = raw.meta.noise_profile
        return NoiseModel((max(float(s), 0.0),) * n, (max(float(o), 0.0),) * n, "profile")
    return estimate_noise_model(raw)


# --------------------------------------------------------------------------------------------------
# What the back-ends are told


def noise_map(mosaic_wb: np.ndarray, colors: np.ndarray, model_wb: NoiseModel, *, encoded: bool) -> np.ndarray:
    """Per-pixel noise std of a white-balanced mosaic, from ``model_wb`` (already white-balanced,
    :meth:`NoiseModel.white_balanced`) evaluated at each sample's own level and colour; with
    ``encoded`` carried through the sRGB curve's slope there (first order), i.e. in the domain of a
    back-end that takes sRGB-encoded input. Same dtype as ``mosaic_wb``."""
    x = np.maximum(np.asarray(mosaic_wb), 0)
    col = np.asarray(colors, dtype=np.intp)
    shot = np.asarray(model_wb.shot, dtype=x.dtype)[col]
    read = np.asarray(model_wb.read, dtype=x.dtype)[col]
    std = np.sqrt(np.maximum(shot * x + read, 0))
    if encoded:
        std = std * np.asarray(srgb_slope(x), dtype=x.dtype)
    return std


def backend_sigma(raw: RawImage, model: NoiseModel, gains: tuple[float, ...], *, encoded: bool,
                  step: int = 4) -> float:
    """The one figure a scalar-noise network (jdd-noise, Gharbi et al. 2016 Sec. 4) is told: the
    root-mean-square over the image of the white-balanced model's per-pixel std (:func:`noise_map`),
    sRGB-encoded when the network works there (``encoded``).

    That RMS is how the network's training noise level is defined
    (``rawdev.train.synthesis.srgb_equivalent_noise``), so the figure means to it what it meant in
    training; the figure at 18 % grey under-states the dark regions' noise, which the sRGB curve
    amplifies. Evaluated on every ``step``-th cell of each CFA position (a mean of squares).
    """
    if model.source == "--noise":  # the user's figure is already in the back-end's domain
        return float(np.sqrt(model.read[min(1, len(model.read) - 1)]))
    wb = model.white_balanced(gains)
    acc, n = 0.0, 0
    for c, plane, black in _planes(raw):
        b = float(np.mean(black))
        sub = plane[::step, ::step].astype(np.float32)
        x = (sub - b) / max(float(raw.meta.white_level) - b, 1.0) * float(gains[min(c, len(gains) - 1)])
        m = noise_map(np.minimum(x, 1.0), np.full(x.shape, c), wb, encoded=encoded)
        acc += float(np.square(m, dtype=np.float64).sum())
        n += m.size
    return float(np.sqrt(acc / n)) if n else 0.0


def immerkaer_sigma(plane: np.ndarray) -> float:
    """Gaussian noise sigma of a 2-D ``plane`` (Immerkaer 1996, "Fast noise variance estimation",
    CVIU 64(2), eq. 3): the mean absolute response to the mask ``N = [1 -2 1]^T [1 -2 1]`` (the
    difference of two Laplacians, which cancels locally linear structure), times ``sqrt(pi / 2) / 6``.
    The mask is separable, so the response is a second difference along each axis. Kept as the
    one-figure peer the estimator is measured against."""
    p = np.asarray(plane, dtype=np.float32)
    h, w = p.shape
    if h < 3 or w < 3:
        return 0.0
    r = np.diff(np.diff(p, n=2, axis=0), n=2, axis=1)
    return float(np.sqrt(np.pi / 2) * np.abs(r).sum(dtype=np.float64) / (6.0 * (w - 2) * (h - 2)))
