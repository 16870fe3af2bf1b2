"""Classical Bayer demosaicking: ``demosaic(mosaic, pattern, method)``.

One file per method, named author+year; :class:`DemosaicMethod` names them the same way (the
back-ends built on them, and their names, are the registry's: :mod:`rawdev.backends.specs`). Every
method takes a ``(*, 1, H, W)`` float mosaic and a Bayer pattern string for *that* tensor, and
returns ``(*, 3, H, W)`` in the same units. No clipping.
"""

from __future__ import annotations

import importlib
from enum import Enum, auto
from typing import TYPE_CHECKING

from ...cfa import check_pattern
from ...errors import UnknownBackendError, UsageError

if TYPE_CHECKING:
    import torch

__all__ = ["demosaic", "DemosaicMethod"]


class DemosaicMethod(Enum):
    """The classical methods, by their file (author + year; bilinear is the field's baseline)."""

    BILINEAR = auto()
    MALVAR2004 = auto()
    MENON2007 = auto()

    @property
    def function(self):
        """``demosaic_<file>`` of the method's module, imported on first use (bilinear and Malvar
        import torch; Menon runs on numpy arrays without it)."""
        module = self.name.lower()
        return getattr(importlib.import_module(f".{module}", __name__), f"demosaic_{module}")


def demosaic(mosaic: torch.Tensor, pattern: str, method: DemosaicMethod = DemosaicMethod.MALVAR2004) -> torch.Tensor:
    """Demosaic a ``(*, 1, H, W)`` (or ``(H, W)``) Bayer mosaic with a classical method.

    Returns ``(*, 3, H, W)`` (``(3, H, W)`` for a 2-D input), linear, unclipped.
    """
    import torch

    pattern = check_pattern(pattern)
    if not isinstance(method, DemosaicMethod):
        raise UnknownBackendError(
            f"unknown demosaic method {method!r}; known: {', '.join(m.name for m in DemosaicMethod)}"
        )
    fn = method.function
    if not torch.is_tensor(mosaic):
        mosaic = torch.as_tensor(mosaic)
    if not mosaic.is_floating_point():
        raise UsageError(f"demosaic expects a float mosaic, got {mosaic.dtype}")
    squeeze = mosaic.dim() == 2
    if squeeze:
        mosaic = mosaic[None]
    if mosaic.dim() < 3 or mosaic.shape[-3] != 1:
        raise UsageError(f"demosaic expects (*, 1, H, W) or (H, W), got {tuple(mosaic.shape)}")
    if mosaic.shape[-2] < 2 or mosaic.shape[-1] < 2:
        raise UsageError(f"mosaic too small to demosaic: {tuple(mosaic.shape)}")
    out = fn(mosaic, pattern)
    return out
