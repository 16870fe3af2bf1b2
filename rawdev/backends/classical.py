"""The classical demosaickers' runner (no weights, exact under tiling); their specs are in :mod:`.specs`."""

from __future__ import annotations

from ..stages.demosaic import demosaic
from ..types import CFALayout

__all__: list[str] = []


def _build_classical(method: str, **_: object):
    """A runner ``fn(mosaic (N,1,H,W), cfa, noise=None, region=None) -> (N,3,H,W)``; ``cfa`` a
    Bayer :class:`~rawdev.types.CFALayout` (or its pattern string); noise is ignored; ``region``
    ``(top, bottom, left, right)`` crops the result (the rest is context)."""

    def run(mosaic, pattern, noise=None, region=None):
        if isinstance(pattern, CFALayout):
            pattern = pattern.bayer_pattern or "?"  # not Bayer: demosaic's own error names it
        rgb = demosaic(mosaic, pattern, method)
        if region is None:
            return rgb
        y0, y1, x0, x1 = region
        return rgb[..., y0:y1, x0:x1]

    return run
