"""Decoding: the only module that imports rawpy (LibRaw).

``read_raw(path)`` opens a file, maps LibRaw's errors onto :mod:`rawdev.errors`, and returns a
:class:`~rawdev.types.RawImage` holding the visible sensor data, the per-pixel colour map and a frozen
:class:`~rawdev.types.RawMetadata`. ``render_libraw`` asks LibRaw for its own demosaic, used for sensors
rawdev does not demosaic itself (X-Trans, 4-colour CMYG, linear DNG) and as the reference render.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import CorruptFileError, InputError, UnsupportedFileError
from ..types import CellMap, CFALayout, DngWhite, ExifInfo, RawImage, RawMetadata

__all__ = ["read_raw", "open_rawpy", "render_libraw", "check_decoded", "check_size", "RAW_EXTENSIONS",
           "LIBRAW_FLIP_TO_EXIF", "MAX_PIXELS", "MAX_PIXELS_PER_BYTE"]

#: File extensions recognised as RAW (case-insensitive); LibRaw reads many more by content.
RAW_EXTENSIONS = frozenset(
    ".3fr .ari .arw .bay .braw .cr2 .cr3 .crw .cs1 .dcr .dng .erf .fff .iiq .k25 .kdc .mdc .mef .mos .mrw "
    ".nef .nrw .orf .ori .pef .ptx .pxn .raf .raw .rw2 .rwl .rwz .sr2 .srf .srw .x3f".split()
)

#: LibRaw/dcraw ``flip`` code -> EXIF Orientation. dcraw maps EXIF i -> "50132467"[i]; this inverts it.
LIBRAW_FLIP_TO_EXIF = {0: 1, 1: 2, 3: 3, 2: 4, 4: 5, 6: 6, 7: 7, 5: 8}

#: Refuse images larger than this before allocating (a header can claim any size). The largest
#: single-shot sensors are about 150 MP (Phase One IQ4, 14204 x 10652); twice that leaves room for
#: pixel-shift and stitched DNGs while bounding what a crafted header can make rawdev decode.
MAX_PIXELS = 300_000_000
#: Sensor pixels a file may decode to per byte it holds. Lossless RAW codecs need at least about a
#: bit per sample and real files are 0.25-4.3 pixels a byte (measured: Nikon D1 NEF 0.66, Kodak
#: DC50 KDC 4.24, a lossy linear DNG 2.42); a "decompression bomb" whose tile offsets all point at
#: one compressed tile claims 100+ pixels a byte. Applied above :data:`_RATIO_FLOOR_PIXELS` only.
MAX_PIXELS_PER_BYTE = 48.0
_RATIO_FLOOR_PIXELS = 4_000_000

# sRGB (D65) -> XYZ, IEC 61966-2-1; LibRaw's xyz_rgb.
_XYZ_FROM_SRGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)


_NOT_REGULAR = (
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a RAW file"),
    (stat.S_ISSOCK, "is a socket, not a RAW file"),
    (stat.S_ISCHR, "is a character device, not a RAW file"),
    (stat.S_ISBLK, "is a block device, not a RAW file"),
)


def _check_path(path: Path) -> None:
    """Refuse what is not a readable, non-empty regular file, naming what it is instead (a FIFO
    would block the decoder forever; a symlink loop is not a missing file)."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError("symbolic link loop (too many levels of symbolic links)", path) from None
        if e.errno == errno.ENOENT and os.path.islink(path):
            raise InputError("broken symbolic link (its target does not exist)", path) from None
        if e.errno == errno.ENOENT:
            raise InputError("no such file", path) from None
        if e.errno == errno.EACCES:
            raise InputError("permission denied (a folder on the way is not searchable)", path) from None
        raise InputError(f"cannot read: {e.strerror or e}", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a directory, not a RAW file", path)
    for test, reason in _NOT_REGULAR:
        if test(st.st_mode):
            raise InputError(reason, path)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied (not readable)", path)
    if st.st_size == 0:
        raise CorruptFileError("empty file (0 bytes)", path)


def check_size(width: int, height: int, file_bytes: int, path: str | Path | None = None) -> None:
    """Refuse a header whose image size is implausible, before anything is allocated for it: not
    positive, above :data:`MAX_PIXELS`, or more than :data:`MAX_PIXELS_PER_BYTE` pixels per byte of
    the file (a decompression bomb)."""
    pixels = int(width) * int(height)
    if width <= 0 or height <= 0 or pixels > MAX_PIXELS:
        raise CorruptFileError(f"header claims an implausible size {width}x{height}", path)
    if pixels > _RATIO_FLOOR_PIXELS and file_bytes > 0 and pixels / file_bytes > MAX_PIXELS_PER_BYTE:
        raise CorruptFileError(
            f"header claims {width}x{height} pixels from a {file_bytes / 1e6:.1f} MB file "
            f"({pixels / file_bytes:.0f} pixels a byte; real RAWs hold under 5): damaged or crafted",
            path,
        )


def check_decoded(raw: RawImage) -> None:
    """Refuse decoded sensor data that hold no picture: all zero, one constant value, everything at
    or below the black level, or everything clipped.

    LibRaw returns such mosaics without an error for some damaged files (one changed byte in a DNG's
    DNGVersion tag gives an all-zero mosaic); developing them would write a black (or white) picture
    and report success. A real black or blown frame passes with ``--allow-black``.
    """
    data = raw.data
    if data.size == 0:
        return
    lo, hi = int(data.min()), int(data.max())
    black = max(raw.meta.black_level) if raw.meta.black_level else 0.0
    white = raw.meta.white_level
    if hi == 0:
        why = "the decoded sensor data are all zero"
    elif lo == hi:
        why = f"the decoded sensor data are one constant value ({lo})"
    elif hi <= black:
        why = f"every decoded sample is at or below the black level ({black:g})"
    elif lo >= white:
        why = f"every decoded sample is clipped at the white level ({white:g})"
    else:
        return
    raise CorruptFileError(f"{why}: no picture; the file is probably damaged "
                           "(--allow-black develops a real black or blown frame)", raw.meta.path)


class _CaptureNativeStderr:
    """Redirect file descriptor 2 while LibRaw runs: it prints its own complaints ("Unexpected end of
    file") straight to stderr, which would break rawdev's one-line errors. The text is kept for ours."""

    def __enter__(self):
        import sys
        import tempfile

        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            self._tmp = tempfile.TemporaryFile()
            os.dup2(self._tmp.fileno(), 2)
        except (OSError, ValueError):  # no real fd 2 (embedded use): capture nothing
            self._saved = None
        self.text = ""
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        self.text = " ".join(self._tmp.read().decode("utf-8", "replace").split())[:200]
        self._tmp.close()
        return False


def open_rawpy(path: str | Path, *, unpack: bool = True):
    """Open ``path`` with rawpy (and unpack the sensor data unless ``unpack=False``, e.g. for the
    embedded preview); LibRaw errors become rawdev errors naming the file."""
    with _CaptureNativeStderr() as cap:
        try:
            return _open_rawpy(Path(path), unpack)
        except (CorruptFileError, UnsupportedFileError) as e:
            if cap.text and cap.text.lower() not in e.reason.lower():
                e.reason = f"{e.reason}: {cap.text.rstrip('.').lower()}"
                e.args = (e.one_line(),)
            raise


def _open_rawpy(path: Path, unpack: bool):
    import rawpy

    _check_path(path)
    try:
        raw = rawpy.imread(str(path))
    except rawpy.LibRawFileUnsupportedError:
        raise UnsupportedFileError("not a RAW format LibRaw can read (unsupported or not a RAW file)", path) from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError):
        raise CorruptFileError("truncated or damaged RAW data", path) from None
    except (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError, MemoryError) as e:
        raise CorruptFileError(f"image too large to decode ({type(e).__name__})", path) from None
    except rawpy.LibRawError as e:
        raise CorruptFileError(f"LibRaw cannot decode it ({type(e).__name__}: {e})", path) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path) from None
    s = raw.sizes
    try:
        # the size LibRaw will allocate for is the raw (uncropped) one
        check_size(max(s.width, s.raw_width), max(s.height, s.raw_height), path.stat().st_size, path)
    except CorruptFileError:
        raw.close()
        raise
    if not unpack:
        return raw
    try:
        raw.raw_image  # noqa: B018 - forces unpack, where truncation shows up
    except (rawpy.LibRawIOError, rawpy.LibRawDataError):
        raw.close()
        raise CorruptFileError("truncated or damaged RAW data", path) from None
    except (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError, MemoryError):
        raw.close()
        raise CorruptFileError("image too large to decode", path) from None
    except rawpy.LibRawError as e:
        raw.close()
        raise CorruptFileError(f"LibRaw cannot unpack it ({type(e).__name__}: {e})", path) from None
    return raw


