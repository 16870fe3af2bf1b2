"""The camera's look, fitted to the file's own embedded preview.

Almost every RAW carries the camera's rendering of the same frame as a preview. :func:`fit_look`
fits the map from rawdev's neutral render (display sRGB) to that preview as

1. a global tone curve ``T`` (33 knots, piecewise linear, monotone), shared by the three channels,
   fitted by least squares with a second-difference smoothness prior; then
2. a smooth colour transform: an affine colour matrix ``M`` (3 x 4) on ``T(x)``, which carries the
   camera's saturation and tint into colours the preview does not show, plus a residual 3D lookup
   table ``D`` (9 x 9 x 9 nodes, trilinear) fitted by least squares with a discrete Laplacian
   smoothness prior and a small pull to zero (the lattice-regression idea of Garcia & Gupta 2009,
   "Building accurate and smooth ICC profiles by lattice regression").

``look(x) = M [T(x), 1] + D(T(x))``. Robustness: the fit is iteratively reweighted (Huber weights,
Huber 1964) against JPEG artefacts, and ignores clipped pixels, the strongest edges (where a
slightly misaligned or ringing preview differs most) and any uniform border; the preview is aligned
to the render by its aspect ratio, border and a phase-correlation shift. The look is applied to the
full-resolution render (:func:`apply_look`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Look", "fit_look", "apply_look", "align_preview", "MIN_PREVIEW_SIDE"]

#: A preview whose short side is smaller than this has too few pixels to fit a look from.
MIN_PREVIEW_SIDE = 48
_KNOTS = 33
_LUT = 9


@dataclass(frozen=True)
class Look:
    """A fitted look: tone curve values at ``_KNOTS`` equally spaced inputs, and the residual
    lattice ``(n, n, n, 3)`` indexed by (R, G, B) of the tone-mapped value."""

    curve: np.ndarray
    lut: np.ndarray
    source: str = ""
    matrix: np.ndarray = field(default_factory=lambda: np.hstack([np.eye(3), np.zeros((3, 1))]))  # affine (3, 4)

    def to_json(self) -> str:
        return json.dumps({"rawdev_look": 1, "source": self.source, "tone_curve": np.round(self.curve, 6).tolist(),
                           "matrix": np.round(self.matrix, 6).tolist(),
                           "lut_size": int(self.lut.shape[0]), "lut_residual": np.round(self.lut, 6).ravel().tolist()})

    @classmethod
    def from_json(cls, text: str, path: str | Path | None = None) -> "Look":
        from ..errors import InputError

        try:
            d = json.loads(text)
            n = int(d["lut_size"])
            curve = np.asarray(d["tone_curve"], dtype=np.float64)
            lut = np.asarray(d["lut_residual"], dtype=np.float64).reshape(n, n, n, 3)
            if d.get("rawdev_look") != 1 or curve.ndim != 1 or curve.size < 2 or not np.all(np.isfinite(lut)):
                raise ValueError("not a rawdev look")
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"not a rawdev look file ({e})", path) from None
        m = np.asarray(d.get("matrix", np.hstack([np.eye(3), np.zeros((3, 1))])), dtype=np.float64)
        if m.shape != (3, 4) or not np.all(np.isfinite(m)):
            raise InputError("not a rawdev look file (matrix must be 3 x 4)", path)
        return cls(curve, lut, str(d.get("source", "")), m)

    @classmethod
    def load(cls, path: str | Path) -> "Look":
        from ..errors import InputError

        try:
            return cls.from_json(Path(path).read_text(), path)
        except OSError as e:
            raise InputError(f"cannot read the look file: {e.strerror or e}", path) from None


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average ``(H, W, 3)`` floats to ``size = (w, h)`` (Pillow's box filter, per channel)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32), "F")
                                .resize(size, Image.BOX)) for c in range(3)], axis=-1).astype(np.float64)


def _content_box(preview: np.ndarray, tol: float = 2.0) -> tuple[int, int, int, int]:
    """Rows and columns ``(top, bottom, left, right)`` inside a uniform dark or light border
    (letterboxing): edge lines of one colour, near black or white, the same as the outermost one."""
    g = preview.astype(np.float64).mean(axis=2)

    def border(line: np.ndarray, edge: float) -> bool:
        m = line.mean()
        return line.std() < tol and abs(m - edge) < tol and (m < 24 or m > 232)

    t, b, l, r = 0, g.shape[0], 0, g.shape[1]
    while b - t > 8 and border(g[t, l:r], g[0].mean()):
        t += 1
    while b - t > 8 and border(g[b - 1, l:r], g[-1].mean()):
        b -= 1
    while r - l > 8 and border(g[t:b, l], g[:, 0].mean()):
        l += 1
    while r - l > 8 and border(g[t:b, r - 1], g[:, -1].mean()):
        r -= 1
    return t, b, l, r


def _shift(a: np.ndarray, b: np.ndarray, limit: int = 6) -> tuple[int, int]:
    """The integer ``(dy, dx)`` with ``b[y, x] ~ a[y - dy, x - dx]`` (phase correlation)."""
    fa, fb = np.fft.fft2(a - a.mean()), np.fft.fft2(b - b.mean())
    r = fb * np.conj(fa)
    corr = np.fft.ifft2(r / (np.abs(r) + 1e-9)).real
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    dy = dy - corr.shape[0] if dy > corr.shape[0] // 2 else dy
    dx = dx - corr.shape[1] if dx > corr.shape[1] // 2 else dx
    return (int(dy), int(dx)) if max(abs(dy), abs(dx)) <= limit else (0, 0)


#: Fractions of the render's height and width a preview's framing may leave out on each side
#: (cameras frame their JPEGs slightly tighter than LibRaw's visible area).
_FRAMING = (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02)


def _detail(lum: np.ndarray) -> np.ndarray:
    """Luminance minus its 5 x 5 box mean: edges, whatever the tone curve did to the levels."""
    from scipy.ndimage import uniform_filter

    d = lum - uniform_filter(lum, 5, mode="nearest")
    return (d - d.mean()) / (d.std() + 1e-9)


def _aspect_crop(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """The middle of ``img`` with the aspect ratio ``w : h``."""
    H, W = img.shape[:2]
    if W / H > w / h:
        cw = int(round(H * w / h))
        return img[:, (W - cw) // 2 : (W - cw) // 2 + cw]
    ch = int(round(W * h / w))
    return img[(H - ch) // 2 : (H - ch) // 2 + ch]


def align_preview(neutral: np.ndarray, preview: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The render reduced to the preview's content and that content, pixel for pixel:
    ``(x, y)`` as ``(h, w, 3)`` floats in [0, 1].

    The preview's uniform border is cut off; the render is centre-cropped to the content's aspect
    ratio (a 4:3 preview of a 3:2 sensor shows its middle), then the framing (up to 2 % cut from
    each side, per axis) is chosen where the two pictures' fine detail correlates best, and the
    remaining shift found by the phase correlation of the two luminances (a few pixels at most).
    """
    t, b, l, r = _content_box(preview)
    y = preview[t:b, l:r].astype(np.float64) / 255.0
    h, w = y.shape[:2]
    neutral = _aspect_crop(neutral, w, h)
    # The framing search runs on a copy at twice the preview's size: a 0.25 % step is half a
    # preview pixel on a 640-pixel preview.
    H, W = neutral.shape[:2]
    small = _resize(neutral, (min(W, 2 * w), min(H, 2 * h)))
    sh, sw_ = small.shape[:2]
    target = _detail(y.mean(axis=2))
    best, best_score = (0, 0), -np.inf
    for fy in _FRAMING:
        for fx in _FRAMING:
            a, c = int(round(sh * fy)), int(round(sw_ * fx))
            cand = _resize(small[a : sh - a, c : sw_ - c], (w, h)).mean(axis=2)
            score = float(np.mean(_detail(cand) * target))
            if score > best_score:
                best, best_score = (fy, fx), score
    a, c = int(round(H * best[0])), int(round(W * best[1]))
    x = _resize(neutral[a : H - a, c : W - c], (w, h))
    dy, dx = _shift(x.mean(axis=2), y.mean(axis=2))
    if dy or dx:
        x = np.roll(x, (dy, dx), axis=(0, 1))
        m = max(abs(dy), abs(dx))
        x, y = x[m:-m, m:-m], y[m:-m, m:-m]
    return np.clip(x, 0.0, 1.0), y


