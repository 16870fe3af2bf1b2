"""The DNG opcodes rawdev applies to the mosaic: GainMap in OpcodeList2 (lens shading).

Phones (Google's Pixel camera app and others), drones and some converters store the lens's shading
(the fall-off of light towards the corners, different for each colour) as GainMap opcodes in the raw
IFD's OpcodeList2 (DNG specification 1.4, chapter 7, "Opcode List Processing"; opcode 9): a grid of
gains per CFA plane that the reader multiplies into the linearised samples. LibRaw does not apply
them, so without them such files develop with dark, tinted corners (darktable, RawTherapee and ART
apply them). rawdev applies no other opcode (bad-pixel lists, warps, vignette polynomials); LibRaw's
decoder applies some itself (the MapPolynomial that linearises a lossy DNG's 8-bit samples: the Canon
6D file's raw values come out linear), so ``rawdev info`` lists them without saying they were lost.

Layout (big-endian): a count, then per opcode its ID, the DNG version it needs, flags (bit 0:
optional) and its parameters' byte count, then the parameters. GainMap's are the area (Top, Left,
Bottom, Right, Plane, Planes, RowPitch, ColPitch: uint32), the map (MapPointsV, MapPointsH: uint32;
MapSpacingV, MapSpacingH, MapOriginV, MapOriginH: float64, in coordinates relative to the image, 0 at
its top or left edge and 1 at the far one; MapPlanes: uint32) and its gains (float32, row by row,
point by point, plane by plane).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["GainMap", "OPCODE_NAMES", "parse_opcode_list"]

GAIN_MAP = 9
#: DNG 1.4 opcode IDs, for notices about the ones rawdev does not apply.
OPCODE_NAMES = {1: "WarpRectilinear", 2: "WarpFisheye", 3: "FixVignetteRadial", 4: "FixBadPixelsConstant",
                5: "FixBadPixelsList", 6: "TrimBounds", 7: "MapTable", 8: "MapPolynomial", 9: "GainMap",
                10: "DeltaPerRow", 11: "DeltaPerColumn", 12: "ScalePerRow", 13: "ScalePerColumn"}


@dataclass(frozen=True)
class GainMap:
    """One GainMap opcode: the area of the image it applies to (rows ``top:bottom`` every
    ``row_pitch``, columns ``left:right`` every ``col_pitch``, planes from ``plane``) and its
    ``gains``, ``(points_v, points_h, map_planes)`` float32, at relative positions ``origin +
    index * spacing`` (v, h)."""

    top: int
    left: int
    bottom: int
    right: int
    plane: int
    planes: int
    row_pitch: int
    col_pitch: int
    spacing: tuple[float, float]
    origin: tuple[float, float]
    gains: np.ndarray


def parse_opcode_list(data: bytes) -> tuple[tuple[GainMap, ...], tuple[str, ...]]:
    """The GainMaps of an opcode list, and the names of its other opcodes (which rawdev does not apply).

    Raises:
        ValueError: a list that is cut short or whose sizes do not add up.
    """
    if len(data) < 4:
        raise ValueError("opcode list shorter than its count")
    (count,) = struct.unpack_from(">I", data, 0)
    pos, maps, skipped = 4, [], []
    for _ in range(count):
        if pos + 16 > len(data):
            raise ValueError("opcode list cut short")
        op, _version, _flags, size = struct.unpack_from(">IIII", data, pos)
        pos += 16
        if pos + size > len(data):
            raise ValueError(f"opcode {op} runs past the end of the list")
        if op == GAIN_MAP:
            maps.append(_gain_map(data[pos : pos + size]))
        else:
            skipped.append(OPCODE_NAMES.get(op, f"opcode {op}"))
        pos += size
    return tuple(maps), tuple(skipped)


def _gain_map(p: bytes) -> GainMap:
    if len(p) < 76:
        raise ValueError("GainMap parameters cut short")
    top, left, bottom, right, plane, planes, row_pitch, col_pitch, pv, ph = struct.unpack_from(">10I", p, 0)
    sv, sh, ov, oh = struct.unpack_from(">4d", p, 40)
    (map_planes,) = struct.unpack_from(">I", p, 72)
    n = pv * ph * map_planes
    if pv < 1 or ph < 1 or map_planes < 1 or len(p) != 76 + 4 * n or row_pitch < 1 or col_pitch < 1:
        raise ValueError("GainMap sizes do not add up")
    gains = np.frombuffer(p, ">f4", count=n, offset=76).astype(np.float32).reshape(pv, ph, map_planes)
    # One point along an axis: that axis is constant (the DNG SDK sets spacing 1 and origin 0 there).
    sv, ov = (1.0, 0.0) if pv == 1 else (sv, ov)
    sh, oh = (1.0, 0.0) if ph == 1 else (sh, oh)
    if sv <= 0 or sh <= 0 or not np.all(np.isfinite(gains)):
        raise ValueError("GainMap spacing or gains out of range")
    return GainMap(top, left, bottom, right, plane, planes, row_pitch, col_pitch, (sv, sh), (ov, oh), gains)