def _opcode_list2(data: bytes | None) -> dict:
    """``gain_maps`` and ``opcodes_skipped`` of :class:`RawMetadata` from a DNG's OpcodeList2
    (nothing without one; a list that does not parse is ignored whole, with its reason)."""
    from .dng_opcodes import parse_opcode_list

    if data is None:
        return {}
    try:
        maps, skipped = parse_opcode_list(data)
    except ValueError as err:
        return {"opcodes_skipped": (f"OpcodeList2 ({err})",)}
    return {"gain_maps": maps, "opcodes_skipped": skipped}


def _white_xy_wb(white: DngWhite | None) -> tuple[float, ...] | None:
    """The as-shot multipliers (R, G, B, G2) of a DNG that states its white as AsShotWhiteXY, which
    LibRaw does not read (its camera multipliers come back empty); None without it, or when the
    file's matrices cannot map it (then the white balance falls back as for a file with none)."""
    if white is None:
        return None
    from ..stages.white_balance import gains_for_white_xy

    try:
        r, g, b = gains_for_white_xy(white.xy, white.matrices)
    except ValueError:
        return None
    return (r, g, b, g)


def _wb(values, green_index: int = 1) -> tuple[float, ...] | None:
    """LibRaw multipliers -> (R, G, B, G2) normalised to G = 1, or None when the file stores none.

    LibRaw quirks: [3] == 0 means G2 = G; [0] == -1 means unknown. All 1.0 is kept: some cameras
    store it because they balance in analogue gain before conversion (the Nikon D1's render with
    1, 1, 1 matches its own preview); the white balance stage checks it against the preview.
    """
    v = [float(x) for x in values]
    if len(v) < 3 or v[0] <= 0 or v[1] <= 0 or v[2] <= 0 or not all(np.isfinite(v)):
        return None
    if len(v) < 4 or v[3] <= 0:
        v = v[:3] + [v[1]]
    g = v[green_index]
    return tuple(x / g for x in v)


