"""Metadata with exiv2: reading the fields rawdev uses, and copying all of a RAW's EXIF (GPS, lens and
maker notes included), XMP and IPTC into the developed JPEG, WebP, TIFF or PNG.

The copy keeps what describes the *photograph* and drops what describes the RAW *file*: IFD0's
structure (strips, tiles, CFA layout, DNG colour calibration), sub-IFDs and thumbnails. TIFF/EP files
(DNG, NEF) keep exposure, aperture, ISO, focal length and dates in IFD0; they move to the EXIF sub-IFD
where JPEG, PNG and TIFF readers look for them. Orientation becomes 1 (the pixels are turned) and
the pixel dimensions are the output's.

A RAW whose metadata exiv2 cannot read, or an output it cannot write, still develops: the caller gets
a notice, and the fields LibRaw knows are written where possible.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from ..types import DngWhite, ExifInfo

__all__ = ["read_metadata", "DngTags", "copy_metadata", "clean_exposure_time", "software", "MetadataFields"]

#: IFD0 tags of a RAW that describe the photograph, copied as they are (the rest of IFD0 describes
#: the RAW file's layout and calibration and is not the output's).
_IMAGE_KEEP = frozenset(
    "Make Model Artist Copyright DateTime ImageDescription Rating RatingPercent XPTitle XPComment "
    "XPAuthor XPKeywords XPSubject CameraSerialNumber LensInfo".split()
)
#: exiv2 groups that are parts of the RAW's file structure.
_GROUPS_DROP_PREFIX = ("Image", "SubImage", "SubThumb", "Thumbnail", "SubIFD")
#: Written by the output's writer or reset here; a RAW's values would be wrong for the output.
_PHOTO_DROP = frozenset({"PixelXDimension", "PixelYDimension", "InteroperabilityTag", "MakerNote"})


class MetadataFields(dict):
    """``{exiv2 key: text}`` of one file's EXIF, XMP and IPTC (for tests and ``rawdev info``)."""


def software() -> str:
    from .. import __version__

    return f"rawdev {__version__}"


def _exiv2():
    import exiv2

    exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)  # exiv2 warns on stderr about every odd maker note
    return exiv2


def _open(path: Path):
    exiv2 = _exiv2()
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    return image


def clean_exposure_time(seconds: float) -> Fraction:
    """An exposure time as a photographer writes it: ``1/125``, ``1/3``, ``0.6``, ``5`` seconds.

    LibRaw keeps shutter speeds as floats (an APEX value's ``2**-Tv``), whose exact fraction reads
    like 3979871/801193; cameras round to the nearest 1/n below 0.3 s and to tenths above.
    """
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"exposure time must be positive, got {seconds}")
    if seconds < 0.3:
        return Fraction(1, max(1, round(1.0 / seconds)))
    return Fraction(round(seconds * 10), 10)


def _number(ex, key: str) -> float | None:
    exiv2 = _exiv2()
    it = ex.findKey(exiv2.ExifKey(key))
    if it == ex.end() or it.count() == 0:
        return None
    try:
        v = float(it.toFloat(0))
    except Exception:  # noqa: BLE001 - a malformed value is a missing one
        return None
    return v if math.isfinite(v) and v > 0 else None


def _text(ex, key: str) -> str | None:
    exiv2 = _exiv2()
    it = ex.findKey(exiv2.ExifKey(key))
    if it == ex.end():
        return None
    s = it.toString().strip().strip("\x00").strip()
    return s or None


def _floats(ex, key: str, n: int) -> list[float] | None:
    """The first ``n`` values of ``key`` as finite floats, or None (missing, short or malformed)."""
    exiv2 = _exiv2()
    it = ex.findKey(exiv2.ExifKey(key))
    if it == ex.end() or it.count() < n:
        return None
    try:
        v = [float(it.toFloat(i)) for i in range(n)]
    except Exception:  # noqa: BLE001 - a malformed value is a missing one
        return None
    return v if all(math.isfinite(x) for x in v) else None


def _dng_white(ex) -> DngWhite | None:
    """AsShotWhiteXY and the colour matrices to read it with, for a DNG that gives its as-shot white
    as a chromaticity (Google's Pixel camera app, for one) instead of AsShotNeutral."""
    xy = _floats(ex, "Exif.Image.AsShotWhiteXY", 2)
    if xy is None or not (0 < xy[0] < 1 and 0 < xy[1] < 1):
        return None
    matrices = []
    for i in (1, 2):
        m = _floats(ex, f"Exif.Image.ColorMatrix{i}", 9)
        if m is not None:
            light = _floats(ex, f"Exif.Image.CalibrationIlluminant{i}", 1)
            matrices.append((tuple(m), int(light[0]) if light else 0))
    return DngWhite((xy[0], xy[1]), tuple(matrices)) if matrices else None


