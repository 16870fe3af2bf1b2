"""The classical demosaickers' core (no weights, exact under tiling); their specs are in :mod:`.specs`."""

from __future__ import annotations

from ..stages.demosaic import DemosaicMethod
from ..types import CFALayout
from .registry import get
from .runner import ARRAYS, Runner, execution

__all__: list[str] = []


def _build_classical(name: str, method: str, *, device=None, **_: object) -> Runner:
    """Back-end ``name``: the :class:`~rawdev.stages.demosaic.DemosaicMethod` called ``method``, on whole
    arrays (untiled: the pipeline's bands give it real context, and its own border handling stays the
    method's); device options do not apply, it computes on the CPU. A spec with ``arrays="numpy"``
    runs the method's numpy executor (float32, no torch); the others run torch in the input's dtype."""
    spec = get(name)
    fn = DemosaicMethod[method]
    if spec.arrays == "numpy":
        demosaic_array = fn.function

        def core(mosaic, layout: CFALayout, noise=None):
            return demosaic_array(mosaic, layout.bayer_pattern)

        return Runner(spec, core, ARRAYS)

    from ..stages.demosaic import demosaic

    def core(mosaic, layout: CFALayout, noise=None):
        return demosaic(mosaic, layout.bayer_pattern, fn)

    return Runner(spec, core, execution("cpu", tiled=False))
