"""Writing developed images: JPEG, PNG (8/16 bit) and 16-bit TIFF, with EXIF and an sRGB ICC profile,
atomically.

Every writer encodes into a temporary file in the destination folder and then moves it into place,
so the final path holds either nothing or a complete file, whatever happens (a crash, kill -9, a full
disk). Without ``overwrite`` the move is a hard link, which fails if the destination appeared in the
meantime, so an existing file is never replaced.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import OutputError, OutputExistsError, UsageError
from ..types import ExifInfo
from .exif import exif_bytes, software, tiff_tags
from .icc import srgb_profile

__all__ = ["FORMATS", "format_for", "write_image", "atomic_output"]

FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff"}


def format_for(path: str | Path) -> str:
    """The output format from the file extension."""
    ext = Path(path).suffix.lower()
    try:
        return FORMATS[ext]
    except KeyError:
        raise UsageError(f"unknown output format {ext or '(no extension)'!r}; use .jpg, .png or .tif", path) from None


class atomic_output:
    """Context manager yielding a temporary path next to ``final``; on success it becomes ``final``.

    On any exception the temporary file is removed and nothing appears at ``final``.
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
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.final.name}.", suffix=".rawdev-tmp", dir=folder)
            os.close(fd)
        except OSError as e:
            raise OutputError(f"cannot write in {folder}: {e.strerror or e}", self.final) from None
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        tmp = self.tmp
        assert tmp is not None
        if exc_type is not None:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not isinstance(exc, OutputError):
                raise OutputError(f"cannot write: {exc.strerror or exc}", self.final) from None
            return False
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
            tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write: {e.strerror or e}", self.final) from None
        return False


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png(path: Path, img: np.ndarray, exif: bytes | None, icc: bytes, level: int = 6) -> None:
    """PNG (ISO/IEC 15948) for 8- or 16-bit RGB, with iCCP and eXIf chunks.

    Written here because Pillow cannot write 16-bit RGB PNG; the format is a few chunks around a
    zlib stream of filtered rows (filter type 0 here: fastest, and photos compress little anyway).
    """
    h, w, c = img.shape
    depth = 16 if img.dtype == np.uint16 else 8
    rows = img.astype(">u2") if depth == 16 else img
    raw = np.empty((h, 1 + w * c * (depth // 8)), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = np.ascontiguousarray(rows).view(np.uint8).reshape(h, -1)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 2, 0, 0, 0)))
        f.write(_png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(icc)))
        if exif:
            f.write(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
        comp = zlib.compressobj(level)
        buf = memoryview(raw.reshape(-1))
        step = 1 << 24
        for i in range(0, len(buf), step):
            f.write(_png_chunk(b"IDAT", comp.compress(buf[i : i + step])))
        f.write(_png_chunk(b"IDAT", comp.flush()))
        f.write(_png_chunk(b"IEND", b""))


def write_image(
    path: str | Path,
    img: np.ndarray,
    *,
    exif: ExifInfo | None = None,
    quality: int = 92,
    overwrite: bool = False,
) -> Path:
    """Write an ``(H, W, 3)`` uint8/uint16 sRGB image to ``path`` (format from the extension), atomically.

    JPEG is 8-bit only (16-bit input is rounded down to 8 bits); TIFF and PNG keep 16 bits.
    """
    path = Path(path)
    fmt = format_for(path)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype not in (np.uint8, np.uint16):
        raise UsageError(f"write_image expects (H, W, 3) uint8/uint16, got {img.shape} {img.dtype}")
    if not 1 <= quality <= 100:
        raise UsageError(f"JPEG quality must be 1..100, got {quality}")
    icc = srgb_profile()
    info = exif or ExifInfo()
    with atomic_output(path, overwrite) as tmp:
        if fmt == "jpeg":
            from PIL import Image

            if img.dtype == np.uint16:
                img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
            Image.fromarray(img, "RGB").save(
                tmp, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2,
                icc_profile=icc, exif=exif_bytes(info), optimize=False,
            )
        elif fmt == "png":
            _write_png(tmp, img, exif_bytes(info), icc)
        else:
            import tifffile

            tifffile.imwrite(
                tmp, img, photometric="rgb", compression=None, iccprofile=icc,
                extratags=tiff_tags(info), metadata=None, software=software(),
            )
    return path
