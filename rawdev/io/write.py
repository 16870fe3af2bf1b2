"""Writing developed images: JPEG, WebP, PNG (8/16 bit) and TIFF (16-bit, or 32-bit float), with an ICC
profile and the RAW's metadata (copied by exiv2, :mod:`rawdev.io.metadata`), atomically.

TIFF and PNG are written band by band as the developer makes the rows (:func:`write_bands`), so the
finished picture is never held whole; JPEG's and WebP's encoders (Pillow's libjpeg, libwebp) take
the whole image.

Every writer encodes into a temporary file in the destination folder and then moves it into place,
so the final path holds either nothing or a complete file, whatever happens (a crash, kill -9, a full
disk). Without ``overwrite`` the move is a hard link, which fails if the destination appeared in the
meantime, so an existing file is never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import struct
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import OutputError, OutputExistsError, RawdevError, UsageError
from ..types import ExifInfo
from .icc import srgb_profile
from .metadata import copy_metadata, software
from .temporaries import TMP_SUFFIX, remove_stale_temporaries, temporary_owner, temporary_prefix

__all__ = ["FORMATS", "format_for", "default_bits", "check_destination", "write_image", "write_bands", "gather_bands", "atomic_output",
           "temporary_prefix", "temporary_owner", "remove_stale_temporaries", "TMP_SUFFIX"]

FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".webp": "webp"}
#: Formats of 8-bit samples only.
EIGHT_BIT = frozenset({"jpeg", "webp"})
#: WebP's largest side (its header stores 14 bits per dimension).
WEBP_MAX_SIDE = 16383


def format_for(path: str | Path) -> str:
    """The output format from the file extension."""
    ext = Path(path).suffix.lower()
    try:
        return FORMATS[ext]
    except KeyError:
        raise UsageError(f"unknown output format {ext or '(no extension)'!r}; use .jpg, .png, .tif or .webp", path) from None


def default_bits(fmt: str, colorspace: str = "srgb") -> int:
    """Bits per sample when the user names none: 16 for TIFF, and for PNG in a space wider than sRGB;
    8 otherwise (JPEG and WebP are 8-bit only).

    An 8-bit file in a wide space cannot hold every sRGB colour to within a level: one code step of
    the wider space spans several sRGB steps where a colour has a channel near zero (measured by
    ``benchmarks/colour_space_8bit.py``: even the best 8-bit Display P3 code is more than 1.5 levels
    off for about 1 % of in-gamut colours; ProPhoto about 3 %). At 16 bits the step is 257 times finer.
    """
    fmt = FORMATS.get("." + fmt.lower().lstrip("."), fmt.lower())
    if fmt == "tiff" or (fmt == "png" and colorspace != "srgb"):
        return 16
    return 8


def _no_space(folder: Path) -> bool:
    """Whether the file system of ``folder`` is full (some writers report ENOSPC in their own words)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < (64 << 10)


def _os_cause(exc: BaseException | None) -> OSError | None:
    """The first OSError in ``exc``'s chain of causes (writers wrap it in their own exceptions)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _write_failure(exc: BaseException, folder: Path) -> str | None:
    """The reason to report for a writer's failure, or None when it is not an I/O failure."""
    os_err = _os_cause(exc)
    if os_err is not None and os_err.errno in (errno.ENOSPC, errno.EDQUOT):
        return os.strerror(os_err.errno)
    if (os_err is None or os_err.errno is None) and _no_space(folder):
        return os.strerror(errno.ENOSPC)
    if os_err is not None:
        return os_err.strerror or str(os_err)
    return None


