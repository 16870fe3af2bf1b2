"""``--crop X,Y,W,H``: exactly that part of the full develop, in every orientation and CFA phase,
odd offsets and sizes, on the half-size, resized, look and LibRaw routes; bad values one line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rawdev.config import PipelineConfig
from rawdev.io.raw import read_raw
from rawdev.pipeline import develop_raw
from rawdev.stages.resize import resize_linear
from rawdev.stages.tone import quantise, quantise_scale
from rawdev.synthetic import demo_scene, write_dng

from conftest import run_cli, shared_path

BOX = (37, 21, 101, 55)  # x, y, w, h on the upright 240 x 160 picture: odd everywhere


def _dng(tmp_path, orientation=1, pattern="RGGB", **kw):
    return write_dng(tmp_path / f"c{orientation}{pattern}.dng", demo_scene(240, 160), orientation=orientation,
                     pattern=pattern, **kw)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("pattern", ["GRBG", "BGGR"])
def test_the_crop_is_that_part_of_the_full_develop(tmp_path, orientation, pattern):
    raw = read_raw(_dng(tmp_path, orientation, pattern))
    full = develop_raw(raw, PipelineConfig(output_bits=16)).image
    assert full.shape == (160, 240, 3)
    x, y, w, h = BOX
    part = develop_raw(raw, PipelineConfig(output_bits=16, crop=BOX))
    np.testing.assert_array_equal(part.image, full[y : y + h, x : x + w])
    assert part.shape == (h, w, 3)


def test_half_size_keeps_the_same_part_of_its_smaller_picture(tmp_path):
    raw = read_raw(_dng(tmp_path))
    half = develop_raw(raw, PipelineConfig(half_size=True)).image
    part = develop_raw(raw, PipelineConfig(half_size=True, crop=BOX)).image
    np.testing.assert_array_equal(part, half[10:38, 18:69])  # rounded outwards: 21/2 .. 76/2, 37/2 .. 138/2


def test_size_fits_the_part_and_looks_are_fitted_on_the_whole(tmp_path):
    scene = demo_scene(240, 160)
    prev = quantise(np.clip(scene, 0, 1).astype(np.float32) ** 0.8 * quantise_scale(8, "srgb"), 8, "srgb")
    raw = read_raw(write_dng(tmp_path / "p.dng", scene, preview=prev))
    x, y, w, h = BOX
    lin = develop_raw(raw, PipelineConfig(output_bits=32, curve="linear")).image[y : y + h, x : x + w]
    small = develop_raw(raw, PipelineConfig(output_bits=16, crop=BOX, size=(50, 50))).image
    want = quantise(resize_linear(lin, (50, 27)) * quantise_scale(16, "srgb"), 16, "srgb")
    assert small.shape == (27, 50, 3) and np.abs(small.astype(int) - want.astype(int)).max() <= 1
    looked = develop_raw(raw, PipelineConfig(look="camera")).image
    part = develop_raw(raw, PipelineConfig(look="camera", crop=BOX)).image
    assert np.abs(part.astype(int) - looked[y : y + h, x : x + w].astype(int)).max() <= 1


@pytest.mark.parametrize("name", ["canon_powershot_g1.crw", "nikon_d1.nef"])
def test_real_files(name):
    from rawdev.pipeline import develop

    path = shared_path("raw", name)
    full = develop(path, output_bits=16).image
    part = develop(path, output_bits=16, crop=(101, 203, 333, 222)).image
    np.testing.assert_array_equal(part, full[203:425, 101:434])


def test_cli_develop_and_batch(tmp_path):
    src = _dng(tmp_path, 6)
    r = run_cli("develop", src, "-o", tmp_path / "c.png", "--crop", "37,21,101,55")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == (101, 55)
    r = run_cli("batch", src, "-o", tmp_path / "out", "--crop", "0,0,240,160", "--size", "120", "-j", "1")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out" / f"{src.stem}.jpg") as im:
        assert im.size == (120, 80)


@pytest.mark.parametrize("value, why", [("200,100,41,61", "not inside the 240 x 160 picture"), ("1,2,3", "X,Y,W,H"),
                                        ("1,2,0,4", "X,Y,W,H"), ("a,b,c,d", "X,Y,W,H")])
def test_bad_crops_are_one_line_exit_2(tmp_path, value, why):
    r = run_cli("develop", _dng(tmp_path), "-o", tmp_path / "x.jpg", "--crop", value)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and why in r.stderr, r.stderr
    assert not (tmp_path / "x.jpg").exists()


def test_a_learned_back_end_develops_only_the_part_and_gives_the_same_pixels(tmp_path):
    raw = read_raw(_dng(tmp_path, 6, "GBRG"))
    cfg = PipelineConfig(output_bits=16, backend="jdd-fast")
    full = develop_raw(raw, cfg).image
    x, y, w, h = BOX
    np.testing.assert_array_equal(develop_raw(raw, PipelineConfig(output_bits=16, backend="jdd-fast", crop=BOX)).image,
                                  full[y : y + h, x : x + w])


def test_a_flat_part_or_a_one_pixel_output_is_not_taken_for_a_damaged_file(tmp_path):
    """The flat-picture check (a damaged file must not give a black JPEG with exit 0) refused a crop
    of a flat area and a --size 1 output as "one flat colour"; it judges whole pictures only."""
    img = np.full((120, 160, 3), 0.3)
    img[:, 80:] = 0.6
    src = write_dng(tmp_path / "halves.dng", img)
    for opts, size in ((("--crop", "0,0,40,40"), (40, 40)), (("--size", "1"), (1, 1))):
        r = run_cli("develop", src, "-o", tmp_path / "o.png", "--overwrite", *opts)
        assert r.returncode == 0, r.stderr
        with Image.open(tmp_path / "o.png") as im:
            assert im.size == size
    r = run_cli("develop", src, "-o", tmp_path / "b.png", "--size", "50", "--exposure", "-20")
    assert r.returncode == 1 and "flat colour" in r.stderr  # a whole picture is still judged
    assert not (tmp_path / "b.png").exists()


@pytest.mark.parametrize("command", ["develop", "batch"])
def test_crop_with_preview_is_refused_not_dropped(tmp_path, command):
    r = run_cli(command, _dng(tmp_path), "-o", f"{tmp_path / 'out'}/", "--preview", "--crop", "0,0,10,10")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--preview" in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("highlights", ["unclip", "blend", "reconstruct"])
def test_highlight_modes_and_noise_reduction_see_the_whole_picture(tmp_path, highlights):
    """Each region reads its real context (reconstruction's binned picture, the noise reduction's
    margin, auto-brightening's statistics are the whole picture's): still the same pixels."""
    raw = read_raw(write_dng(tmp_path / "hl.dng", demo_scene(300, 200) * 1.5, orientation=6, pattern="GRBG",
                             shot=2e-3, read=1e-5))
    cfg = PipelineConfig(output_bits=16, highlights=highlights, auto_bright=True)
    full = develop_raw(raw, cfg).image
    x, y, w, h = 51, 29, 101, 57
    part = develop_raw(raw, PipelineConfig(output_bits=16, highlights=highlights, auto_bright=True, crop=(x, y, w, h)))
    np.testing.assert_array_equal(part.image, full[y : y + h, x : x + w])
    assert any("noise reduction" in n for n in part.notices)