def _opcode_list2(ex) -> bytes | None:
    """The OpcodeList2 of the raw IFD (IFD0 or a SubIFD whose NewSubfileType is 0), as bytes."""
    kinds, lists = {}, {}
    for datum in ex:
        group, name = datum.groupName(), datum.tagName()
        if group == "Image" or group.startswith("SubImage"):
            if name == "NewSubfileType":
                kinds[group] = datum.toString().strip()
            elif name == "OpcodeList2":
                lists[group] = datum
    for group, datum in lists.items():
        if kinds.get(group, "0") == "0":
            try:
                return bytes(int(v) for v in datum.toString().split())
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class DngTags:
    """The DNG tags rawdev develops with beyond EXIF: NoiseProfile ``(S, O)``, AsShotWhiteXY with its
    matrices, and the raw IFD's OpcodeList2 bytes (None where the file has none)."""

    noise_profile: tuple[float, float] | None = None
    white: DngWhite | None = None
    opcode_list2: bytes | None = None


def read_metadata(path: str | Path) -> tuple[ExifInfo, DngTags]:
    """The EXIF fields rawdev uses and the :class:`DngTags` of ``path``, or an empty
    :class:`ExifInfo` and no tags when exiv2 cannot read the file (the caller completes the EXIF
    from LibRaw)."""
    try:
        ex = _open(Path(path)).exifData()
    except Exception:  # noqa: BLE001 - exiv2 raises its own Exiv2Error for files it does not read
        return ExifInfo(), DngTags()

    def first(reader, *names):
        for n in names:
            v = reader(ex, n)
            if v is not None:
                return v
        return None

    dto = None
    s = first(_text, "Exif.Photo.DateTimeOriginal", "Exif.Image.DateTimeOriginal", "Exif.Image.DateTime")
    if s:
        try:
            dto = _dt.datetime.strptime(s[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            dto = None
    info = ExifInfo(
        make=_text(ex, "Exif.Image.Make"),
        # Camera-native DNGs (Blackmagic) carry only UniqueCameraModel.
        model=first(_text, "Exif.Image.Model", "Exif.Image.UniqueCameraModel"),
        lens=_text(ex, "Exif.Photo.LensModel"),
        exposure_time_s=first(_number, "Exif.Photo.ExposureTime", "Exif.Image.ExposureTime"),
        f_number=first(_number, "Exif.Photo.FNumber", "Exif.Image.FNumber"),
        iso=first(_number, "Exif.Photo.ISOSpeedRatings", "Exif.Image.ISOSpeedRatings"),
        focal_length_mm=first(_number, "Exif.Photo.FocalLength", "Exif.Image.FocalLength"),
        datetime_original=dto,
        artist=_text(ex, "Exif.Image.Artist"),
        software=_text(ex, "Exif.Image.Software"),
    )
    noise = None
    exiv2 = _exiv2()
    it = ex.findKey(exiv2.ExifKey("Exif.Image.NoiseProfile"))
    if it != ex.end() and it.count() >= 2:
        s_, o_ = float(it.toFloat(0)), float(it.toFloat(1))
        if s_ >= 0 and o_ >= 0:
            noise = (s_, o_)  # first plane's (scale S, offset O): var = S x + O on [0, 1]
    return info, DngTags(noise, _dng_white(ex), _opcode_list2(ex))


def complete(info: ExifInfo, libraw: ExifInfo) -> ExifInfo:
    """``info`` with its missing fields taken from ``libraw`` (what LibRaw parsed)."""
    return replace(info, **{k: getattr(libraw, k) for k in info.__dataclass_fields__
                            if getattr(info, k) is None and getattr(libraw, k) is not None})


def _target_key(datum) -> str | None:
    """Where a RAW's EXIF datum goes in the output, or None to leave it out."""
    exiv2 = _exiv2()
    group, name = datum.groupName(), datum.tagName()
    if group == "Image":
        if name in _IMAGE_KEEP:
            return datum.key()
        photo = exiv2.ExifKey(datum.tag(), "Photo")
        return photo.key() if not photo.tagName().startswith("0x") and name not in _PHOTO_DROP else None
    if group.startswith(_GROUPS_DROP_PREFIX) or group == "MakerNote":
        return None
    if group == "Photo" and name in _PHOTO_DROP:
        return None
    return datum.key()


def _set_missing(ex, info: ExifInfo) -> None:
    """Fill the fields the RAW's EXIF lacks from what LibRaw parsed (CRW and Kodak files, ...)."""
    exiv2 = _exiv2()

    def missing(*keys) -> bool:
        return all(ex.findKey(exiv2.ExifKey(k)) == ex.end() for k in keys)

    def rational(x: float, limit: int = 1000) -> exiv2.URationalValue:
        f = Fraction(x).limit_denominator(limit)
        return exiv2.URationalValue([(f.numerator, f.denominator)])

    if info.make and missing("Exif.Image.Make"):
        ex["Exif.Image.Make"] = info.make
    if info.model and missing("Exif.Image.Model"):
        ex["Exif.Image.Model"] = info.model
    if info.artist and missing("Exif.Image.Artist"):
        ex["Exif.Image.Artist"] = info.artist
    if info.lens and missing("Exif.Photo.LensModel"):
        ex["Exif.Photo.LensModel"] = info.lens
    if info.exposure_time_s and missing("Exif.Photo.ExposureTime"):
        t = clean_exposure_time(info.exposure_time_s)
        ex["Exif.Photo.ExposureTime"] = exiv2.URationalValue([(t.numerator, t.denominator)])
    if info.f_number and missing("Exif.Photo.FNumber"):
        ex["Exif.Photo.FNumber"] = rational(round(info.f_number, 1), 10)
    if info.iso and missing("Exif.Photo.ISOSpeedRatings"):
        ex["Exif.Photo.ISOSpeedRatings"] = exiv2.UShortValue(int(round(min(info.iso, 65535))))
    if info.focal_length_mm and missing("Exif.Photo.FocalLength"):
        ex["Exif.Photo.FocalLength"] = rational(info.focal_length_mm)
    if info.datetime_original and missing("Exif.Photo.DateTimeOriginal"):
        ex["Exif.Photo.DateTimeOriginal"] = info.datetime_original.strftime("%Y:%m:%d %H:%M:%S")


def copy_metadata(src: str | Path | None, dst: str | Path, info: ExifInfo, size: tuple[int, int]) -> str | None:
    """Copy ``src``'s EXIF, XMP and IPTC into the written image ``dst`` (JPEG, WebP, TIFF or PNG), with
    Orientation 1, ``size = (width, height)`` as the pixel dimensions, rawdev as the software, and the
    fields of ``info`` wherever the RAW's EXIF lacks them.

    Returns None, or a one-line notice saying what could not be copied; never raises for metadata.
    """
    exiv2 = _exiv2()
    notice = None
    src_exif = src_xmp = src_iptc = None
    if src is not None:
        try:
            image = _open(Path(src))
            src_exif, src_xmp, src_iptc = image.exifData(), image.xmpData(), image.iptcData()
        except Exception as e:  # noqa: BLE001
            notice = f"metadata not copied ({_reason(e)}); basic EXIF written from LibRaw's fields"
    try:
        out = _open(Path(dst))
        ex = out.exifData()
        if src_exif is not None:
            for d in src_exif:
                key = _target_key(d)
                if key is None or ex.findKey(exiv2.ExifKey(key)) != ex.end():
                    continue
                if d.tagName() == "ExposureTime" and d.count() == 1:
                    # 10/2500 and 435/100000 as the camera showed them: 1/250, 1/230
                    t = clean_exposure_time(float(d.toFloat(0))) if d.toFloat(0) > 0 else None
                    if t is not None:
                        ex[key] = exiv2.URationalValue([(t.numerator, t.denominator)])
                        continue
                ex.add(exiv2.ExifKey(key), d.value())
        _set_missing(ex, info)
        ex["Exif.Image.Orientation"] = exiv2.UShortValue(1)
        ex["Exif.Image.Software"] = software()
        ex["Exif.Photo.PixelXDimension"] = exiv2.ULongValue(int(size[0]))
        ex["Exif.Photo.PixelYDimension"] = exiv2.ULongValue(int(size[1]))
        if src_xmp is not None and src_xmp.count():
            xmp = out.xmpData()
            for d in src_xmp:
                xmp.add(exiv2.XmpKey(d.key()), d.value())
            for key, value in (("Xmp.tiff.Orientation", "1"), ("Xmp.exif.PixelXDimension", str(size[0])),
                               ("Xmp.exif.PixelYDimension", str(size[1])), ("Xmp.tiff.ImageWidth", str(size[0])),
                               ("Xmp.tiff.ImageLength", str(size[1]))):
                if xmp.findKey(exiv2.XmpKey(key)) != xmp.end():
                    xmp[key] = value
        if src_iptc is not None and src_iptc.count():
            iptc = out.iptcData()
            for d in src_iptc:
                iptc.add(d)
        out.writeMetadata()
    except Exception as e:  # noqa: BLE001
        return f"metadata not written ({_reason(e)})"
    return notice


def _reason(e: Exception) -> str:
    return " ".join(str(e).split())[:120] or type(e).__name__


def read_fields(path: str | Path) -> MetadataFields:
    """Every EXIF, XMP and IPTC field of ``path`` as ``{key: text}`` (exiv2's rendering)."""
    image = _open(Path(path))
    out = MetadataFields()
    for data in (image.exifData(), image.xmpData(), image.iptcData()):
        for d in data:
            out.setdefault(d.key(), d.toString())
    out["pixel_size"] = f"{image.pixelWidth()}x{image.pixelHeight()}"
    return out
