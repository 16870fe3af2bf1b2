"""rawdev: a RAW photo developer with classical and learned back-ends.

    >>> import rawdev
    >>> img = rawdev.develop("photo.dng").image          # (H, W, 3) uint8 sRGB
    >>> rgb = rawdev.demosaic(cfa, "RGGB", "malvar")    # (H, W) float -> (H, W, 3)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "develop", "demosaic", "PipelineConfig", "read_raw"]


def __getattr__(name: str):
    # Lazy: `import rawdev` stays cheap (no torch/rawpy) for the CLI's --help and --version.
    if name in ("develop", "PipelineConfig"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "read_raw":
        from .io.raw import read_raw

        return read_raw
    if name == "demosaic":
        from .api import demosaic

        return demosaic
    raise AttributeError(f"module 'rawdev' has no attribute {name!r}")