def _rgb_cam(raw) -> np.ndarray | None:
    """Camera (white-balanced) -> linear sRGB, as LibRaw's ``cam_xyz_coeff`` computes it.

    From the XYZ->camera matrix: ``cam_rgb = cam_xyz @ xyz_rgb``, rows normalised to sum 1 (so a
    white-balanced neutral maps to neutral), inverted. Falls back to LibRaw's own ``rgb_cam`` when it
    has no XYZ matrix (e.g. CinemaDNG), and to None when the file has neither.
    """
    cam_xyz = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3, :3]
    if np.abs(cam_xyz).sum() > 0:
        cam_rgb = cam_xyz @ _XYZ_FROM_SRGB
        sums = cam_rgb.sum(axis=1, keepdims=True)
        if np.all(np.abs(sums) > 1e-9):
            cam_rgb = cam_rgb / sums
            try:
                return np.linalg.inv(cam_rgb)
            except np.linalg.LinAlgError:
                pass
    rgb_cam = np.asarray(raw.color_matrix, dtype=np.float64)[:3, :3]
    if np.abs(rgb_cam).sum() > 0:
        return rgb_cam
    return None


def _rgb_cam_probe(path: Path) -> np.ndarray | None:
    """The matrix LibRaw applies internally when it does not expose one (e.g. Kodak's KDC tables).

    Two half-size linear renders, camera RGB and sRGB, of the same white-balanced data differ by
    exactly that matrix; a least-squares fit over unclipped pixels recovers it. Only used for files
    whose matrices rawpy reports as zero, so that rawdev's colours match LibRaw's.
    """
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            kw = dict(half_size=True, gamma=(1, 1), no_auto_bright=True, output_bps=16, user_flip=0,
                      user_wb=[1.0, 1.0, 1.0, 1.0], highlight_mode=rawpy.HighlightMode.Ignore)
            cam = raw.postprocess(output_color=rawpy.ColorSpace.raw, **kw).reshape(-1, 3).astype(np.float64)
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(output_color=rawpy.ColorSpace.sRGB, **kw).reshape(-1, 3).astype(np.float64)
    except Exception:  # noqa: BLE001 - a probe; the caller falls back to the identity
        return None
    ok = (cam.max(axis=1) < 60000) & (rgb.max(axis=1) < 60000) & (rgb.min(axis=1) > 0) & (cam.min(axis=1) > 64)
    if ok.sum() < 100:
        return None
    m, *_ = np.linalg.lstsq(cam[ok], rgb[ok], rcond=None)
    m = m.T
    if np.allclose(m, np.eye(3), atol=2e-3):
        return None
    return m / m.sum(axis=1, keepdims=True)


