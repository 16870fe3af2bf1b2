"""Registrations of the classical demosaickers (no weights, exact under tiling)."""

from __future__ import annotations

import functools

from ..stages.demosaic import demosaic
from .registry import BackendSpec, register

__all__: list[str] = []


def _build_classical(method: str, **_: object):
    """A runner ``fn(mosaic (N,1,H,W), pattern, noise=None) -> (N,3,H,W)``; noise is ignored."""

    def run(mosaic, pattern, noise=None):
        return demosaic(mosaic, pattern, method)

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
