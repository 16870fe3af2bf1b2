"""Shared types: CFA patterns and layouts, camera metadata, the decoded RAW image.

Conventions (all stages follow them):

* Tensors are channel-first with any number of leading batch dimensions: a mosaic is ``(*, 1, H, W)``,
  an image ``(*, 3, H, W)``. Stages compute in float32 (float64 is accepted for tests).
* Values are linear and normalised: black subtracted, divided by ``white - black``, so the sensor clip
  point is 1.0. Stages never clip; only the output encoder clips and quantises.
* A Bayer pattern is read in raster order from the top-left pixel *of the array being passed*
  ("RGGB" means R at (0, 0), G at (0, 1), G at (1, 0), B at (1, 1)); LibRaw's spelling.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "BayerPattern",
    "BAYER_PATTERNS",
    "CellMap",
    "CFALayout",
    "ExifInfo",
    "DngWhite",
    "RawMetadata",
    "RawImage",
]

BayerPattern = Literal["RGGB", "BGGR", "GRBG", "GBRG"]
BAYER_PATTERNS: tuple[BayerPattern, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")


@dataclass(frozen=True)
class CFALayout:
    """A colour filter array: the repeating cell of colour indices (0=R, 1=G, 2=B for RGB sensors).

    ``kind`` is "bayer" (2x2 RGB), "xtrans" (6x6 RGB), "other" (e.g. 4-colour CMYG) or "linear"
    (already demosaiced data, no CFA).
    """

    kind: Literal["bayer", "xtrans", "other", "linear"]
    cell: np.ndarray | None  # (p, p) int colour indices, top-left of the visible area
    color_desc: str = "RGBG"

    @property
    def period(self) -> int:
        return 1 if self.cell is None else int(self.cell.shape[0])

    @classmethod
    def of(cls, pattern) -> "CFALayout":
        """The one classification of a CFA description: a :class:`CFALayout` (returned as is), a
        Bayer pattern string ("RGGB", any case), or a ``(2, 2)`` / ``(6, 6)`` integer cell of colour
        indices for the array's top-left pixel.

        Raises:
            UsageError: none of those (an X-Trans cell must hold all three colours).
        """
        from .errors import UsageError

        if isinstance(pattern, CFALayout):
            return pattern
        if isinstance(pattern, str):
            p = pattern.upper()
            if p not in BAYER_PATTERNS:
                raise UsageError(f"unknown Bayer pattern {pattern!r}; expected one of {', '.join(BAYER_PATTERNS)}")
            return cls("bayer", np.array([["RGB".index(c) for c in p[:2]], ["RGB".index(c) for c in p[2:]]]))
        cell = np.asarray(pattern)
        if cell.shape in ((2, 2), (6, 6)) and np.issubdtype(cell.dtype, np.integer) and set(np.unique(cell)) <= {0, 1, 2}:
            if cell.shape == (2, 2):
                return cls.of("".join("RGB"[int(c)] for c in cell.ravel()))
            if len(set(np.unique(cell))) != 3:
                raise UsageError("an X-Trans cell must contain the colours 0 (R), 1 (G) and 2 (B)")
            return cls("xtrans", cell.astype(np.int64))
        raise UsageError(
            f"pattern must be a Bayer string, a (2, 2) or a (6, 6) integer colour-index cell; got {pattern!r}"
        )

    def shifted(self, top: int, left: int) -> "CFALayout":
        """The layout of ``array[top:, left:]`` (negative offsets: of the array extended by a
        phase-preserving mirror, as the tiler's windows are): the cell rolled by the offset."""
        if self.cell is None:
            return self
        p = self.period
        return CFALayout(self.kind, np.roll(self.cell, (-(top % p), -(left % p)), axis=(0, 1)), self.color_desc)

    def describe(self):
        """The form the demosaickers take: the Bayer pattern string, or the cell itself."""
        return self.bayer_pattern if self.kind == "bayer" else self.cell

    @property
    def bayer_pattern(self) -> BayerPattern | None:
        if self.kind != "bayer" or self.cell is None:
            return None
        return "".join("RGB"[int(c)] for c in self.cell.ravel())  # type: ignore[return-value]


@dataclass(frozen=True)
class ExifInfo:
    """The EXIF fields a photographer cares about; ``None`` where the file does not say."""

    make: str | None = None
    model: str | None = None
    lens: str | None = None
    exposure_time_s: float | None = None
    f_number: float | None = None
    iso: float | None = None
    focal_length_mm: float | None = None
    datetime_original: _dt.datetime | None = None
    artist: str | None = None
    software: str | None = None


@dataclass(frozen=True)
class DngWhite:
    """A DNG's as-shot white given as a chromaticity (AsShotWhiteXY, CIE 1931 ``xy``) instead of as
    a camera neutral, with what maps it to camera RGB: each ColorMatrixN (XYZ -> camera, 3x3 row by
    row) and its CalibrationIlluminantN (an EXIF LightSource code; 0 when the file gives none)."""

    xy: tuple[float, float]
    matrices: tuple[tuple[tuple[float, ...], int], ...]


@dataclass(frozen=True)
class RawMetadata:
    """What the decoder tells us about a RAW file, in linear normalised terms.

    ``black_level`` is per CFA colour index (length 4, LibRaw order), in raw counts.
    ``camera_wb`` / ``daylight_wb`` are multipliers per colour (R, G, B[, G2]); ``None`` when the file
    stores none (``camera_wb`` from AsShotWhiteXY where LibRaw finds no multipliers: ``white_xy``). ``rgb_cam`` is the 3x3 matrix from white-balanced camera RGB to linear sRGB (D65), rows
    summing to 1, or ``None`` when the file has no colour data. ``orientation`` is the EXIF value 1..8.
    """

    path: str
    cfa: CFALayout
    width: int
    height: int
    black_level: tuple[float, ...]
    white_level: float
    camera_wb: tuple[float, ...] | None
    daylight_wb: tuple[float, ...] | None
    rgb_cam: np.ndarray | None
    orientation: int
    exif: ExifInfo = field(default_factory=ExifInfo)
    noise_profile: tuple[float, float] | None = None  # DNG NoiseProfile (scale, offset) on [0, 1] data
    num_colors: int = 3
    # the DNG's AsShotWhiteXY, where ``camera_wb`` comes from it (LibRaw does not read the tag, so a
    # LibRaw render is given those multipliers rather than told to use the camera's)
    white_xy: DngWhite | None = None
    # lens shading from the DNG's OpcodeList2 (rawdev.io.dng_opcodes.GainMap), applied to the mosaic,
    # and the names of the list's opcodes that rawdev does not apply
    gain_maps: tuple = ()
    opcodes_skipped: tuple[str, ...] = ()


class CellMap:
    """A per-pixel map that repeats one small cell: ``map[y, x] = cell[y % p, x % q]``.

    Indexes like an ``(H, W)`` array (slices, integers, steps), building only the part asked for,
    so a CFA colour map or black-level map costs its cell, not a byte or four per pixel (about
    240 MB of a 48 MP file's developer, before this). ``np.asarray(map)`` builds all of it.
    """

    def __init__(self, cell: np.ndarray, shape: tuple[int, int]) -> None:
        self.cell = np.asarray(cell)
        if self.cell.ndim != 2 or 0 in self.cell.shape:
            raise ValueError(f"a CellMap's cell must be a non-empty 2-D array, got shape {self.cell.shape}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = self.cell.dtype
        self.ndim = 2

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 2 or any(k is Ellipsis or k is None for k in key):
            raise IndexError("a CellMap takes at most a row and a column index (integers or slices)")
        ky, kx = key if len(key) == 2 else (key[0], slice(None))
        ys = np.arange(self.shape[0])[ky] % self.cell.shape[0]
        xs = np.arange(self.shape[1])[kx] % self.cell.shape[1]
        return self.cell[np.ix_(np.atleast_1d(ys), np.atleast_1d(xs))].reshape(np.shape(ys) + np.shape(xs))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"CellMap(cell={self.cell.tolist()}, shape={self.shape})"


@dataclass
class RawImage:
    """A decoded RAW: the visible sensor data and its metadata.

    ``data`` is ``(H, W)`` raw counts for CFA sensors, or ``(H, W, C)`` for linear DNGs.
    ``colors`` is the ``(H, W)`` per-pixel colour index (R, G, B = 0, 1, 2) of CFA sensors, or
    ``None``; ``black_map`` the black level of each pixel, or ``None``. Both index like arrays and
    are usually a :class:`CellMap` of the CFA's period (LibRaw's colour map and per-channel black
    levels repeat with it).
    """

    data: np.ndarray
    colors: np.ndarray | CellMap | None
    meta: RawMetadata
    black_map: np.ndarray | CellMap | None = None

    @property
    def rendered_by_libraw(self) -> bool:
        """LibRaw renders this file itself (a linear DNG, or a CFA rawdev's back-ends cannot take,
        such as a 4-colour one): there is no RGB colour map to demosaic."""
        return self.meta.cfa.kind == "linear" or self.colors is None
