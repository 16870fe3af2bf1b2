"""Monochrome sensors (one sample per pixel, no colour filter): developed as grey through LibRaw, with
orientation, exposure, half-size and float output, and reported developable by ``info``."""

from __future__ import annotations

import numpy as np
import pytest

from rawdev.pipeline import develop
from rawdev.synthetic import write_mono_dng

from conftest import run_cli, srgb_to_linear


def _ramp(tmp_path, orientation=1):
    # up to the clip point: LibRaw takes a data maximum above 0.75 of white as white (its
    # adjust_maximum_thr), so a ramp stopping short of it would come out brighter
    lum = np.tile(np.linspace(0.02, 1.0, 160), (120, 1))
    return write_mono_dng(tmp_path / "mono.dng", lum, orientation=orientation), lum


def test_a_monochrome_file_develops_as_grey(tmp_path):
    path, lum = _ramp(tmp_path)
    res = develop(path, output_bits=16)
    img = res.image.astype(np.float64) / 65535
    assert res.backend == "libraw-mono" and img.shape == (120, 160, 3)
    assert any("monochrome sensor: developed as grey" in n for n in res.notices)
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    np.testing.assert_allclose(srgb_to_linear(img[..., 1]), lum, atol=2e-3)  # the stored values, sRGB-encoded
    brighter = develop(path, output_bits=None, curve="linear", exposure_ev=1.0).image[..., 1]
    np.testing.assert_allclose(brighter, np.minimum(2 * lum, 1.0), atol=2e-3)


@pytest.mark.parametrize("orientation", [6, 3])
def test_orientation_half_size_and_float(tmp_path, orientation):
    path, _ = _ramp(tmp_path, orientation)
    turned = develop(path).image
    assert turned.shape == ((160, 120, 3) if orientation == 6 else (120, 160, 3))
    assert develop(path, half_size=True).image.shape[:2] == (turned.shape[0] // 2, turned.shape[1] // 2)
    assert develop(path, output_bits=32, curve="linear").image.dtype == np.float32


def test_cli_develop_and_info(tmp_path):
    path, _ = _ramp(tmp_path)
    r = run_cli("develop", path, "-o", tmp_path / "o.jpg")
    assert r.returncode == 0, r.stderr
    r = run_cli("info", path)
    assert r.returncode == 0 and "yes: a monochrome sensor" in r.stdout and "none: a monochrome sensor" in r.stdout
