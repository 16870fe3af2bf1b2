"""Output colour spaces: each output, converted back to sRGB through its embedded ICC profile by
LittleCMS, lands on the sRGB output (in-gamut colours)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from rawdev.pipeline import PipelineConfig, develop_to_file
from rawdev.stages.output_space import NAMES, get_space
from rawdev.synthetic import demo_scene, write_dng

WIDE = [n for n in NAMES if n != "srgb"]


@pytest.fixture(scope="module")
def scene_dng(tmp_path_factory) -> Path:
    return write_dng(tmp_path_factory.mktemp("cs") / "scene.dng", demo_scene(180, 120))


def _read(path: Path) -> tuple[np.ndarray, bytes]:
    if path.suffix == ".tif":
        import tifffile

        with tifffile.TiffFile(path) as t:
            return t.pages[0].asarray(), t.pages[0].tags[34675].value
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")), im.info["icc_profile"]


def _develop(dng: Path, out: Path, space: str, bits: int) -> tuple[np.ndarray, bytes]:
    develop_to_file(dng, out, PipelineConfig(output_bits=bits, colorspace=space))
    return _read(out)


def _in_gamut(ref_levels: np.ndarray) -> np.ndarray:
    """Pixels not clipped in the sRGB output (the wide spaces hold all of sRGB)."""
    return np.all((ref_levels > 1) & (ref_levels < 254), axis=2)


@pytest.mark.parametrize("space", WIDE)
def test_16_bit_round_trip_within_one_level(tmp_path, scene_dng, space):
    import imagecodecs

    ref, _ = _develop(scene_dng, tmp_path / "srgb.tif", "srgb", 16)
    img, icc = _develop(scene_dng, tmp_path / f"{space}.tif", space, 16)
    assert img.dtype == np.uint16 and icc != _read(tmp_path / "srgb.tif")[1]
    # LittleCMS evaluates the profiles' curves and matrices exactly (NOOPTIMIZE): its default
    # pre-computed table interpolates across the clip at 0 and is off by up to 14 levels there.
    back = imagecodecs.cms_transform(img, icc, imagecodecs.cms_profile("srgb"), colorspace="rgb",
                                     outcolorspace="rgb", intent=1, flags=imagecodecs.CMS.FLAGS.NOOPTIMIZE)
    ref8, back8 = ref / 257.0, back.astype(np.float64) / 257.0
    ok = _in_gamut(ref8)
    assert ok.mean() > 0.5
    assert np.abs(back8 - ref8)[ok].max() <= 1.0


@pytest.mark.parametrize("space", WIDE)
def test_8_bit_profile_matches_the_pixels(tmp_path, scene_dng, space):
    """8 bits: Pillow's ImageCms undoes the embedded profile to within a level of exact arithmetic on
    the stored codes. The distance to the sRGB output is larger (up to 4 levels for Display P3, 7
    for ProPhoto): one code step of a wider space near a channel's zero is several sRGB steps there
    (the sRGB toe is steep), so 8-bit wide-gamut files lose that much; use 16 bits for them."""
    from PIL import Image, ImageCms

    ref, _ = _develop(scene_dng, tmp_path / "srgb.png", "srgb", 8)
    img, icc = _develop(scene_dng, tmp_path / f"{space}.png", space, 8)
    t = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")), "RGB", "RGB",
                                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                flags=ImageCms.Flags.NOOPTIMIZE)
    back = np.asarray(ImageCms.applyTransform(Image.fromarray(img), t)).astype(np.float64)
    sp, srgb = get_space(space), get_space("srgb")
    exact = srgb.encode(sp.decode(img / 255.0) @ np.linalg.inv(sp.matrix_from_srgb()).T) * 255.0
    ok = _in_gamut(ref.astype(np.float64))
    assert np.abs(back - exact)[ok].max() <= 1.0
    assert np.abs(back - ref)[ok].mean() < 0.5


def test_cli_option_and_isp_refusal(tmp_path, scene_dng):
    from conftest import run_cli

    r = run_cli("develop", scene_dng, "-o", tmp_path / "p3.png", "--colorspace", "display-p3")
    assert r.returncode == 0, r.stderr
    _, icc = _read(tmp_path / "p3.png")
    assert icc[128:] == get_space("display-p3").icc()[128:]  # the header holds the creation time
    assert (tmp_path / "p3.png").read_bytes()[24] == 16  # IHDR bit depth: wide spaces default to 16 bits
    r = run_cli("develop", scene_dng, "-o", tmp_path / "x.png", "--colorspace", "prophoto", "-b", "pynet")
    assert r.returncode == 2 and "colorspace" in r.stderr and not (tmp_path / "x.png").exists()


def test_default_bits_follow_format_and_space():
    from rawdev.io.write import default_bits

    assert [default_bits(f, "srgb") for f in ("jpeg", "png", "tiff", "tif")] == [8, 8, 16, 16]
    assert [default_bits(f, "display-p3") for f in ("jpg", "png", "tif")] == [8, 16, 16]
