"""Exposure and the sRGB transfer function (IEC 61966-2-1), and quantisation for output.

rawdev encodes with the true sRGB curve (linear toe 12.92 below 0.0031308, 1.055 x^(1/2.4) - 0.055
above), not dcraw's BT.709 curve, and brightens only when asked.
"""

from __future__ import annotations

import torch

__all__ = ["exposure", "srgb_encode", "srgb_decode", "auto_bright_gain", "quantise"]


def exposure(x: torch.Tensor, ev: float) -> torch.Tensor:
    """Scale linear values by ``2**ev``, in place."""
    if ev:
        x.mul_(2.0 ** float(ev))
    return x


def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    """Linear [0, 1] -> sRGB-encoded [0, 1] (IEC 61966-2-1 eq. for the OETF). Clips to [0, 1]."""
    x = linear.clamp(0.0, 1.0)
    hi = torch.pow(x.clamp(min=0.0031308), 1.0 / 2.4).mul_(1.055).sub_(0.055)
    return torch.where(x <= 0.0031308, x * 12.92, hi)


def srgb_decode(encoded: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded [0, 1] -> linear [0, 1] (the EOTF)."""
    x = encoded.clamp(0.0, 1.0)
    hi = torch.pow((x + 0.055) / 1.055, 2.4)
    return torch.where(x <= 0.04045, x / 12.92, hi)


def srgb_encode_unclipped(linear: torch.Tensor) -> torch.Tensor:
    """The sRGB OETF extended to every real number: linear below 0, the power law above 1.

    Invertible (:func:`srgb_decode_unclipped`) and differentiable everywhere, for values that are
    not display values yet: a noisy mosaic (negative samples), unclipped highlights, a training
    output that overshoots (clipping there would stall the gradient on the pixels most wrong).
    """
    hi = 1.055 * linear.clamp_min(0.0031308).pow(1.0 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, linear * 12.92, hi)


def srgb_decode_unclipped(encoded: torch.Tensor) -> torch.Tensor:
    """The exact inverse of :func:`srgb_encode_unclipped`."""
    hi = ((encoded.clamp_min(0.04045) + 0.055) / 1.055).pow(2.4)
    return torch.where(encoded <= 0.04045, encoded / 12.92, hi)


def auto_bright_gain(linear_rgb: torch.Tensor, percentile: float = 0.99) -> float:
    """dcraw-style auto brightening: the gain that puts the ``percentile`` of max(R,G,B) at 1.0.

    Never darkens (gain >= 1) and is capped at 16x (4 EV) so a black frame is not amplified into noise.
    """
    v = linear_rgb.amax(dim=-3).reshape(-1)
    if v.numel() > 2_000_000:
        v = v[:: v.numel() // 1_000_000]
    q = float(torch.quantile(v.float(), percentile))
    if not q > 0:
        return 1.0
    return float(min(max(1.0 / q, 1.0), 16.0))


_LUTS: dict[tuple[int, str], tuple[torch.Tensor, int]] = {}


def encode_lut(bits: int, curve: str = "srgb") -> tuple[torch.Tensor, int]:
    """Encoding table of ``curve`` (``"srgb"`` or an output space's name, see
    :mod:`rawdev.stages.output_space`) and its size ``n``: entry ``i`` is the code for linear values in
    ``[i, i + 1) / (n - 1)``, so a truncating cast of ``x (n - 1)`` indexes it and the result is the
    rounded code of the interval's centre. 16-bit index for 8-bit output (the curve's steepest slope,
    12.92, moves an 8-bit code by 0.05 per step), 20-bit for 16-bit output."""
    key = (bits, curve)
    if key not in _LUTS:
        size = 1 << (16 if bits == 8 else 20)
        x = (torch.arange(size, dtype=torch.float64) + 0.5) / (size - 1)
        if curve == "srgb":
            enc = srgb_encode(x)
        else:
            from .output_space import get_space

            enc = torch.from_numpy(get_space(curve).encode(x.numpy()))
        codes = torch.round(enc * ((1 << bits) - 1))
        codes[0] = 0
        # int32 for 16-bit codes: index_select has no uint16 kernel.
        _LUTS[key] = (codes.to(torch.uint8 if bits == 8 else torch.int32), size)
    return _LUTS[key]


def quantise(scaled: torch.Tensor, bits: int, curve: str = "srgb") -> torch.Tensor:
    """Integer codes (uint8 or uint16) from linear values already multiplied by ``n - 1``, where ``n``
    is :func:`encode_lut`'s size for an encoding ``curve`` and ``2**bits`` for ``curve="linear"``.
    Clips, and overwrites ``scaled``.

    The scale is left to the caller so it can be folded into the colour matrix: with the clip, a
    truncating cast and one table lookup, encoding costs three passes over the data.
    """
    dtype = torch.uint8 if bits == 8 else torch.uint16
    if curve == "linear":
        top = (1 << bits) - 1
        return scaled.clamp_(0.0, top).add_(0.5).to(torch.int32).to(dtype)
    lut, size = encode_lut(bits, curve)
    idx = scaled.clamp_(0.0, size - 1).to(torch.int32)
    return lut.index_select(0, idx.reshape(-1)).reshape(idx.shape).to(dtype)


def quantise_scale(bits: int, curve: str = "srgb") -> float:
    """The factor :func:`quantise` expects its input to be multiplied by."""
    return float((1 << bits) - 1) if curve == "linear" else float(encode_lut(bits)[1] - 1)
