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


def _encode_lut(bits: int, size: int = 1 << 16) -> torch.Tensor:
    x = torch.linspace(0.0, 1.0, size, dtype=torch.float64)
    return torch.round(srgb_encode(x) * ((1 << bits) - 1)).to(torch.int32)


_LUTS: dict[tuple[int, int], torch.Tensor] = {}


def quantise(linear: torch.Tensor, bits: int, curve: str = "srgb") -> torch.Tensor:
    """Linear values -> integer codes (uint8 for 8 bits, int32 holding 16-bit codes), clipping to [0, 1].

    With ``curve="srgb"`` the encoding goes through a lookup table indexed by the linear value at
    20-bit precision: the exact curve, far cheaper than a power per sample on 24 megapixels, and
    rounding (never truncating) to the output depth. ``curve="linear"`` rounds linear values.
    """
    scale = (1 << bits) - 1
    if curve == "linear":
        out = linear.clamp(0.0, 1.0).mul(scale).round_()
    else:
        size = 1 << 20
        key = (bits, size)
        if key not in _LUTS:
            _LUTS[key] = _encode_lut(bits, size)
        lut = _LUTS[key]
        idx = linear.clamp(0.0, 1.0).mul_(size - 1).round_().to(torch.int32)
        out = lut[idx]
    return out.to(torch.uint8) if bits == 8 else out.to(torch.int32)
