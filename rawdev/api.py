"""Array-in, array-out helpers for other programs (the package's public functions re-export these)."""

from __future__ import annotations

import numpy as np
import torch

from .backends import registry
from .errors import UsageError
from .cfa import check_pattern

__all__ = ["demosaic"]


def demosaic(cfa, pattern: str, method: str = registry.DEFAULT_BACKEND, *, device: str = "cpu", noise: float | None = None):
    """Demosaic an ``(H, W)`` float mosaic (NumPy or torch) with any registered back-end.

    Returns ``(H, W, 3)`` of the same kind (NumPy in, NumPy out), in the input's units. Learned
    back-ends expect what they were trained on (``jdd``: white-balanced sRGB-encoded [0, 1] values).
    """
    pattern = check_pattern(pattern)
    is_numpy = not torch.is_tensor(cfa)
    t = torch.as_tensor(np.asarray(cfa)) if is_numpy else cfa
    if t.dim() != 2:
        raise ValueError(f"demosaic expects an (H, W) mosaic, got shape {tuple(t.shape)}")
    dtype = t.dtype if t.is_floating_point() else torch.float32
    spec = registry.get(method)
    if tuple(spec.replaces) != ("demosaic",):
        raise UsageError(f"back-end {method!r} is an end-to-end ISP (it needs the colour matrix): use rawdev.develop")
    run = spec.build(device=device)
    nz = None if noise is None else torch.tensor([float(noise)])
    with torch.inference_mode():
        out = run(t.to(dtype)[None, None], pattern, noise=nz)[0].permute(1, 2, 0)
    return out.cpu().numpy() if is_numpy else out