def _cfa_layout(raw) -> CFALayout:
    import rawpy

    desc = raw.color_desc.decode("ascii", "replace") if isinstance(raw.color_desc, bytes) else str(raw.color_desc)
    if raw.raw_type == rawpy.RawType.Stack:
        return CFALayout("linear", None, desc)
    pattern = raw.raw_pattern
    if pattern is None:
        return CFALayout("linear", None, desc)
    colors = raw.raw_colors_visible
    if raw.num_colors != 3 or sorted(set(desc)) != ["B", "G", "R"]:
        return CFALayout("other", np.asarray(pattern).copy(), desc)
    n = pattern.shape[0]
    rgb_index = np.array(["RGB".index(ch) for ch in desc])
    cell = rgb_index[np.asarray(colors[:n, :n])]
    kind = "bayer" if n == 2 else ("xtrans" if n == 6 else "other")
    return CFALayout(kind, cell, desc)


def _read_exif(path: Path, raw):
    """EXIF read by exiv2 (:mod:`rawdev.io.metadata`), completed by what LibRaw parsed (files exiv2
    does not read, fields the file's EXIF lacks), and the DNG tags read with it (``DngTags``)."""
    from .metadata import complete, read_metadata

    info, dng = read_metadata(path)
    other = raw.other
    libraw = ExifInfo(
        lens=raw.lens.model.strip() or None,
        exposure_time_s=other.shutter_speed or None,
        f_number=other.aperture or None,
        iso=other.iso_speed or None,
        focal_length_mm=other.focal_length or None,
        datetime_original=other.timestamp if other.timestamp and other.timestamp.year > 1970 else None,
        artist=other.artist.strip() or None,
    )
    return complete(info, libraw), dng


