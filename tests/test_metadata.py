"""Metadata: all of a RAW's EXIF (GPS, lens), XMP and IPTC reach JPEG, TIFF and PNG outputs, read back
with exiv2; Orientation is 1 and the dimensions are the output's; unreadable metadata is a notice."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from rawdev.io.metadata import clean_exposure_time, read_fields
from rawdev.pipeline import develop_to_file
from rawdev.synthetic import demo_scene, write_dng

#: Fields written into the RAW, as exiv2 renders them back.
FIELDS = {
    "Exif.GPSInfo.GPSLatitudeRef": "N",
    "Exif.GPSInfo.GPSLatitude": "48/1 51/1 2964/100",
    "Exif.GPSInfo.GPSLongitudeRef": "E",
    "Exif.GPSInfo.GPSLongitude": "2/1 17/1 4044/100",
    "Exif.GPSInfo.GPSAltitude": "35/1",
    "Exif.Photo.LensMake": "Canon",
    "Exif.Photo.LensModel": "Canon EF 50mm f/1.8 STM",
    "Exif.Photo.BodySerialNumber": "0123456789",
    "Xmp.dc.title": 'lang="x-default" Pont des Arts',
    "Xmp.dc.creator": "A. Photographer",
    "Xmp.xmp.Rating": "4",
    "Iptc.Application2.Caption": "Morning light on the Seine",
    "Iptc.Application2.City": "Paris",
    "Iptc.Application2.Keywords": "river",
}


@pytest.fixture(scope="module")
def tagged_dng(tmp_path_factory) -> Path:
    import exiv2

    path = write_dng(tmp_path_factory.mktemp("meta") / "tagged.dng", demo_scene(96, 64), orientation=6)
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    exif, xmp, iptc = image.exifData(), image.xmpData(), image.iptcData()
    for key, value in FIELDS.items():
        if key == "Xmp.dc.title":
            xmp[key] = exiv2.LangAltValue("Pont des Arts")
        elif key.startswith("Exif.GPSInfo.GPSL") and key.endswith(("tude",)):
            exif[key] = exiv2.URationalValue([tuple(int(n) for n in r.split("/")) for r in value.split()])
        elif key == "Exif.GPSInfo.GPSAltitude":
            exif[key] = exiv2.URationalValue([(35, 1)])
        elif key.startswith("Exif"):
            exif[key] = value
        elif key.startswith("Xmp"):
            xmp[key] = value
        else:
            iptc[key] = value
    image.writeMetadata()
    return path


@pytest.mark.parametrize("ext", ["jpg", "tif", "png"])
def test_all_fields_reach_the_output(tmp_path, tagged_dng, ext):
    out = tmp_path / f"o.{ext}"
    notices: list[str] = []
    res = develop_to_file(tagged_dng, out, on_notice=notices.append)
    assert not [n for n in notices if "metadata" in n], notices
    got = read_fields(out)
    for key, value in FIELDS.items():
        assert got.get(key) == value, (key, got.get(key))
    h, w = res.shape[:2]
    assert (w, h) == (96, 64)  # orientation 6 applied: stored 64 x 96
    assert got["pixel_size"] == f"{w}x{h}"
    assert got["Exif.Image.Orientation"] == "1"
    assert (got["Exif.Photo.PixelXDimension"], got["Exif.Photo.PixelYDimension"]) == (str(w), str(h))
    # IFD0 exposure fields of the DNG (TIFF/EP) move to the EXIF sub-IFD; the DNG's own tags do not come.
    assert got["Exif.Photo.ExposureTime"] == "1/125" and got["Exif.Photo.FNumber"] == "56/10"
    assert got["Exif.Image.Make"] == "rawdev" and got["Exif.Image.Software"].startswith("rawdev")
    assert not [k for k in got if k in ("Exif.Image.ColorMatrix1", "Exif.Image.CFAPattern", "Exif.Image.DNGVersion")]
    from PIL import Image

    with Image.open(out) as im:  # an ordinary reader sees the same
        assert im.size == (w, h)
        if ext != "tif":
            assert im.getexif()[274] == 1


def test_unreadable_metadata_still_develops_with_notice(tmp_path, monkeypatch, tagged_dng):
    import rawdev.io.metadata as md

    def broken(path):
        if Path(path).suffix == ".dng":
            raise RuntimeError("simulated exiv2 failure")
        return real(path)

    real = md._open
    monkeypatch.setattr(md, "_open", broken)
    notices: list[str] = []
    out = tmp_path / "o.jpg"
    develop_to_file(tagged_dng, out, on_notice=notices.append)
    assert any("metadata not copied" in n for n in notices), notices
    got = read_fields(out)
    # LibRaw's own fields fill in, exposure as a clean fraction
    assert got["Exif.Image.Orientation"] == "1" and got["Exif.Photo.ExposureTime"] == "1/125"


def test_clean_exposure_times():
    assert clean_exposure_time(4.999998) == Fraction(5)  # LibRaw's float for a 5 s exposure
    assert clean_exposure_time(1 / 125.0001) == Fraction(1, 125)
    assert clean_exposure_time(0.00435) == Fraction(1, 230)
    assert clean_exposure_time(0.6) == Fraction(3, 5)
    with pytest.raises(ValueError):
        clean_exposure_time(0.0)


def test_real_files_keep_camera_names(tmp_path):
    from conftest import shared_path

    crw = shared_path("raw", "canon_powershot_g1.crw")
    out = tmp_path / "g1.jpg"
    develop_to_file(crw, out)
    got = read_fields(out)
    assert got["Exif.Image.Model"] == "Canon PowerShot G1" and got["Exif.Image.Orientation"] == "1"
    assert any(k.startswith("Exif.Canon") for k in got)  # maker notes copied
    from rawdev.cli.info import file_info

    info = file_info(shared_path("raw", "blackmagic_pocket_cinema_camera.dng"))
    assert info["camera"] == "Blackmagic Pocket Cinema Camera"
    assert np.isfinite(file_info(crw)["exposure_time_s"])
