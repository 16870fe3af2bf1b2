"""``--size``: the box an output fits within, resizing in linear light (Lanczos-3 after an area
average), the develop (every orientation's sides, the same picture as the full develop made smaller,
the noise reduction left out for small outputs, looks and wide spaces), batch, and bad values."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from rawdev.config import PipelineConfig
from rawdev.io.raw import read_raw
from rawdev.pipeline import NO_NOISE_REDUCTION_BELOW, develop_raw
from rawdev.stages.resize import fit_within, lanczos3_kernel, resize_linear
from rawdev.stages.tone import quantise, quantise_scale
from rawdev.synthetic import demo_scene, write_dng

from conftest import run_cli


@pytest.mark.parametrize("size, box, want", [
    ((6000, 4000), (2048, 2048), (2048, 1365)),
    ((4000, 6000), (2048, 2048), (1365, 2048)),
    ((6000, 4000), (1920, 1080), (1620, 1080)),  # the height binds
    ((6000, 4000), (8000, 8000), (6000, 4000)),  # never enlarged
    ((6000, 4000), (6000, 3999), (5998, 3999)),
    ((5, 3000), (100, 100), (1, 100)),  # at least one pixel
])
def test_fit_within_keeps_proportions_and_never_enlarges(size, box, want):
    assert fit_within(*size, box) == want


def test_a_grating_averages_its_light_not_its_codes():
    """One-pixel black and white lines: half of white's light (encoded 0.735), not encoded 0.5,
    which is 21 % of it (the gamma error of resizing encoded values)."""
    img = np.zeros((64, 96, 3), np.float32)
    img[:, ::2] = 1.0
    out = resize_linear(img, (24, 16))
    assert out.shape == (16, 24, 3)
    np.testing.assert_allclose(out[2:-2, 2:-2], 0.5, atol=0.01)


@pytest.mark.parametrize("shape, size", [((300, 450), (100, 67)), ((300, 450), (449, 300)), ((61, 97), (13, 8)),
                                         ((900, 1200), (50, 38))])
def test_flat_stays_flat_and_nothing_goes_below_zero(shape, size):
    flat = np.full(shape + (3,), 0.37, np.float32)
    np.testing.assert_allclose(resize_linear(flat, size), 0.37, rtol=1e-5)
    edge = np.zeros(shape + (3,), np.float32)
    edge[:, shape[1] // 2:] = 4.0  # a hard edge far above white: Lanczos rings on both sides
    out = resize_linear(edge, size)
    assert out.min() >= 0.0 and out.max() > 4.0  # the overshoot above white is kept for float outputs


@pytest.mark.parametrize("size", [(80, 60), (300, 225), (640, 480)])
def test_the_filter_matches_pillows_lanczos(size):
    """The stretched Lanczos low-pass sampled by Lanczos-4 interpolation (after the area average down to
    REDUCING_GAP times the target, for 80 x 60) against Pillow's Lanczos evaluated at every output
    pixel, on a detailed 800 x 600 picture."""
    rng = np.random.default_rng(0)
    img = np.repeat(np.repeat(rng.random((150, 200, 3)).astype(np.float32), 4, 0), 4, 1)
    img += 0.1 * rng.random(img.shape).astype(np.float32)
    full = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c])).resize(size, Image.Resampling.LANCZOS))
                     for c in range(3)], -1)
    psnr = 10 * np.log10(1 / np.mean((resize_linear(img, size) - np.maximum(full, 0)) ** 2))
    assert psnr > 40, psnr


def test_the_kernel_is_lanczos_stretched():
    k = lanczos3_kernel(2.0)
    assert len(k) == 13 and k.sum() == pytest.approx(1.0) and k[6] == k.max()
    assert k[6 + 2] == pytest.approx(0.0, abs=1e-7) and k[6 + 1] > 0 > k[6 + 3]  # zeros at whole stretched lobes
    np.testing.assert_allclose(lanczos3_kernel(1.0), np.eye(7)[3], atol=1e-7)  # no reduction: nothing blurred


def test_enlarging_is_refused():
    with pytest.raises(ValueError, match="smaller"):
        resize_linear(np.zeros((10, 10, 3), np.float32), (11, 10))


@pytest.fixture(scope="module")
def scene_dng(tmp_path_factory):
    return write_dng(tmp_path_factory.mktemp("size") / "s.dng", demo_scene(240, 160), pattern="GBRG", orientation=6)


def test_the_develop_is_the_full_develop_made_smaller_in_linear_light(scene_dng):
    raw = read_raw(scene_dng)
    cfg = PipelineConfig(output_bits=16, size=(100, 100))
    got = develop_raw(raw, cfg).image
    full = develop_raw(raw, replace(cfg, size=None, output_bits=32, curve="linear")).image
    assert raw.data.shape == (240, 160) and full.shape == (160, 240, 3)  # orientation 6: turned upright
    want = quantise(resize_linear(full, (100, 67)) * quantise_scale(16, "srgb"), 16, "srgb")
    assert got.shape == (67, 100, 3) and got.dtype == np.uint16
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 8])
def test_the_box_applies_to_the_turned_picture(tmp_path, orientation):
    """The scene is 240 x 160 upright, stored turned by ``orientation``: a 100 x 40 box holds it at
    60 x 40 (applied to the stored 160 x 240 it would be 27 x 40, turned 40 x 27)."""
    src = write_dng(tmp_path / "o.dng", demo_scene(240, 160), orientation=orientation)
    r = run_cli("develop", src, "-o", tmp_path / "o.png", "--size", "100x40")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "o.png") as im:
        assert im.size == (60, 40) and "icc_profile" in im.info


def test_wide_spaces_float_outputs_and_looks(scene_dng):
    raw = read_raw(scene_dng)
    p3 = develop_raw(raw, PipelineConfig(colorspace="display-p3", output_bits=16, size=(50, 50))).image
    assert p3.shape == (33, 50, 3) and p3.dtype == np.uint16
    hot = develop_raw(raw, PipelineConfig(output_bits=32, exposure_ev=2.0, size=(50, 50))).image
    assert hot.dtype == np.float32 and hot.max() > 1.0  # above white, as --bits 32 keeps it
    look = develop_raw(raw, PipelineConfig(look="camera", size=(50, 50))).image  # no preview: neutral
    plain = develop_raw(raw, PipelineConfig(size=(50, 50))).image
    assert look.shape == plain.shape and np.abs(look.astype(int) - plain.astype(int)).max() <= 1


def test_small_outputs_skip_the_noise_reduction(tmp_path):
    """The downscale averages 36 or more pixels into each output pixel below a sixth of the side:
    the noise reduction would cost more detail than noise (benchmarks/resize.py)."""
    src = write_dng(tmp_path / "n.dng", np.clip(demo_scene(300, 200) * 0.5, 0, 1), shot=5e-3, read=3e-5, seed=4)
    raw = read_raw(src)

    def denoised(box: int) -> bool:
        return any("noise reduction" in n for n in develop_raw(raw, PipelineConfig(size=(box, box))).notices)

    assert denoised(300) and denoised(150)  # the full develop, and half its side
    cut = int(300 * NO_NOISE_REDUCTION_BELOW)
    assert denoised(cut + 2) and not denoised(cut) and not denoised(20)


def test_batch_takes_the_size_too(scene_dng, tmp_path):
    r = run_cli("batch", scene_dng.parent, "-o", tmp_path / "out", "--size", "64x40", "-j", "1")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out" / "s.jpg") as im:
        assert im.size == (60, 40)


@pytest.mark.parametrize("value", ["0", "12xx", "x100", "70000", "-5", "1920x"])
def test_bad_sizes_are_one_line_and_exit_2(scene_dng, tmp_path, value):
    r = run_cli("develop", scene_dng, "-o", tmp_path / "x.jpg", "--size", value)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--size" in r.stderr
    assert not (tmp_path / "x.jpg").exists()


def test_the_input_is_kept_unless_consumed():
    img = np.random.default_rng(1).random((60, 90, 3)).astype(np.float32)
    keep = img.copy()
    a = resize_linear(img, (40, 27))
    np.testing.assert_array_equal(img, keep)
    b = resize_linear(img, (40, 27), consume=True)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("orientation", [1, 6])
def test_previews_fit_the_box_too(tmp_path, orientation):
    """``--preview --size``: the embedded preview made smaller in linear light (turned first); one
    that already fits, stored upright, is copied byte for byte as without --size."""
    from rawdev.io.preview import read_preview

    scene = demo_scene(240, 160)
    prev = quantise(scene.astype(np.float32) * quantise_scale(8, "srgb"), 8, "srgb")
    src = write_dng(tmp_path / "p.dng", scene, orientation=orientation, preview=prev)
    r = run_cli("develop", src, "--preview", "-o", tmp_path / "small.jpg", "--size", "120")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "small.jpg") as im:
        assert im.size == (120, 80)
        got = np.asarray(im.convert("RGB"), np.float32)
    from rawdev.stages.tone import srgb_decode, srgb_encode

    want = srgb_encode(resize_linear(srgb_decode(prev.astype(np.float32) / 255), (120, 80))) * 255
    assert np.abs(got - want)[4:-4, 4:-4].mean() < 3  # (two JPEG encodings apart)
    r = run_cli("batch", src, "--preview", "-o", tmp_path / "out", "--size", "100x40", "-j", "1")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out" / "p.jpg") as im:
        assert im.size == (60, 40)
    r = run_cli("develop", src, "--preview", "-o", tmp_path / "same.jpg", "--size", "1000")
    assert r.returncode == 0, r.stderr
    if orientation == 1:
        assert (tmp_path / "same.jpg").read_bytes() == read_preview(src).jpeg
    with Image.open(tmp_path / "same.jpg") as im:
        assert im.size == (240, 160)


@pytest.mark.parametrize("name", ["canon_powershot_g1.crw", "canon_eos_6d_acr_lossy_linear.dng", "nikon_d1.nef"])
def test_real_files_and_libraw_rendered_sensors(name):
    """A 4-colour sensor and a linear DNG are LibRaw's renders (no mosaic here: the box once divided
    by its zero width); a Bayer NEF the demosaicking route. Each is the full develop made smaller."""
    from rawdev.pipeline import develop

    from conftest import shared_path

    path = shared_path("raw", name)
    full = develop(path, output_bits=32, curve="linear")
    h, w = full.image.shape[:2]
    small = develop(path, output_bits=None, size=(200, 200))
    size = fit_within(w, h, (200, 200))
    assert small.image.shape == (size[1], size[0], 3) and max(size) == 200
    want = np.clip(resize_linear(full.image, size), 0, 1)
    from rawdev.stages.tone import srgb_encode

    assert np.abs(small.image - srgb_encode(want)).max() < 0.01
    assert small.backend == full.backend


def test_monochrome_sensors(tmp_path):
    from rawdev.synthetic import write_mono_dng

    src = write_mono_dng(tmp_path / "m.dng", demo_scene(240, 160).mean(-1))
    out = develop_raw(read_raw(src), PipelineConfig(size=(60, 60), output_bits=None)).image
    assert out.shape == (40, 60, 3) and np.allclose(out[..., 0], out[..., 2])