def check_destination(src: str | Path, dst: str | Path, bits: int | None, overwrite: bool) -> str:
    """The output format of ``dst`` after the checks made before any decoding; returns it.

    Raises:
        OutputError / OutputExistsError: ``dst`` is the input, or exists and ``overwrite`` is off.
        UsageError: an unknown suffix, 16 bits asked of a JPEG, 32 (float) of anything but a TIFF, or no
            bit depth.
    """
    src, dst = Path(src), Path(dst)
    if src.exists() and dst.resolve() == src.resolve():
        raise OutputError("output path is the input file; refusing to overwrite a RAW", dst)
    fmt = format_for(dst)
    if dst.exists() and not overwrite:
        raise OutputExistsError("output exists (use --overwrite to replace it)", dst)
    if fmt in EIGHT_BIT and bits == 16:
        raise UsageError(f"{'JPEG' if fmt == 'jpeg' else 'WebP'} is 8-bit; use --bits 8 or a .png/.tif output", dst)
    if bits == 32 and fmt != "tiff":
        raise UsageError("32-bit float samples are written to TIFF only; use a .tif output or --bits 8/16", dst)
    if bits is None:
        raise UsageError("files are written with 8, 16 or 32 (float, TIFF) bits per sample", dst)
    return fmt


class atomic_output:
    """Context manager yielding a temporary path next to ``final``; on success it becomes ``final``.

    On any exception the temporary file is removed and nothing appears at ``final``. The temporary is
    named after this process (:func:`temporary_prefix`); temporaries of ``final`` left by processes
    that no longer exist are removed first.
    """

    def __init__(self, final: str | Path, overwrite: bool = False) -> None:
        self.final = Path(final)
        self.overwrite = overwrite
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        folder = self.final.parent if str(self.final.parent) else Path(".")
        if self.final.is_dir():
            raise OutputError("output path is a directory", self.final)
        if self.final.exists() and not self.overwrite:
            raise OutputExistsError("output exists (use --overwrite to replace it)", self.final)
        self.folder = folder
        # Ctrl-C or SIGTERM between creating the temporary and recording it would leave it behind
        # (__exit__ never runs when __enter__ raises): the two happen with those signals deferred,
        # and one acted on as they end removes the temporary just made.
        try:
            with _signals_deferred():
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    remove_stale_temporaries(self.final)
                    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(self.final), suffix=TMP_SUFFIX, dir=folder)
                    os.close(fd)
                    self.tmp = Path(tmp)
                except OSError as e:
                    raise OutputError(f"cannot write in {folder}: {e.strerror or e}", self.final) from None
        except BaseException:
            if self.tmp is not None:
                self.tmp.unlink(missing_ok=True)
            raise
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        tmp = self.tmp
        assert tmp is not None
        if exc_type is not None:
            why = None
            if isinstance(exc, Exception) and not isinstance(exc, RawdevError):
                # an I/O failure inside a writer (tifffile reports a full disk as a short write,
                # "460800 requested and 130568 written"): looked at before the temporary is removed
                why = _write_failure(exc, self.folder)
            tmp.unlink(missing_ok=True)
            if why is not None:
                raise OutputError(f"cannot write: {why}", self.final) from None
            return False
        # The commit (sync, link into place, remove the temporary) runs with Ctrl-C and SIGTERM
        # deferred: interrupted half-way it left the temporary behind, or the output in place with
        # an "interrupted" exit. A signal that arrives meanwhile is acted on once it is done.
        with _signals_deferred():
            try:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o644 & ~_umask())
                if self.overwrite:
                    os.replace(tmp, self.final)
                else:
                    try:
                        os.link(tmp, self.final)  # fails if the destination exists: never clobber
                    except FileExistsError:
                        raise OutputExistsError("output exists (use --overwrite to replace it)", self.final) from None
                    except OSError:
                        if self.final.exists():
                            raise OutputExistsError("output exists (use --overwrite to replace it)", self.final) from None
                        os.replace(tmp, self.final)  # file systems without hard links
                    tmp.unlink(missing_ok=True)
            except OutputError:
                tmp.unlink(missing_ok=True)
                raise
            except OSError as e:
                why = _write_failure(e, self.folder) or str(e)
                tmp.unlink(missing_ok=True)
                raise OutputError(f"cannot write: {why}", self.final) from None
        return False


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Run the body with SIGINT and SIGTERM deferred: one that arrives meanwhile is handed to the
    handler that was in force once the body is done (Ctrl-C's KeyboardInterrupt, rawdev's SIGTERM
    handler, or the default action), so that what the body does happens all or not at all.

    Python runs signal handlers in the main thread only, whichever thread the kernel delivered the
    signal to, so swapping the handlers there covers every thread (``pthread_sigmask`` blocks a
    signal in the calling thread only: the kernel may hand it to a worker thread, and the main
    thread's handler runs all the same). Elsewhere (a writer called from another thread) the body
    runs as it is.
    """
    kinds = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or None in map(signal.getsignal, kinds):
        yield  # (a handler installed outside Python could not be put back)
        return
    caught: list[int] = []
    before = {k: signal.signal(k, lambda signum, frame: caught.append(signum)) for k in kinds}
    try:
        yield
    finally:
        for k, handler in before.items():
            signal.signal(k, handler)
        if caught:
            handler = before[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler != signal.SIG_IGN:
                signal.raise_signal(caught[0])


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png(path: Path, shape: tuple[int, int, int], dtype: np.dtype, bands: Iterable[np.ndarray],
               icc: bytes, level: int = 6) -> None:
    """PNG (ISO/IEC 15948) for 8- or 16-bit RGB, with an iCCP chunk, from bands of rows (exiv2 adds
    the eXIf chunk afterwards).

    Written here because Pillow cannot write 16-bit RGB PNG; the format is a few chunks around a
    zlib stream of filtered rows (filter type 0 here: fastest, and photos compress little anyway).
    """
    h, w, c = shape
    depth = 16 if dtype == np.uint16 else 8
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 2, 0, 0, 0)))
        f.write(_png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(icc)))
        comp = zlib.compressobj(level)
        pending: list[bytes] = []
        size = 0
        for band in bands:
            rows = band.astype(">u2") if depth == 16 else band
            raw = np.empty((band.shape[0], 1 + w * c * (depth // 8)), dtype=np.uint8)
            raw[:, 0] = 0
            raw[:, 1:] = np.ascontiguousarray(rows).view(np.uint8).reshape(band.shape[0], -1)
            del rows
            out = comp.compress(memoryview(raw.reshape(-1)))
            if out:
                pending.append(out)
                size += len(out)
            if size >= 1 << 24:  # IDAT chunks of about 16 MB
                f.write(_png_chunk(b"IDAT", b"".join(pending)))
                pending, size = [], 0
        pending.append(comp.flush())
        f.write(_png_chunk(b"IDAT", b"".join(pending)))
        f.write(_png_chunk(b"IEND", b""))


def _counted(bands: Iterable[np.ndarray], shape: tuple[int, int, int], dtype: np.dtype) -> Iterator[np.ndarray]:
    """``bands``, checked against the promised shape and dtype (a short or long stream would
    otherwise make a corrupt file)."""
    rows = 0
    for b in bands:
        if b.ndim != 3 or b.shape[1:] != tuple(shape[1:]) or b.dtype != dtype:
            raise UsageError(f"band of shape {b.shape} {b.dtype} does not fit an image of {shape} {dtype}")
        rows += b.shape[0]
        if rows > shape[0]:
            raise UsageError(f"bands give more than the image's {shape[0]} rows")
        yield b
        del b  # written: do not hold it while the next band is made
    if rows != shape[0]:
        raise UsageError(f"bands gave {rows} rows of the image's {shape[0]}")


def gather_bands(bands: Iterable[np.ndarray], shape: tuple[int, ...], dtype) -> np.ndarray:
    """The whole image from its ``bands`` (top to bottom); a band that is the whole image is
    returned as it is, not copied."""
    img: np.ndarray | None = None
    y = 0
    for b in bands:
        if img is None and b.shape[0] == shape[0]:
            img, y = b, b.shape[0]
            continue
        if img is None:
            img = np.empty(shape, dtype)
        img[y : y + b.shape[0]] = b
        y += b.shape[0]
    if y != shape[0]:
        raise UsageError(f"bands gave {y} rows of the image's {shape[0]}")
    return np.empty(shape, dtype) if img is None else img


def _to_8_bits(b: np.ndarray) -> np.ndarray:
    return ((b.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8) if b.dtype == np.uint16 else b


def write_image(
    path: str | Path,
    img: np.ndarray,
    *,
    exif: ExifInfo | None = None,
    source: str | Path | None = None,
    icc: bytes | None = None,
    quality: int = 92,
    overwrite: bool = False,
    on_notice=None,
) -> Path:
    """Write an ``(H, W, 3)`` uint8/uint16 sRGB image to ``path`` (format from the extension), atomically.

    JPEG and WebP are 8-bit only (16-bit input is rounded down to 8 bits); TIFF and PNG keep 16 bits.
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype not in (np.uint8, np.uint16):
        raise UsageError(f"write_image expects (H, W, 3) uint8/uint16, got {img.shape} {img.dtype}")
    return write_bands(path, img.shape, img.dtype, [img], exif=exif, source=source, icc=icc, quality=quality,
                       overwrite=overwrite, on_notice=on_notice)


def write_bands(
    path: str | Path,
    shape: tuple[int, int, int],
    dtype,
    bands: Iterable[np.ndarray],
    *,
    exif: ExifInfo | None = None,
    source: str | Path | None = None,
    icc: bytes | None = None,
    quality: int = 92,
    overwrite: bool = False,
    on_notice=None,
) -> Path:
    """Write an image of ``shape`` ``(H, W, 3)`` and ``dtype`` (uint8/uint16; float32 for TIFF) given as ``bands``,
    ``(h, W, 3)`` arrays top to bottom, to ``path`` (format from the extension), atomically.

    TIFF and PNG take one band at a time (the bands may be made lazily, by a generator); JPEG
    gathers them first. An exception while the bands are made leaves nothing at ``path``.

    Metadata: all of ``source``'s EXIF, XMP and IPTC (a RAW file), completed by ``exif``, with
    Orientation 1 and the output's dimensions. ``icc`` is the profile of the pixels' colour space
    (default sRGB). Metadata that cannot be copied is reported to ``on_notice`` (the image is
    written all the same).
    """
    path = Path(path)
    fmt = format_for(path)
    dtype = np.dtype(dtype)
    shape = tuple(int(x) for x in shape)
    if len(shape) != 3 or shape[2] != 3 or dtype not in (np.uint8, np.uint16, np.float32):
        raise UsageError(f"an image is written from (H, W, 3) uint8/uint16 (or float32 to TIFF), got {shape} {dtype}")
    if dtype == np.float32 and fmt != "tiff":
        raise UsageError(f"float32 samples are written to TIFF only, not {fmt.upper()}", path)
    if not 1 <= quality <= 100:
        raise UsageError(f"JPEG quality must be 1..100, got {quality}")
    icc = icc or srgb_profile()
    info = exif or ExifInfo()
    bands = _counted(bands, shape, dtype)
    with atomic_output(path, overwrite) as tmp:
        if fmt == "jpeg":
            from PIL import Image

            img = gather_bands((_to_8_bits(b) for b in bands), shape, np.uint8)
            Image.fromarray(img, "RGB").save(
                tmp, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2,
                icc_profile=icc, optimize=False,
            )
        elif fmt == "webp":
            from PIL import Image

            if max(shape[:2]) > WEBP_MAX_SIDE:
                # this file's failure, not the command line's: a batch goes on with the others
                raise OutputError(f"WebP holds at most {WEBP_MAX_SIDE} pixels a side, this image is "
                                  f"{shape[1]} x {shape[0]}; use .jpg, .png or .tif", path)
            img = gather_bands((_to_8_bits(b) for b in bands), shape, np.uint8)
            # lossy VP8 at the JPEG quality scale, libwebp's default effort (method 4)
            Image.fromarray(img, "RGB").save(tmp, "WEBP", quality=quality, icc_profile=icc)
        elif fmt == "png":
            _write_png(tmp, shape, dtype, bands, icc)
        else:
            import tifffile

            # Uncompressed, one strip: tifffile writes the iterator's arrays as they come.
            tifffile.imwrite(
                tmp, data=bands, shape=shape, dtype=dtype, photometric="rgb", compression=None,
                iccprofile=icc, metadata=None, software=software(),
            )
        msg = copy_metadata(source, tmp, info, (shape[1], shape[0]))
        if msg and on_notice is not None:
            on_notice(msg)
    return path
