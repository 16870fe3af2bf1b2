"""Carrying EXIF over to the developed image, with Orientation reset to 1 (pixels are rotated)."""

from __future__ import annotations

from fractions import Fraction

from ..types import ExifInfo

__all__ = ["exif_bytes", "tiff_tags", "software"]

# Tag numbers (EXIF 2.32 / TIFF 6.0).
MAKE, MODEL, ORIENTATION, SOFTWARE, DATETIME, ARTIST = 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B
EXIF_IFD = 0x8769
EXPOSURE_TIME, F_NUMBER, ISO, DATETIME_ORIGINAL, FOCAL_LENGTH, LENS_MODEL = (
    0x829A, 0x829D, 0x8827, 0x9003, 0x920A, 0xA434,
)


def _rational(x: float, limit: int = 1_000_000) -> tuple[int, int]:
    f = Fraction(x).limit_denominator(limit)
    return f.numerator, f.denominator


def software() -> str:
    from .. import __version__

    return f"rawdev {__version__}"


def exif_bytes(info: ExifInfo) -> bytes:
    """An EXIF block (``Exif\\0\\0`` + TIFF structure) for JPEG/PNG, Orientation = 1."""
    from PIL import Image
    from PIL.TiffImagePlugin import IFDRational

    exif = Image.Exif()
    exif[ORIENTATION] = 1
    exif[SOFTWARE] = software()
    if info.make:
        exif[MAKE] = info.make
    if info.model:
        exif[MODEL] = info.model
    if info.artist:
        exif[ARTIST] = info.artist
    if info.datetime_original:
        exif[DATETIME] = info.datetime_original.strftime("%Y:%m:%d %H:%M:%S")
    sub = exif.get_ifd(EXIF_IFD)
    if info.exposure_time_s:
        sub[EXPOSURE_TIME] = IFDRational(*_rational(info.exposure_time_s))
    if info.f_number:
        sub[F_NUMBER] = IFDRational(*_rational(info.f_number, 1000))
    if info.iso:
        sub[ISO] = int(round(info.iso))
    if info.focal_length_mm:
        sub[FOCAL_LENGTH] = IFDRational(*_rational(info.focal_length_mm, 1000))
    if info.datetime_original:
        sub[DATETIME_ORIGINAL] = info.datetime_original.strftime("%Y:%m:%d %H:%M:%S")
    if info.lens:
        sub[LENS_MODEL] = info.lens
    return exif.tobytes()


def tiff_tags(info: ExifInfo) -> list[tuple]:
    """``tifffile`` extratags for IFD0: (code, dtype, count, value, writeonce).

    tifffile cannot write an EXIF sub-IFD, so exposure, aperture, ISO, focal length and capture time
    go into IFD0 under their TIFF/EP (ISO 12234-2) numbers, where exiftool and most readers find them.
    """
    # Software (305) is written by tifffile itself (its ``software`` argument).
    tags: list[tuple] = [(ORIENTATION, "H", 1, 1, True)]
    if info.make:
        tags.append((MAKE, "s", 0, info.make, True))
    if info.model:
        tags.append((MODEL, "s", 0, info.model, True))
    if info.artist:
        tags.append((ARTIST, "s", 0, info.artist, True))
    if info.datetime_original:
        d = info.datetime_original.strftime("%Y:%m:%d %H:%M:%S")
        tags.append((DATETIME, "s", 0, d, True))
        tags.append((DATETIME_ORIGINAL, "s", 0, d, True))
    if info.exposure_time_s:
        tags.append((EXPOSURE_TIME, "2I", 1, _rational(info.exposure_time_s), True))
    if info.f_number:
        tags.append((F_NUMBER, "2I", 1, _rational(info.f_number, 1000), True))
    if info.iso:
        tags.append((ISO, "H", 1, int(round(min(info.iso, 65535))), True))
    if info.focal_length_mm:
        tags.append((FOCAL_LENGTH, "2I", 1, _rational(info.focal_length_mm, 1000), True))
    if info.lens:
        tags.append((LENS_MODEL, "s", 0, info.lens, True))
    return tags
