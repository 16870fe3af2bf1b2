"""Registrations of the classical demosaickers (no weights, exact under tiling)."""

from __future__ import annotations

import functools

from ..stages.demosaic import demosaic
from .registry import BackendSpec, register

__all__: list[str] = []


def _build_classical(method: str, **_: object):
    """A runner ``fn(mosaic (N,1,H,W), pattern, noise=None, region=None) -> (N,3,H,W)``; noise is
    ignored; ``region`` ``(top, bottom, left, right)`` crops the result (the rest is context)."""

    def run(mosaic, pattern, noise=None, region=None):
        rgb = demosaic(mosaic, pattern, method)
        if region is None:
            return rgb
        y0, y1, x0, x1 = region
        return rgb[..., y0:y1, x0:x1]

    return run


register(BackendSpec(
    name="bilinear",
    kind="classical",
    description="Bilinear interpolation of each colour plane (the field's baseline).",
    margin=2,
    build=functools.partial(_build_classical, "bilinear"),
    reference="bilinear",
))
register(BackendSpec(
    name="malvar",
    kind="classical",
    description="Malvar, He & Cutler 2004: gradient-corrected linear 5x5 filters. Default.",
    margin=4,
    build=functools.partial(_build_classical, "malvar"),
    reference="Malvar2004",
))
register(BackendSpec(
    name="menon",
    kind="classical",
    description="Menon, Andriani & Calvagno 2007 (DDFAPD): directional filtering with a posteriori decision.",
    margin=16,
    build=functools.partial(_build_classical, "menon"),
    reference="Menon2007",
))


# The same demosaickers run on the sRGB-encoded mosaic (the pipeline encodes before, decodes after).
# Colour-difference interpolation assumes R - G and B - G vary slowly; under shading a surface keeps
# its channel *ratios*, which a log-like encoding turns into differences. Measured on the round-trip
# DNGs (docs/benchmarks.md), clean: Menon +4.1 / +3.0 dB and Malvar +2.7 / +2.9 dB (Kodak24 / McMaster)
# over linear light.
for _name, _margin, _ref in (("malvar", 4, "Malvar2004"), ("menon", 16, "Menon2007")):
    register(BackendSpec(
        name=f"{_name}-srgb",
        kind="classical",
        description=f"{_name} on the sRGB-encoded mosaic (colour differences of encoded values).",
        margin=_margin,
        input_domain="mosaic_srgb_wb",
        build=functools.partial(_build_classical, _name),
        reference=_ref,
    ))
