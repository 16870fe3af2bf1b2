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


def test_stored_ones_stand_when_the_preview_agrees():
    """The Nikon D1 and Kodak DC50 store 1, 1, 1: their renders with it match their own previews
    (within the 10 % tolerance), so the stored balance is used, not daylight."""
    for name in ("nikon_d1.nef", "kodak_dc50.kdc"):
        res = develop(_path(name))
        assert res.wb.source == "camera" and res.wb.gains == (1.0, 1.0, 1.0), name


def test_wb_preview_matches_the_embedded_preview():
    from rawdev.io.raw import read_raw
    from rawdev.stages.white_balance import fit_preview
    from rawdev.stages.white_balance import chromaticity_error

    for name in ("nikon_d1.nef", "kodak_dc50.kdc"):
        res = develop(_path(name), wb="preview")
        assert res.wb.source == "preview" and not res.wb.notice, name
        raw = read_raw(_path(name))
        grid, thumb = fit_preview(raw)
        g = np.asarray(res.wb.gains) / res.wb.gains[1]
        assert chromaticity_error(thumb, grid, raw.meta.rgb_cam, tuple(g)) < 0.02, name


def test_non_bayer_goes_through_libraw_with_notice():
    res = develop(_path("canon_powershot_g1.crw"), backend="jdd")
    assert res.backend == "libraw-ahd" and res.requested == "jdd"
    assert any("4-colour" in n and "'jdd' cannot demosaic it" in n for n in res.notices)
    # its as-shot render is off its preview (a visible cast): corrected to the preview, said so
    assert res.wb.source == "preview" and "differs from the embedded preview" in res.wb.notice
    res = develop(_path("canon_eos_6d_acr_lossy_linear.dng"), backend="jdd")
    assert res.backend == "libraw-linear" and any("linear" in n and "'jdd' not used" in n for n in res.notices)


def test_preview_fitted_libraw_develop_renders_once(monkeypatch):
    """The G1's preview fit renders with the develop's own settings, so the develop reuses that
    render (same pixels as rendering again) instead of making it twice."""
    import rawdev.io.raw as raw_io

    path = _path("canon_powershot_g1.crw")
    again = develop(path, output_bits=16)
    real, calls = raw_io.render_libraw, []
    monkeypatch.setattr(raw_io, "render_libraw", lambda *a, **k: calls.append(k) or real(*a, **k))
    import rawdev.backends.libraw as libraw_backend

    monkeypatch.setattr(libraw_backend, "render_libraw", raw_io.render_libraw)
    once = develop(path, output_bits=16)
    assert once.wb.source == "preview" and len(calls) == 1
    assert np.array_equal(once.image, again.image)


def test_info_estimates_the_preview_fit_on_a_quick_render(monkeypatch):
    """`rawdev info` fits the G1's preview on LibRaw's linear-interpolation render (a third of the
    develop's time) and says the gains are an estimate; they stay within 2 % of the develop's, which
    still fits on its own render."""
    import rawdev.backends.libraw as libraw_backend
    import rawdev.io.raw as raw_io
    from rawdev.cli.info import file_info

    path = _path("canon_powershot_g1.crw")
    real, calls = raw_io.render_libraw, []
    monkeypatch.setattr(libraw_backend, "render_libraw", lambda *a, **k: calls.append(k) or real(*a, **k))
    info = file_info(path)["white_balance"]
    assert info["estimate"] and info["source"] == "preview"
    assert [k.get("demosaic") for k in calls] == ["LINEAR"]
    dev = develop(path, output_bits=16)
    assert [k.get("demosaic") for k in calls[1:]] == ["AHD"]  # the develop's own render, once
    assert dev.wb.source == "preview"
    assert np.allclose(info["gains"], dev.wb.gains, rtol=0.02) and not np.allclose(info["gains"], dev.wb.gains, rtol=1e-4)


@pytest.mark.parametrize("wb, flags", [("camera", {"use_camera_wb": True}), ("auto", {"use_auto_wb": True}),
                                       ("daylight", {}), ((2.0, 1.0, 1.5, 1.0), {"user_wb": [2.0, 1.0, 1.5, 1.0]})])
def test_libraw_rendered_wb_options_render_as_libraw_does(wb, flags):
    """On a linear DNG every --wb choice is LibRaw's own render with the same settings."""
    import rawpy

    path = _path("canon_eos_6d_acr_lossy_linear.dng")
    ours = develop(path, wb=wb, output_bits=16, apply_orientation=False)
    with rawpy.imread(str(path)) as r:
        ref = r.postprocess(no_auto_bright=True, output_bps=16, user_flip=0, gamma=(2.4, 12.92), **flags)
    d = ours.image.astype(np.float64) - ref.astype(np.float64)
    assert np.abs(d.reshape(-1, 3).mean(0)).max() < 0.01 * 65535, wb