def _colour_and_black_maps(colors: np.ndarray, lut: np.ndarray, black: np.ndarray):
    """The per-pixel colour (R, G, B = 0, 1, 2) and black-level maps from LibRaw's colour indices.

    LibRaw's map repeats the CFA cell (2 x 2 Bayer, 6 x 6 X-Trans, up to 8 x 2 or 16 x 16 for some
    old sensors' ``filters``) and the blacks are per channel, so both are kept as one cell
    (:class:`~rawdev.types.CellMap`) when the whole map is that cell repeated. A map that is not
    (none is known) is kept per pixel, as before.
    """
    h, w = colors.shape
    for p in (1, 2, 4, 6, 8, 16):
        for q in (1, 2, 4, 6, 8, 16):
            if p > h or q > w:
                continue
            cell = colors[:p, :q]
            # compare band by band against one tiled band: no second full-size array
            band = np.tile(cell, (64, -(-w // q)))[:, :w]
            if all(np.array_equal(colors[y:y + p * 64], band[: min(p * 64, h - y)]) for y in range(0, h, p * 64)):
                return CellMap(lut[cell], (h, w)), CellMap(black[cell], (h, w))
    return lut[colors], black[colors]


def read_raw(path: str | Path) -> RawImage:
    """Decode ``path``: visible sensor data, colour map and metadata. Raises rawdev errors only."""
    path = Path(path)
    raw = open_rawpy(path)
    try:
        cfa = _cfa_layout(raw)
        s = raw.sizes
        black = tuple(float(b) for b in raw.black_level_per_channel)
        exif, dng = _read_exif(path, raw)
        rgb_cam = _rgb_cam(raw)
        camera_wb = _wb(raw.camera_whitebalance)
        xy_wb = camera_wb is None and (camera_wb := _white_xy_wb(dng.white)) is not None
        if cfa.kind in ("bayer", "xtrans"):
            data = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
            if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] < 2:
                raise CorruptFileError(f"visible area too small ({data.shape})", path)
            # LibRaw indexes colours by color_desc ("RGBG": G2 = 3); map to R, G, B = 0, 1, 2.
            desc = cfa.color_desc
            lut = np.array(["RGB".index(ch) for ch in desc], dtype=np.uint8)
            rgb_colors, black_map = _colour_and_black_maps(np.asarray(raw.raw_colors_visible), lut,
                                                           np.asarray(black, dtype=np.float32))
        else:
            data, rgb_colors, black_map = np.zeros((0, 0), np.uint16), None, None
        meta = RawMetadata(
            path=str(path),
            cfa=cfa,
            width=int(s.width),
            height=int(s.height),
            black_level=black,
            white_level=float(raw.white_level),
            camera_wb=camera_wb,
            daylight_wb=_wb(raw.daylight_whitebalance),
            rgb_cam=rgb_cam,
            orientation=LIBRAW_FLIP_TO_EXIF.get(int(s.flip), 1),
            exif=exif,
            noise_profile=dng.noise_profile,
            num_colors=int(raw.num_colors),
            white_xy=dng.white if xy_wb else None,
            **_opcode_list2(dng.opcode_list2),
        )
        img = RawImage(data=data, colors=rgb_colors, meta=meta, black_map=black_map)
    finally:
        raw.close()
    if img.meta.rgb_cam is None and cfa.kind in ("bayer", "xtrans"):
        probed = _rgb_cam_probe(path)
        if probed is not None:
            img.meta = replace(img.meta, rgb_cam=probed)
    return img


def render_libraw(
    path: str | Path,
    *,
    wb: tuple[float, float, float, float] | None,
    camera_wb: bool = False,
    auto_wb: bool = False,
    highlight_mode: int = 0,
    demosaic: str = "AHD",
    output: str = "srgb_linear",
) -> np.ndarray:
    """LibRaw's own render, unrotated, as float32 ``(H, W, 3)``.

    ``output="srgb_linear"``: linear sRGB with the clip point at 1.0 (LibRaw's 16-bit scale), no auto
    brightening. ``wb``: multipliers (in LibRaw's colour order, 4 of them); None with ``camera_wb``
    uses the file's as-shot multipliers, with ``auto_wb`` LibRaw's automatic estimate, with neither
    LibRaw's daylight multipliers (rawpy's ``user_wb`` / ``use_camera_wb`` / ``use_auto_wb``).
    """
    import rawpy

    path = Path(path)
    raw = open_rawpy(path)
    try:
        kw = dict(
            gamma=(1, 1),
            no_auto_bright=True,
            output_bps=16,
            user_flip=0,
            highlight_mode=rawpy.HighlightMode(highlight_mode) if highlight_mode < 3 else rawpy.HighlightMode.Reconstruct(highlight_mode),
            demosaic_algorithm=getattr(rawpy.DemosaicAlgorithm, demosaic),
            output_color=rawpy.ColorSpace.sRGB,
        )
        if wb is not None:
            kw["user_wb"] = [float(x) for x in wb]
        elif camera_wb:
            kw["use_camera_wb"] = True
        elif auto_wb:
            kw["use_auto_wb"] = True
        try:
            with _CaptureNativeStderr():
                rgb = raw.postprocess(**kw)
        except rawpy.LibRawError as e:
            raise CorruptFileError(f"LibRaw cannot render it ({type(e).__name__}: {e})", path) from None
    finally:
        raw.close()
    return rgb.astype(np.float32) / 65535.0
