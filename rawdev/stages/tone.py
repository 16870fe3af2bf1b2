"""Exposure and the sRGB transfer function (IEC 61966-2-1), and quantisation for output.

rawdev encodes with the true sRGB curve (linear toe 12.92 below 0.0031308, 1.055 x^(1/2.4) - 0.055
above), not dcraw's BT.709 curve, and brightens only when asked.

The curves take numpy arrays or torch tensors (training differentiates through them) and return
the same kind; :func:`quantise` takes either. Nothing here imports torch unless it is handed a
tensor: a classical develop runs on numpy arrays without it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exposure", "srgb_encode", "srgb_decode", "auto_bright_gain", "quantise"]


def _where(x):
    """``where`` of the array library ``x`` belongs to (torch only when handed a tensor)."""
    if isinstance(x, np.ndarray | np.generic):
        return np.where
    import torch

    return torch.where


def exposure(x, ev: float):
    """Scale linear values by ``2**ev``, in place."""
    if ev:
        x *= 2.0 ** float(ev)
    return x


def srgb_encode(linear):
    """Linear [0, 1] -> sRGB-encoded [0, 1] (IEC 61966-2-1 eq. for the OETF). Clips to [0, 1]."""
    x = linear.clip(0.0, 1.0)
    hi = x.clip(0.0031308, None) ** (1.0 / 2.4) * 1.055 - 0.055
    return _where(x)(x <= 0.0031308, x * 12.92, hi)


def srgb_decode(encoded):
    """sRGB-encoded [0, 1] -> linear [0, 1] (the EOTF)."""
    x = encoded.clip(0.0, 1.0)
    hi = ((x + 0.055) / 1.055) ** 2.4
    return _where(x)(x <= 0.04045, x / 12.92, hi)


def srgb_encode_unclipped(linear):
    """The sRGB OETF extended to every real number: linear below 0, the power law above 1.

    Invertible (:func:`srgb_decode_unclipped`) and differentiable everywhere, for values that are
    not display values yet: a noisy mosaic (negative samples), unclipped highlights, a training
    output that overshoots (clipping there would stall the gradient on the pixels most wrong).
    """
    hi = 1.055 * linear.clip(0.0031308, None) ** (1.0 / 2.4) - 0.055
    return _where(linear)(linear <= 0.0031308, linear * 12.92, hi)


def srgb_decode_unclipped(encoded):
    """The exact inverse of :func:`srgb_encode_unclipped`. A float32 numpy array goes through
    OpenCV's vectorised, threaded power function (:func:`_decode_opencv`): 3x numpy's speed."""
    if isinstance(encoded, np.ndarray) and encoded.dtype == np.float32 and encoded.size:
        return _decode_opencv(encoded)
    hi = ((encoded.clip(0.04045, None) + 0.055) / 1.055) ** 2.4
    return _where(encoded)(encoded <= 0.04045, encoded / 12.92, hi)


def _decode_opencv(encoded: np.ndarray) -> np.ndarray:
    """:func:`srgb_decode_unclipped` of a float32 array, a new array: ``((x + 0.055) / 1.055)^2.4``
    everywhere (``cv2.pow`` takes the base's magnitude), then the linear toe copied in where
    ``x <= 0.04045``."""
    import cv2

    x = np.ascontiguousarray(encoded).reshape(1, -1)  # one row: one run over the data
    out = cv2.pow(cv2.addWeighted(x, 1.0 / 1.055, x, 0.0, 0.055 / 1.055), 2.4)
    cv2.copyTo(cv2.multiply(x, 1.0 / 12.92), cv2.compare(x, 0.04045, cv2.CMP_LE), out)
    return out.reshape(encoded.shape)


def auto_bright_gain(linear_rgb, percentile: float = 0.99) -> float:
    """dcraw-style auto brightening: the gain that puts the ``percentile`` of max(R,G,B) at 1.0.

    ``(*, 3, H, W)``, a numpy array or a CPU tensor. Never darkens (gain >= 1) and is capped at 16x
    (4 EV) so a black frame is not amplified into noise.
    """
    v = np.asarray(linear_rgb, dtype=np.float32).max(axis=-3).reshape(-1)
    if v.size > 2_000_000:
        v = v[:: v.size // 1_000_000]
    q = float(np.quantile(v, percentile))
    if not q > 0:
        return 1.0
    return float(min(max(1.0 / q, 1.0), 16.0))


_LUTS: dict[tuple[int, str], tuple[np.ndarray, int]] = {}


def encode_lut(bits: int, curve: str = "srgb") -> tuple[np.ndarray, int]:
    """Encoding table of ``curve`` (``"srgb"`` or an output space's name, see
    :mod:`rawdev.stages.output_space`) and its size ``n``: entry ``i`` is the code for linear values in
    ``[i, i + 1) / (n - 1)``, so a truncating cast of ``x (n - 1)`` indexes it and the result is the
    rounded code of the interval's centre. 16-bit index for 8-bit output (the curve's steepest slope,
    12.92, moves an 8-bit code by 0.05 per step), 20-bit for 16-bit output. uint8 or uint16 codes."""
    key = (bits, curve)
    if key not in _LUTS:
        size = 1 << (16 if bits == 8 else 20)
        x = (np.arange(size, dtype=np.float64) + 0.5) / (size - 1)
        if curve == "srgb":
            enc = srgb_encode(x)
        else:
            from .output_space import get_space

            enc = get_space(curve).encode(x)
        codes = np.round(enc * ((1 << bits) - 1))
        codes[0] = 0
        _LUTS[key] = (codes.astype(np.uint8 if bits == 8 else np.uint16), size)
    return _LUTS[key]


def quantise(scaled, bits: int, curve: str = "srgb"):
    """Integer codes (uint8 or uint16) from linear values already multiplied by ``n - 1``, where ``n``
    is :func:`encode_lut`'s size for an encoding ``curve`` and ``2**bits`` for ``curve="linear"``.
    Clips, and may overwrite ``scaled``. A numpy array (float32) or a torch tensor; returns the same kind.

    The scale is left to the caller so it can be folded into the colour matrix: with the clip, a
    truncating cast and one table lookup, encoding costs three passes over the data.
    """
    if isinstance(scaled, np.ndarray):
        return _quantise_array(scaled, bits, curve)
    import torch

    dtype = torch.uint8 if bits == 8 else torch.uint16
    if curve == "linear":
        top = (1 << bits) - 1
        return scaled.clamp_(0.0, top).add_(0.5).to(torch.int32).to(dtype)
    lut, size = encode_lut(bits, curve)
    idx = scaled.clamp_(0.0, size - 1).to(torch.int32)
    # int32 for 16-bit codes: index_select has no uint16 kernel.
    table = torch.from_numpy(lut.astype(np.uint8 if bits == 8 else np.int32))
    return table.index_select(0, idx.reshape(-1)).reshape(idx.shape).to(dtype)


def _quantise_array(scaled: np.ndarray, bits: int, curve: str) -> np.ndarray:
    """:func:`quantise` on a float32 array with OpenCV's saturating casts (one threaded pass each,
    where numpy's clip and cast take two single-threaded ones) and a numpy table lookup."""
    import cv2

    x = np.ascontiguousarray(scaled, dtype=np.float32)
    if curve == "linear":  # saturate_cast rounds to nearest and clips to the type's range
        return cv2.add(x, 0.0, dtype=cv2.CV_8U if bits == 8 else cv2.CV_16U)
    lut, size = encode_lut(bits, curve)
    # Rounding x - 0.5 is truncating x for the table's intervals (up to ties at exact integers,
    # where neighbouring entries agree).
    if size <= 1 << 16:
        idx = cv2.subtract(x, 0.5, dtype=cv2.CV_16U)  # saturates to [0, 65535] = [0, size - 1]
    else:
        idx = cv2.subtract(x, 0.5, dtype=cv2.CV_32S)
        np.clip(idx, 0, size - 1, out=idx)
    return lut[idx]


def quantise_scale(bits: int, curve: str = "srgb") -> float:
    """The factor :func:`quantise` expects its input to be multiplied by."""
    return float((1 << bits) - 1) if curve == "linear" else float(encode_lut(bits)[1] - 1)
