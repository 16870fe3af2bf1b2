"""The developer's settings, :class:`PipelineConfig`: a plain frozen dataclass, importable without torch
(the CLI builds and checks it before the pipeline, and torch, are imported)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .backends.registry import DEFAULT_BACKEND
from .errors import UsageError

__all__ = ["PipelineConfig", "parse_box"]


@dataclass(frozen=True)
class PipelineConfig:
    """Every choice the developer makes. Defaults give a neutral render comparable with LibRaw's
    ``postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True)``."""

    backend: str = DEFAULT_BACKEND
    wb: str | tuple[float, ...] = "camera"
    highlights: str = "clip"
    exposure_ev: float = 0.0
    auto_bright: bool = False
    curve: Literal["srgb", "linear"] = "srgb"
    colorspace: str = "srgb"  # output space (rawdev.stages.output_space); its own curve when curve="srgb"
    look: str = "neutral"  # "neutral", "camera" (fitted to the embedded preview) or a look file (JSON)
    lens: str = "off"  # "off", "auto" (lensfun, from the file's camera and lens) or a lens's "Maker Model"
    apply_orientation: bool = True
    # an EXIF orientation (1..8) to turn the output by instead of the file's tag (a wrong or missing
    # tag); None: the file's
    orientation: int | None = None
    # one pixel per CFA block, nothing demosaicked (dcraw -h): 2x2 Bayer cells, 3x3 X-Trans blocks
    half_size: bool = False
    # fit the output within (width, height) pixels, proportions kept, never enlarged (--size);
    # None: the developed size
    size: tuple[int, int] | None = None
    # keep this part of the picture only (--crop): x, y, width, height in pixels of the upright,
    # full-size picture (as develop writes it without --half-size or --size); None: all of it
    crop: tuple[int, int, int, int] | None = None
    # 8 -> uint8, 16 -> uint16, 32 -> float32 kept above white (1.0), None -> float32 in [0, 1]
    output_bits: int | None = 8
    device: str = "auto"
    tile: int | None = None  # learned back-ends: tile side in pixels; None = the back-end default
    noise: float | None = None  # noise sigma for noise-aware back-ends, in their input domain
    # "auto": classical back-ends on the sRGB-encoded mosaic reduce noise when the file's noise model
    # says it shows (rawdev.stages.denoise); "off": never
    denoise: Literal["auto", "off"] = "auto"
    band_rows: int = 256
    allow_black: bool = False  # develop a mosaic or picture with no content (a real black frame)

    def orientation_for(self, tagged: int) -> int:
        """The EXIF orientation the output is turned by, for a file tagged ``tagged``: ``orientation``
        when set, else the tag, or 1 (as stored) without ``apply_orientation``."""
        if self.orientation is not None:
            return self.orientation
        return tagged if self.apply_orientation else 1


def parse_box(text: str, option: str, *, prefix: str = "") -> tuple[int, int, int, int]:
    """``X,Y,W,H`` -> ``(x, y, w, h)``: a part of the picture by its left, top, width and height in
    pixels (``--crop``, ``--wb area:``), whole numbers, the width and height at least 1.

    Raises:
        UsageError: anything else, naming ``option`` and its value (``prefix`` + ``text``).
    """
    try:
        x, y, w, h = (int(v) for v in str(text).split(","))
    except ValueError:
        x = y = w = h = -1
    if min(x, y) < 0 or min(w, h) < 1:
        raise UsageError(f"{option} {prefix + str(text)!r}: give {prefix}X,Y,W,H, the left, top, width and height "
                         "in pixels of the upright picture (whole numbers; width and height at least 1)")
    return x, y, w, h
