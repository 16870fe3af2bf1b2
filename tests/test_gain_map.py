"""DNG GainMap opcodes (lens shading, as phones write them in OpcodeList2): parsed, interpolated as
the DNG SDK does (checked against an independent ``np.interp`` reading), and applied to the mosaic so
that a shaded file develops as the unshaded scene, in every region and band."""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import pytest

from rawdev import pipeline
from rawdev.io.dng_opcodes import parse_opcode_list
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop, develop_raw
from rawdev.stages.gain_map import region_gains
from rawdev.synthetic import _opcode_list2, _shading, demo_scene, write_dng

G = np.array([[2.0, 1.5, 2.2], [1.3, 1.0, 1.4], [2.1, 1.6, 2.4]])
PER_PHASE = [((0, 0, 2, 2), G * 1.1), ((0, 1, 2, 2), G), ((1, 0, 2, 2), G), ((1, 1, 2, 2), G * 0.9)]


def test_opcode_list_round_trip_and_damage():
    data = _opcode_list2(PER_PHASE, 60, 80)
    maps, skipped = parse_opcode_list(data)
    assert skipped == () and len(maps) == 4
    m = maps[3]
    assert (m.top, m.left, m.bottom, m.right, m.row_pitch, m.col_pitch) == (1, 1, 60, 80, 2, 2)
    assert m.spacing == (0.5, 0.5) and m.origin == (0.0, 0.0)
    np.testing.assert_allclose(m.gains[..., 0], G * 0.9, rtol=1e-6)
    other = struct.pack(">IIII", 4, 0x01030000, 1, 4) + b"\0\0\0\0"  # FixBadPixelsConstant, optional
    maps, skipped = parse_opcode_list(struct.pack(">I", 2) + other + data[4:4 + 16 + 76 + 4 * 9])
    assert len(maps) == 1 and skipped == ("FixBadPixelsConstant",)
    with pytest.raises(ValueError):
        parse_opcode_list(data[:-3])


@pytest.mark.parametrize("window", [((0, 60), (0, 80)), ((7, 31), (13, 62)), ((59, 60), (0, 1))])
def test_region_gains_are_the_sdk_interpolation(window):
    rng = np.random.default_rng(1)
    specs = [((0, 1, 2, 2), rng.uniform(0.8, 2.5, (4, 5))), ((1, 0, 1, 3), rng.uniform(0.8, 2.5, (2, 7)))]
    maps, _ = parse_opcode_list(_opcode_list2(specs, 60, 80))
    expected = np.ones((60, 80))
    for (top, left, rp, cp), g in specs:
        expected[top::rp, left::cp] *= _shading(g, 60, 80)[top::rp, left::cp]
    (a, b), (c, d) = window
    np.testing.assert_allclose(region_gains(maps, (a, b), (c, d), (60, 80)), expected[a:b, c:d], rtol=1e-5)


def _files(tmp_path, preview=False):
    """A scene shaded by PER_PHASE's maps and written with them, and the same scene unshaded; with
    ``preview`` the raw data go to a SubIFD behind an embedded preview, as converters write them."""
    scene = demo_scene(160, 120) * 0.8
    jpeg = np.full((60, 80, 3), 128, np.uint8) if preview else None
    return (write_dng(tmp_path / "shaded.dng", scene, gain_maps=PER_PHASE, preview=jpeg),
            write_dng(tmp_path / "flat.dng", scene))


@pytest.mark.parametrize("preview", [False, True], ids=["raw-in-IFD0", "raw-in-SubIFD"])
def test_a_shaded_file_develops_as_the_unshaded_scene(tmp_path, preview):
    shaded, flat = _files(tmp_path, preview)
    a = develop(shaded, output_bits=None, curve="linear")
    b = develop(flat, output_bits=None, curve="linear")
    assert any("lens shading corrected with the DNG's 4 GainMap opcode(s)" in n for n in a.notices)
    d = np.abs(a.image - b.image)[4:-4, 4:-4]
    assert d.mean() < 2e-4 and d.max() < 0.01  # 14-bit samples divided by up to 2.6, then multiplied back
    # LibRaw renders without the maps: its corners come out dark
    lib = develop(shaded, backend="libraw", output_bits=None, curve="linear")
    assert "the DNG's lens shading (GainMap opcodes) is not applied by rawdev: LibRaw renders this file" in lib.notices
    corner = (slice(0, 12), slice(0, 12))
    assert lib.image[corner].mean() < 0.6 * b.image[corner].mean()
    assert a.image[corner].mean() == pytest.approx(b.image[corner].mean(), rel=0.01)


def test_shading_is_exact_under_regions_and_bands(tmp_path, monkeypatch):
    shaded, _ = _files(tmp_path)
    raw = read_raw(shaded)
    monkeypatch.setattr(pipeline, "_CLASSICAL_CHUNK", 30)
    cfg = PipelineConfig(backend="menon", output_bits=None, curve="linear", band_rows=8, highlights="reconstruct")
    whole = develop_raw(raw, replace(cfg, band_rows=100_000)).image
    np.testing.assert_allclose(develop_raw(raw, cfg).image, whole, rtol=0, atol=1e-6)
    assert develop_raw(raw, replace(cfg, half_size=True)).image.shape == (60, 80, 3)


def test_info_says_the_file_carries_lens_shading(tmp_path):
    from conftest import run_cli

    shaded, flat = _files(tmp_path)
    r = run_cli("info", shaded)
    assert r.returncode == 0 and "4 GainMap opcode(s) in OpcodeList2, applied to the mosaic" in r.stdout
    assert "lens shading" not in run_cli("info", flat).stdout


def test_a_damaged_opcode_list_is_ignored_with_a_notice(tmp_path, monkeypatch):
    """An OpcodeList2 that does not parse (cut short here) is left out whole; info says so."""
    import rawdev.synthetic as synthetic

    whole = synthetic._opcode_list2
    monkeypatch.setattr(synthetic, "_opcode_list2", lambda maps, h, w: whole(maps, h, w)[:-7])
    path = write_dng(tmp_path / "cut.dng", demo_scene(80, 60), gain_maps=PER_PHASE)
    res = develop(path)
    assert not any("GainMap" in n for n in res.notices) and 5 < res.image.mean() < 250
    from conftest import run_cli

    r = run_cli("info", path)
    assert r.returncode == 0 and "OpcodeList2 (" in r.stdout and "not applied by rawdev" in r.stdout
