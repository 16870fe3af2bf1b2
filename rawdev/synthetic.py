"""Synthetic RAW files made by our own code: the demo DNG and the round-trip test fixtures.

:func:`write_dng` turns a linear sRGB image into the DNG a camera with a given colour matrix would
have written: the stored mosaic holds camera RGB (``camera_from_srgb @ rgb``) sampled with the chosen
Bayer phase, scaled between black and white levels, in sensor orientation; ``ColorMatrix1`` and
``AsShotNeutral`` describe that camera exactly. Developing the file with camera white balance therefore
gives back the input, up to demosaicking and quantisation: a measurable round trip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cameras import XYZ_TO_CAMERA, camera_from_srgb
from .cfa import check_pattern, pattern_cell
from .stages.orientation import INVERSE_ORIENTATION, apply_orientation

__all__ = ["write_dng", "demo_scene", "INVERSE_ORIENTATION", "ILLUMINANT_XY", "illuminant_rgb", "camera_rendering"]

#: CIE 1931 2-degree chromaticities (x, y) of standard illuminants (CIE 15:2004, table T.3 and T.8):
#: A is tungsten (2856 K), D75 north-sky shade, F2 a cool-white fluorescent tube (above the Planckian
#: locus, a green tint), D65 the daylight sRGB is defined for.
ILLUMINANT_XY = {
    "tungsten": (0.44757, 0.40745),
    "shade": (0.29902, 0.31485),
    "fluorescent": (0.37208, 0.37529),
    "daylight": (0.31270, 0.32900),
}


def _shading(gains: np.ndarray, h: int, w: int) -> np.ndarray:
    """``(h, w)`` gains of a map whose points are spread evenly from edge to edge (position 0 to 1),
    pixel ``x`` at ``(x + 0.5) / w``, linear between points and held beyond them, rows then columns
    (the DNG SDK's reading of a GainMap; written here with ``np.interp``, independently of
    :mod:`rawdev.stages.gain_map`, so that tests check one against the other)."""
    pv, ph = gains.shape
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    along = np.stack([np.interp(ys, np.linspace(0, 1, pv), gains[:, j]) for j in range(ph)], axis=1)
    return np.stack([np.interp(xs, np.linspace(0, 1, ph), row) for row in along])


def _opcode_list2(gain_maps, h: int, w: int) -> bytes:
    """OpcodeList2 bytes holding one GainMap opcode (DNG 1.4, opcode 9) per ``gain_maps`` entry."""
    import struct

    out = struct.pack(">I", len(gain_maps))
    for (top, left, row_pitch, col_pitch), g in gain_maps:
        g = np.asarray(g, np.float64)
        pv, ph = g.shape
        params = struct.pack(">10I", top, left, h, w, 0, 1, row_pitch, col_pitch, pv, ph)
        params += struct.pack(">4d", 1.0 / max(pv - 1, 1), 1.0 / max(ph - 1, 1), 0.0, 0.0)
        params += struct.pack(">I", 1) + g.astype(">f4").tobytes()
        out += struct.pack(">IIII", 9, 0x01030000, 0, len(params)) + params
    return out


def _rationals(values, denominator: int = 10000) -> list[list[int]]:
    return [[int(round(float(v) * denominator)), denominator] for v in np.ravel(values)]


def write_dng(
    path: str | Path,
    linear_srgb: np.ndarray,
    *,
    pattern: str = "RGGB",
    xyz_to_camera: np.ndarray | None = None,
    black: int | tuple[int, int, int, int] = 512,
    white: int = 16383,
    orientation: int = 1,
    exposure_scale: float = 1.0,
    noise_sigma: float = 0.0,
    shot: float = 0.0,
    read: float = 0.0,
    noise_profile_floor: float | None = None,
    noise_profile: bool = True,
    as_shot: bool = True,
    white_xy: tuple[float, float] | None = None,
    gain_maps: list[tuple[tuple[int, int, int, int], np.ndarray]] | None = None,
    seed: int = 0,
    make: str = "rawdev",
    model: str = "Synthetic",
    preview: np.ndarray | None = None,
    preview_quality: int = 90,
) -> Path:
    """Write a Bayer DNG whose developed image is ``linear_srgb`` (``(H, W, 3)``, display orientation).

    ``exposure_scale`` scales the camera signal so that linear sRGB white sits at that fraction of the
    white level in the brightest camera channel. ``noise_sigma`` adds Gaussian read noise in raw counts.
    ``shot`` / ``read`` add heteroscedastic noise of variance ``shot * x + read`` on the normalised
    signal ``x`` in [0, 1] (Brooks2019's model) and record it as the DNG NoiseProfile tag.
    ``noise_profile_floor``: if given, NoiseProfile is always written, its offset being ``read`` plus
    this floor (e.g. the quantisation variance of a clean file). ``noise_profile=False`` writes no
    NoiseProfile at all, as real cameras' RAW files (the noise is still added); ``as_shot=False``
    writes no AsShotNeutral (old cameras that store no white balance). ``white_xy`` writes the as-shot
    white as AsShotWhiteXY instead (a chromaticity, as Google's Pixel camera app does), and no
    AsShotNeutral. ``gain_maps``: lens shading, as ``((top, left, row_pitch, col_pitch), gains)``
    pairs (``gains`` ``(points_v, points_h)``, spread evenly from edge to edge of the image): the
    signal of the samples each covers is divided by its gain, and each is written as a GainMap opcode
    in OpcodeList2 (as phones write them), whose gains undo the shading.

    ``preview`` (``(h, w, 3)`` uint8 sRGB, display orientation) is embedded as a JPEG (baseline,
    ``preview_quality``) the way DNG converters store it: IFD0 holds the preview (NewSubFileType 1)
    and the DNG-level tags, a SubIFD the raw data (DNG 1.4 spec, chapter 3, "IFD structure"); LibRaw's
    ``extract_thumb`` finds it there as it does in real DNGs.
    """
    from pidng.core import DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, PhotometricInterpretation

    pattern = check_pattern(pattern)
    cam_xyz = np.asarray(XYZ_TO_CAMERA[0] if xyz_to_camera is None else xyz_to_camera, dtype=np.float64)
    m = camera_from_srgb(cam_xyz)
    white_cam = m @ np.ones(3)
    if np.any(white_cam <= 0):
        raise ValueError("camera matrix maps white to a non-positive camera value")
    neutral = white_cam / white_cam[1]
    stored = apply_orientation(np.asarray(linear_srgb, dtype=np.float64), INVERSE_ORIENTATION[int(orientation)])
    h, w = stored.shape[:2]
    cam = stored @ m.T / white_cam.max() * exposure_scale
    cell = np.array(pattern_cell(pattern))
    idx = cell[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2]
    mosaic = np.take_along_axis(cam, idx[..., None], axis=2)[..., 0]
    blacks = np.broadcast_to(np.asarray(black, dtype=np.float64).reshape(-1), (4,)).reshape(2, 2)
    black_map = blacks[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2]
    for (top, left, row_pitch, col_pitch), g in gain_maps or ():
        shade = _shading(np.asarray(g, np.float64), h, w)
        mosaic[top::row_pitch, left::col_pitch] /= shade[top::row_pitch, left::col_pitch]
    rng = np.random.default_rng(seed)
    if shot > 0 or read > 0:
        var = shot * np.clip(mosaic, 0.0, None) + read
        mosaic = mosaic + rng.normal(0.0, 1.0, mosaic.shape) * np.sqrt(var)
    counts = mosaic * (white - black_map) + black_map
    if noise_sigma > 0:
        counts = counts + rng.normal(0.0, noise_sigma, counts.shape)
    raw = np.clip(np.round(counts), 0, white).astype(np.uint16)

    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, int(orientation))
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, [int(c) for c in cell.ravel()])
    if np.ndim(black) == 0:
        t.set(Tag.BlackLevel, int(black))
    else:
        t.set(Tag.BlackLevelRepeatDim, [2, 2])
        t.set(Tag.BlackLevel, [int(b) for b in np.ravel(black)])
    t.set(Tag.WhiteLevel, int(white))
    t.set(Tag.ColorMatrix1, _rationals(cam_xyz))
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    if white_xy is not None:
        t.set((50729, Tag.AsShotNeutral[1]), _rationals(white_xy, 1_000_000))  # AsShotWhiteXY: pidng has no name for it
    elif as_shot:
        t.set(Tag.AsShotNeutral, _rationals(neutral, 1_000_000))
    if gain_maps:
        t.set(Tag.OpcodeList2, list(_opcode_list2(gain_maps, h, w)))
    t.set(Tag.BaselineExposure, [[0, 1]])
    if not noise_profile:
        pass
    elif noise_profile_floor is not None:
        t.set(Tag.NoiseProfile, [float(shot), float(read) + float(noise_profile_floor)])
    elif shot > 0 or read > 0:
        t.set(Tag.NoiseProfile, [float(shot), float(read)])
    t.set(Tag.Make, make)
    t.set(Tag.Model, model)
    t.set(Tag.UniqueCameraModel, f"{make} {model}")
    t.set(Tag.DateTime, "2024:05:01 12:00:00")
    t.set(Tag.ExposureTime, [[1, 125]])
    t.set(Tag.FNumber, [[56, 10]])
    t.set(Tag.FocalLength, [[50, 1]])
    t.set(Tag.PhotographicSensitivity, [200])
    path = _write_with_pidng(t, raw, path)
    if preview is not None:
        stored_preview = apply_orientation(np.asarray(preview, dtype=np.uint8)[..., :3],
                                           INVERSE_ORIENTATION[int(orientation)])
        _embed_preview(path, np.ascontiguousarray(stored_preview), preview_quality)
    return path


def write_mono_dng(path: str | Path, luminance: np.ndarray, *, black: int = 256, white: int = 16383,
                   orientation: int = 1) -> Path:
    """Write a monochrome DNG (one LinearRaw sample per pixel, as a Leica Monochrom's) whose linear
    values are ``luminance`` (``(H, W)`` in [0, 1], stored orientation), tagged ``orientation``."""
    from pidng.core import DNGTags, Tag
    from pidng.defs import PhotometricInterpretation

    lum = np.asarray(luminance, np.float64)
    h, w = lum.shape
    counts = np.clip(np.round(lum * (white - black) + black), 0, white).astype(np.uint16)
    t = DNGTags()
    for tag, value in ((Tag.ImageWidth, w), (Tag.ImageLength, h), (Tag.TileWidth, w), (Tag.TileLength, h),
                       (Tag.Orientation, int(orientation)), (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 16),
                       (Tag.BlackLevel, int(black)), (Tag.WhiteLevel, int(white))):
        t.set(tag, value)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Linear_Raw)
    t.set(Tag.Make, "rawdev")
    t.set(Tag.Model, "Monochrome")
    t.set(Tag.UniqueCameraModel, "rawdev Monochrome")
    return _write_with_pidng(t, counts, path)


def _write_with_pidng(tags, data: np.ndarray, path: str | Path) -> Path:
    """``data`` (uint16) and ``tags`` written as a DNG 1.4 file at ``path`` by pidng."""
    from pidng.core import RAW2DNG, Tag
    from pidng.defs import DNGVersion

    tags.set(Tag.DNGVersion, DNGVersion.V1_4)
    tags.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    path = Path(path)
    conv = RAW2DNG()
    conv.options(tags, path="", compress=False)
    # pidng appends ".dng" to the name it is given.
    out = conv.convert(data, filename=str(path.with_suffix("")))
    produced = Path(out) if out else path.with_suffix(".dng")
    if produced != path:
        produced.replace(path)
    return path


#: Tags that belong to the raw IFD (the CFA layout and the levels); every other tag pidng writes
#: describes the file or the camera and goes to IFD0 (DNG 1.4 spec, chapter 4, "Usage" of each tag).
_RAW_IFD_TAGS = frozenset({33421, 33422, 50713, 50714, 50715, 50716, 50717, 50718, 50719, 50720, 50780, 50829,
                           51008, 51009, 51022})  # and the opcode lists
#: Tags tifffile writes itself from the image it is given (size, layout, strips or tiles, software).
_LAYOUT_TAGS = frozenset({254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 305, 322, 323, 324, 325})


def _embed_preview(path: Path, preview: np.ndarray, quality: int) -> None:
    """Rewrite the single-IFD DNG at ``path`` as IFD0 = JPEG ``preview`` + SubIFD = the same raw data
    and tags, bit for bit (pidng cannot write SubIFDs)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        mosaic = page.asarray()
        top, raw_tags, seen = [], [], set()
        for tag in page.tags.values():
            if tag.code in _LAYOUT_TAGS or tag.code in seen:  # pidng writes DNGVersion twice
                continue
            seen.add(tag.code)
            value = tag.value
            if tag.dtype in (5, 10):  # rationals come back as pairs; tifffile writes them flat
                value = tuple(int(v) for v in np.ravel(value))
            (raw_tags if tag.code in _RAW_IFD_TAGS else top).append((tag.code, int(tag.dtype), tag.count, value, True))
    tmp = path.with_name(path.name + ".preview-tmp")
    with tifffile.TiffWriter(tmp) as out:
        out.write(preview, photometric="rgb", subfiletype=1, subifds=1, compression="jpeg", compressionargs={"level": int(quality)},
                  extratags=top, software=False, metadata=None)
        out.write(mosaic, photometric=32803, subfiletype=0, extratags=raw_tags, software=False, metadata=None)
    tmp.replace(path)


def illuminant_rgb(xy: tuple[float, float]) -> np.ndarray:
    """The colour of an illuminant of chromaticity ``xy`` as linear sRGB (no chromatic adaptation),
    green = 1: what a white surface under it reflects into an sRGB-like camera."""
    from .cameras import XYZ_TO_SRGB, xyz_of_xy

    rgb = XYZ_TO_SRGB @ xyz_of_xy(*xy)
    if np.any(rgb <= 0):
        raise ValueError(f"illuminant {xy} is outside the sRGB gamut")
    return rgb / rgb[1]


def camera_rendering(linear_srgb: np.ndarray, xyz_to_camera: np.ndarray, gains, *,
                     size: tuple[int, int] | None = None, exposure: float = 1.0) -> np.ndarray:
    """What the camera's own JPEG engine makes of the scene ``linear_srgb`` (as :func:`write_dng`
    records it): camera RGB, white balanced by ``gains`` (R, G, B multipliers on camera channels, in
    the convention of AsShotNeutral: the gains ``1 / (camera response to the light)`` make a white
    surface equal in every channel), to linear sRGB by the camera matrix whose rows sum to one (as a
    developer's ``rgb_cam``), times ``exposure``, sRGB-encoded, 8-bit; block-averaged (in linear light)
    to ``size`` = ``(h, w)`` when given. For a daylight scene the gains are ``1 / AsShotNeutral``."""
    m = camera_from_srgb(np.asarray(xyz_to_camera, dtype=np.float64))
    rgb_cam = np.linalg.inv(m) * (m @ np.ones(3))[None, :]  # rows sum to 1: equal camera values -> white
    cam = np.asarray(linear_srgb, dtype=np.float64) @ m.T * np.asarray(gains, dtype=np.float64)[:3]
    lin = np.clip(cam @ rgb_cam.T * exposure, 0.0, 1.0)
    if size is not None:
        h, w = lin.shape[:2]
        ky, kx = h // size[0], w // size[1]
        lin = lin[:size[0] * ky, :size[1] * kx].reshape(size[0], ky, size[1], kx, 3).mean(axis=(1, 3))
    enc = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.round(enc * 255.0).astype(np.uint8)


def demo_scene(width: int = 1200, height: int = 800) -> np.ndarray:
    """A linear sRGB test scene ``(H, W, 3)``: grey ramp, 24 colour patches, a zone plate for
    aliasing, fine line gratings, and a highlight disc brighter than white (for highlight handling).
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.empty((height, width, 3))
    # background: a smooth grey ramp from 2 % to 60 % linear (dark to mid-light)
    img[...] = (0.02 + 0.58 * x / max(width - 1, 1))[..., None]
    # 24 patches in sRGB-encoded values close to a colour checker, converted to linear
    patches = np.array([
        [115, 82, 68], [194, 150, 130], [98, 122, 157], [87, 108, 67], [133, 128, 177], [103, 189, 170],
        [214, 126, 44], [80, 91, 166], [193, 90, 99], [94, 60, 108], [157, 188, 64], [224, 163, 46],
        [56, 61, 150], [70, 148, 73], [175, 54, 60], [231, 199, 31], [187, 86, 149], [8, 133, 161],
        [243, 243, 242], [200, 200, 200], [160, 160, 160], [122, 122, 121], [85, 85, 85], [52, 52, 52],
    ]) / 255.0
    lin = np.where(patches <= 0.04045, patches / 12.92, ((patches + 0.055) / 1.055) ** 2.4)
    pw, ph = width // 8, height // 8
    for i, c in enumerate(lin):
        r, k = divmod(i, 6)
        y0, x0 = ph // 2 + r * ph, pw + k * pw
        img[y0 : y0 + ph - 6, x0 : x0 + pw - 6] = c
    # zone plate (aliasing test) bottom-left
    cy, cx, rad = height * 0.78, width * 0.2, min(width, height) * 0.2
    r2 = ((x - cx) ** 2 + (y - cy) ** 2) / rad**2
    zp = 0.25 + 0.2 * np.cos(np.pi * r2 * rad * 0.5)
    inside = r2 < 1
    img[inside] = zp[inside][:, None]
    # vertical line gratings, lines 1, 2 and 3 px wide (1 px is the sensor's Nyquist limit)
    gx0, gy0 = int(width * 0.42), int(height * 0.66)
    for j, line in enumerate((1, 2, 3)):
        band = slice(gy0 + j * (height // 12), gy0 + (j + 1) * (height // 12) - 4)
        cols = np.arange(gx0, gx0 + width // 6)
        img[band, cols] = (0.05 + 0.5 * ((cols // line) % 2))[None, :, None]
    # highlight disc at 3x white (clips) bottom-right
    d = ((x - width * 0.8) ** 2 + (y - height * 0.78) ** 2) < (min(width, height) * 0.1) ** 2
    img[d] = (3.0, 2.6, 2.2)
    return img


def write_demo_dng(path: str | Path, width: int = 1200, height: int = 800) -> Path:
    """The sample DNG of ``rawdev demo``: the demo scene from a real camera matrix, RGGB, 14 bit."""
    scene = demo_scene(width, height)
    return write_dng(path, scene, pattern="RGGB", xyz_to_camera=XYZ_TO_CAMERA[1], black=512, white=16383,
                     exposure_scale=1.0, noise_sigma=2.0, make="rawdev", model="Demo")