def _hat(v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolation weights of ``v`` in [0, 1] on ``n`` knots: lower index and fraction."""
    p = np.clip(v, 0.0, 1.0) * (n - 1)
    i = np.minimum(p.astype(np.int64), n - 2)
    return i, p - i


def _eval_curve(curve: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.interp(v, np.linspace(0.0, 1.0, curve.size), curve)


def _second_difference(n: int):
    import scipy.sparse as sp

    return sp.diags([np.ones(n - 2), -2 * np.ones(n - 2), np.ones(n - 2)], [0, 1, 2], shape=(n - 2, n))


def _fit_curve(x: np.ndarray, y: np.ndarray, w: np.ndarray, smooth: float = 0.02) -> np.ndarray:
    """Tone curve values at ``_KNOTS`` knots from samples ``y ~ T(x)`` (all channels pooled), with
    weights ``w``: the samples are binned (256 bins: weighted means), the curve is a non-negative
    sum of increments (monotone by construction), fitted by bounded least squares with a
    second-difference smoothness prior."""
    from scipy.optimize import lsq_linear

    nb = 256
    b = np.minimum((np.clip(x, 0, 1) * nb).astype(np.int64), nb - 1)
    cnt = np.bincount(b, weights=w, minlength=nb)
    ym = np.bincount(b, weights=w * y, minlength=nb) / np.maximum(cnt, 1e-12)
    xm = np.bincount(b, weights=w * x, minlength=nb) / np.maximum(cnt, 1e-12)
    keep = cnt > 0
    i, f = _hat(xm[keep], _KNOTS)
    H = np.zeros((int(keep.sum()), _KNOTS))
    H[np.arange(H.shape[0]), i] = 1 - f
    H[np.arange(H.shape[0]), i + 1] += f
    sw = np.sqrt(cnt[keep] / cnt.sum())
    D = _second_difference(_KNOTS).toarray() * np.sqrt(smooth)
    B = np.tril(np.ones((_KNOTS, _KNOTS)))  # c = B delta, delta >= 0 past the first knot
    # Weak anchors: black stays black and white white where the preview does not say otherwise
    # (its clipped highlights are left out of the fit).
    E = np.zeros((2, _KNOTS))
    E[0, 0] = E[1, -1] = 0.1
    A = np.vstack([H * sw[:, None], D, E]) @ B
    rhs = np.r_[ym[keep] * sw, np.zeros(D.shape[0]), 0.0, 0.1]
    lo = np.r_[0.0, np.zeros(_KNOTS - 1)]
    delta = lsq_linear(A, rhs, bounds=(lo, np.full(_KNOTS, np.inf))).x
    return np.clip(B @ delta, 0.0, 1.0)


def _trilinear(v: np.ndarray, n: int):
    """The sparse ``(N, n^3)`` matrix of trilinear weights of points ``v`` ``(N, 3)`` on the lattice."""
    import scipy.sparse as sp

    idx, frac = zip(*(_hat(v[:, c], n) for c in range(3)))
    rows, cols, vals = [], [], []
    N = v.shape[0]
    for corner in range(8):
        bits = [(corner >> k) & 1 for k in range(3)]
        wgt = np.ones(N)
        flat = np.zeros(N, dtype=np.int64)
        for c in range(3):
            wgt = wgt * (frac[c] if bits[c] else 1 - frac[c])
            flat = flat * n + idx[c] + bits[c]
        rows.append(np.arange(N))
        cols.append(flat)
        vals.append(wgt)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(N, n**3))


def _laplacian(n: int):
    """The discrete 3-D second-difference operator on an ``n^3`` lattice (one block per axis)."""
    import scipy.sparse as sp

    D, I = _second_difference(n), sp.identity(n)
    return sp.vstack([sp.kron(sp.kron(D, I), I), sp.kron(sp.kron(I, D), I), sp.kron(sp.kron(I, I), D)]).tocsr()


def _samples(x: np.ndarray, y: np.ndarray, max_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels a look is fitted on: not clipped in either image, not on the strongest edges."""
    lum = y.mean(axis=2)
    gy, gx = np.gradient(lum)
    grad = np.hypot(gx, gy)
    ok = (np.all(y > 2 / 255, axis=2) & np.all(y < 252 / 255, axis=2) & np.all(x < 0.995, axis=2)
          & np.all(x > 0.002, axis=2) & (grad <= np.quantile(grad, 0.8)))
    xs, ys = x[ok], y[ok]
    if xs.shape[0] > max_samples:
        pick = np.random.default_rng(seed).choice(xs.shape[0], max_samples, replace=False)
        xs, ys = xs[pick], ys[pick]
    return xs, ys


def fit_look(neutral: np.ndarray, preview: np.ndarray, *, source: str = "", smooth: float = 3e-4,
             max_samples: int = 200_000) -> Look:
    """Fit the look that maps ``neutral`` (the render, ``(H, W, 3)`` display sRGB in [0, 1], any size)
    to ``preview`` (``(h, w, 3)`` uint8 sRGB, same orientation).

    Raises:
        ValueError: too few usable pixels (a preview that is tiny, clipped or flat).
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spl

    x, y = align_preview(neutral, preview)
    xs, ys = _samples(x, y, max_samples)
    if xs.shape[0] < 500:
        raise ValueError(f"only {xs.shape[0]} usable preview pixels")
    # Tone curve and affine colour matrix, alternately: the curve is fitted to the preview with the
    # matrix's mixing undone (a camera's saturation otherwise bends the pooled curve), the matrix to
    # the preview given the curve. Huber reweighting (IRLS) throughout: JPEG blocks and misfits
    # count linearly.
    target = ys
    w = np.ones(xs.size)
    for _ in range(3):
        for _ in range(2):
            curve = _fit_curve(xs.ravel(), target.ravel(), w)
            res = target.ravel() - _eval_curve(curve, xs.ravel())
            w = np.minimum(1.0, 0.02 / np.maximum(np.abs(res), 1e-9))
        t = _eval_curve(curve, xs)
        ta = np.hstack([t, np.ones((t.shape[0], 1))])
        wm = np.ones(t.shape[0])
        for _ in range(2):
            sw = np.sqrt(wm)[:, None]
            M = np.linalg.lstsq(ta * sw, ys * sw, rcond=None)[0].T
            e = np.abs(ys - ta @ M.T).max(axis=1)
            wm = np.minimum(1.0, 0.02 / np.maximum(e, 1e-9))
        if abs(np.linalg.det(M[:, :3])) < 1e-3:
            break
        target = np.clip((ys - M[:, 3]) @ np.linalg.inv(M[:, :3]).T, 0.0, 1.0)
    A = _trilinear(t, _LUT)
    L = _laplacian(_LUT)
    N = A.shape[0]
    r = ys - ta @ M.T
    wp = np.ones(N)
    for _ in range(3):
        Aw = A.multiply(wp[:, None]).tocsr()
        lhs = (A.T @ Aw + smooth * N * (L.T @ L) + 1e-4 * N * sp.identity(_LUT**3) / _LUT**3).tocsc()
        solve = spl.factorized(lhs)
        lut = np.stack([solve(Aw.T @ r[:, c]) for c in range(3)], axis=-1)
        e = np.abs(r - A @ lut).max(axis=1)
        wp = np.minimum(1.0, 0.02 / np.maximum(e, 1e-9))
    return Look(curve, lut.reshape(_LUT, _LUT, _LUT, 3), source, M)


def apply_look(img: np.ndarray, look: Look, *, rows: int = 512) -> np.ndarray:
    """``look`` applied to ``img`` (``(H, W, 3)`` display sRGB in [0, 1]), band by band; float32.

    The lattice is read by torch's trilinear ``grid_sample`` (the same interpolation the fit
    assumed: corners aligned with the lattice's nodes)."""
    import torch
    import torch.nn.functional as F

    out = np.empty(img.shape, dtype=np.float32)
    # (1, 3, nR, nG, nB): grid_sample's (x, y, z) index (W, H, D) = (B, G, R).
    lut = torch.from_numpy(np.ascontiguousarray(look.lut.transpose(3, 0, 1, 2), dtype=np.float32))[None]
    m = torch.from_numpy(look.matrix.astype(np.float32))
    knots = np.linspace(0.0, 1.0, look.curve.size, dtype=np.float32)
    curve = look.curve.astype(np.float32)
    with torch.inference_mode():
        for y0 in range(0, img.shape[0], rows):
            band = img[y0 : y0 + rows]
            t = torch.from_numpy(np.interp(band, knots, curve).astype(np.float32)).reshape(-1, 3)
            grid = (t.flip(-1) * 2.0 - 1.0).reshape(1, 1, 1, -1, 3)
            res = F.grid_sample(lut, grid, mode="bilinear", padding_mode="border", align_corners=True)
            v = t @ m[:, :3].T + m[:, 3] + res.reshape(3, -1).T
            out[y0 : y0 + rows] = v.clamp_(0.0, 1.0).reshape(band.shape).numpy()
    return out
