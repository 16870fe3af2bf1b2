"""Real camera files in ../shared/raw: every one develops, and Bayer files agree with LibRaw."""

from __future__ import annotations

import numpy as np
import pytest

from rawdev.pipeline import develop

from conftest import SHARED

FILES = ["nikon_d1.nef", "blackmagic_pocket_cinema_camera.dng", "kodak_dc50.kdc",
         "canon_powershot_g1.crw", "canon_eos_6d_acr_lossy_linear.dng"]
BAYER = ["nikon_d1.nef", "blackmagic_pocket_cinema_camera.dng", "kodak_dc50.kdc"]


def _path(name):
    p = SHARED / "raw" / name
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p


def _libraw(path, gains, algorithm):
    import rawpy

    with rawpy.imread(str(path)) as raw:
        out = raw.postprocess(
            user_wb=[gains[0], gains[1], gains[2], gains[1]], gamma=(2.4, 12.92), no_auto_bright=True,
            output_bps=16, output_color=rawpy.ColorSpace.sRGB,
            demosaic_algorithm=getattr(rawpy.DemosaicAlgorithm, algorithm),
        )
    return out.astype(np.float64) / 65535


@pytest.mark.parametrize("name", FILES)
def test_every_real_file_develops(name):
    res = develop(_path(name), output_bits=8)
    assert res.image.ndim == 3 and res.image.shape[2] == 3
    assert 5 < res.image.mean() < 250  # neither black nor blown out


@pytest.mark.parametrize("name", BAYER)
def test_bayer_files_match_libraw(name):
    path = _path(name)
    # Same demosaic (bilinear = LibRaw LINEAR): the whole pipeline must agree to near float precision.
    ours = develop(path, backend="bilinear", output_bits=None)
    ref = _libraw(path, ours.wb.gains, "LINEAR")
    d = (ours.image - ref)[10:-10, 10:-10] * 255
    assert 10 * np.log10(255**2 / np.mean(d**2)) > 60
    # Our default (Malvar) against LibRaw's AHD: same colours, different demosaic.
    ours = develop(path, backend="malvar", output_bits=None)
    ref = _libraw(path, ours.wb.gains, "AHD")
    d = (ours.image - ref)[10:-10, 10:-10] * 255
    assert np.abs(d.reshape(-1, 3).mean(axis=0)).max() < 1.5
    assert 10 * np.log10(255**2 / np.mean(d**2)) > 30


def test_missing_white_balance_falls_back_with_notice():
    res = develop(_path("nikon_d1.nef"))
    assert res.wb.source == "daylight"
    assert any("no as-shot white balance" in n for n in res.notices)
    res = develop(_path("kodak_dc50.kdc"))
    assert res.wb.source == "auto"


def test_non_bayer_goes_through_libraw_with_notice():
    res = develop(_path("canon_powershot_g1.crw"))
    assert res.backend == "libraw-ahd" and any("4-colour" in n for n in res.notices)
    res = develop(_path("canon_eos_6d_acr_lossy_linear.dng"))
    assert any("linear" in n for n in res.notices)
