"""Output colour spaces beyond sRGB: Display P3, Adobe RGB (1998), ITU-R BT.2020 and ProPhoto RGB.

The developer works in linear sRGB (D65). For another output space the linear values are carried over
by the 3x3 matrix between the two spaces' normalised primary matrices (SMPTE RP 177-1993, eq. 1-6:
``M = NPM_out^-1 . CAT . NPM_sRGB``), with a Bradford chromatic adaptation (Lam 1985; ICC.1:2010
Annex E) for ProPhoto's D50 white, then encoded with the space's own transfer function. Both come
from colour-science's colour-space definitions; the embedded ICC profile (primaries, white point and
the same transfer function as a 4096-entry table) is built by LittleCMS through imagecodecs, so that
a colour-managed reader undoes exactly what was done.

sRGB stays on the developer's fast path (its curve is a lookup table in :mod:`rawdev.stages.tone`,
its profile from Pillow's LittleCMS binding); colour-science is imported only for the other spaces.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["OutputSpace", "SPACES", "get_space", "NAMES"]


@dataclass(frozen=True)
class OutputSpace:
    """An RGB output space: its command-line name and its name in colour-science."""

    name: str
    colour_name: str

    @property
    def is_srgb(self) -> bool:
        return self.name == "srgb"

    def matrix_from_srgb(self) -> np.ndarray:
        """``(3, 3)``: linear sRGB (D65) -> linear values of this space."""
        return _matrix_from_srgb(self.colour_name)

    def encode(self, linear: np.ndarray) -> np.ndarray:
        """Linear [0, 1] -> this space's encoded values [0, 1] (clipped)."""
        return np.clip(_definition(self.colour_name).cctf_encoding(np.clip(linear, 0.0, 1.0)), 0.0, 1.0)

    def encode_above_white(self, linear: np.ndarray) -> np.ndarray:
        """Linear values >= 0 -> encoded, the transfer function carried on above 1.0 (float outputs
        that keep highlights and exposure beyond white); negative values are clipped to 0."""
        return np.asarray(_definition(self.colour_name).cctf_encoding(np.maximum(linear, 0.0)), np.float32)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """This space's encoded values [0, 1] -> linear [0, 1]."""
        return np.clip(_definition(self.colour_name).cctf_decoding(np.clip(encoded, 0.0, 1.0)), 0.0, 1.0)

    def icc(self) -> bytes:
        """The ICC profile of this space (v4 matrix/TRC profile made by LittleCMS)."""
        return _icc(self.name)


SPACES: dict[str, OutputSpace] = {
    s.name: s
    for s in (
        OutputSpace("srgb", "sRGB"),
        OutputSpace("display-p3", "Display P3"),
        OutputSpace("adobe-rgb", "Adobe RGB (1998)"),
        OutputSpace("rec2020", "ITU-R BT.2020"),
        OutputSpace("prophoto", "ProPhoto RGB"),
    )
}
NAMES = tuple(SPACES)


def get_space(name: str) -> OutputSpace:
    from ..errors import UnknownBackendError

    try:
        return SPACES[name.lower()]
    except KeyError:
        raise UnknownBackendError(f"unknown colour space {name!r}; use one of {', '.join(NAMES)}") from None


def _colour():
    with warnings.catch_warnings():  # colour-science warns about optional packages it will not use here
        warnings.simplefilter("ignore")
        import colour
    return colour


@functools.lru_cache(maxsize=None)
def _definition(colour_name: str):
    return _colour().RGB_COLOURSPACES[colour_name]


@functools.lru_cache(maxsize=None)
def _matrix_from_srgb(colour_name: str) -> np.ndarray:
    colour = _colour()
    m = colour.matrix_RGB_to_RGB(colour.RGB_COLOURSPACES["sRGB"], _definition(colour_name),
                                 chromatic_adaptation_transform="Bradford")
    return np.asarray(m, dtype=np.float64)


@functools.lru_cache(maxsize=None)
def _icc(name: str) -> bytes:
    if name == "srgb":
        from ..io.icc import srgb_profile

        return srgb_profile()
    import imagecodecs

    space = SPACES[name]
    d = _definition(space.colour_name)
    (xr, yr), (xg, yg), (xb, yb) = np.asarray(d.primaries, dtype=np.float64)
    xw, yw = np.asarray(d.whitepoint, dtype=np.float64)
    # The tone reproduction curve: device code -> linear, sampled finely enough that LittleCMS's
    # interpolation adds < 1e-5 (the steepest curve, sRGB's toe, moves 1/12.92 per unit).
    codes = np.linspace(0.0, 1.0, 4096)
    trc = np.round(space.decode(codes) * 65535.0).astype(np.uint16)
    return bytes(imagecodecs.cms_profile("rgb", whitepoint=(xw, yw, 1.0),
                                         primaries=(xr, yr, 1.0, xg, yg, 1.0, xb, yb, 1.0), transferfunction=trc))
