"""The classical demosaickers' core (no weights, exact under tiling); their specs are in :mod:`.specs`."""

from __future__ import annotations

from ..stages.demosaic import DemosaicMethod, demosaic
from ..types import CFALayout
from .registry import get
from .runner import Runner, execution

__all__: list[str] = []


def _build_classical(name: str, method: str, *, device=None, **_: object) -> Runner:
    """Back-end ``name``: the :class:`~rawdev.stages.demosaic.DemosaicMethod` called ``method``, on whole arrays (untiled: the pipeline's bands give
    it real context, and its own border handling stays the method's); device options do not apply,
    it computes on the CPU in the input's dtype."""

    fn = DemosaicMethod[method]

    def core(mosaic, layout: CFALayout, noise=None):
        return demosaic(mosaic, layout.bayer_pattern, fn)

    return Runner(get(name), core, execution("cpu", tiled=False))
