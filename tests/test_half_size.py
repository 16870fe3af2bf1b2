"""``--half-size`` (dcraw -h): one pixel per CFA block. The binning itself (every Bayer phase, every
X-Trans phase, odd sizes), the develop (streamed bands and orientations, colours as the full develop,
LibRaw's half_size on real files, LibRaw-rendered sensors halved) and the CLI."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from rawdev.backends.registry import HALF_SIZE
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop, develop_raw
from rawdev.stages.demosaic.half_size import bin_cfa_blocks, block_grid
from rawdev.stages.orientation import apply_orientation
from rawdev.synthetic import demo_scene, write_dng
from rawdev.types import CellMap

from conftest import XTRANS, run_cli, shared_path

BAYER_CELLS = {"RGGB": [[0, 1], [1, 2]], "GRBG": [[1, 0], [2, 1]], "BGGR": [[2, 1], [1, 0]], "GBRG": [[1, 2], [0, 1]]}


@pytest.mark.parametrize("pattern", list(BAYER_CELLS))
@pytest.mark.parametrize("shape", [(8, 10), (7, 9)])
def test_bayer_cells_give_their_red_blue_and_mean_green(pattern, shape):
    cell = np.array(BAYER_CELLS[pattern])
    m = np.random.default_rng(0).random(shape).astype(np.float32)
    out = bin_cfa_blocks(m, cell)
    assert out.shape == (3, shape[0] // 2, shape[1] // 2)
    for y in range(out.shape[1]):
        for x in range(out.shape[2]):
            block, colours = m[2 * y : 2 * y + 2, 2 * x : 2 * x + 2], cell
            for c in range(3):
                assert out[c, y, x] == pytest.approx(block[colours == c].mean(), rel=1e-6)


@pytest.mark.parametrize("roll", [(0, 0), (1, 0), (0, 2), (3, 4), (5, 5), (2, 1)])
def test_xtrans_blocks_of_three_hold_every_colour(roll):
    cell = np.roll(XTRANS, (-roll[0], -roll[1]), axis=(0, 1))
    b, oy, ox = block_grid(cell)
    assert b == 3
    rgb = np.array([0.2, 0.5, 0.9], np.float32)
    m = rgb[np.tile(cell, (10, 10))][:59, :47]  # a flat colour, odd sides
    out = bin_cfa_blocks(m, cell)
    assert out.shape == (3, (59 - oy) // 3, (47 - ox) // 3)
    np.testing.assert_allclose(out, np.broadcast_to(rgb[:, None, None], out.shape), rtol=1e-6)


def test_cells_without_blocks_are_refused():
    with pytest.raises(ValueError, match="4x4"):
        block_grid(np.zeros((4, 4), int))
    with pytest.raises(ValueError, match="no block grid"):
        block_grid(np.ones((6, 6), int))  # all green


def _raw(tmp_path, h, w, pattern, orientation, name="s.dng"):
    scene = demo_scene(w, h) * 1.2  # a little above the clip point too
    if orientation in (5, 6, 7, 8):  # write_dng takes the scene in display orientation
        scene = np.ascontiguousarray(np.swapaxes(scene, 0, 1))
    return read_raw(write_dng(tmp_path / name, scene, pattern=pattern, orientation=orientation))


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("pattern", ["RGGB", "GBRG", "xtrans"])
def test_streamed_half_size_equals_the_whole_binned_image_turned(tmp_path, orientation, pattern):
    raw = _raw(tmp_path, 97, 83, "RGGB" if pattern == "xtrans" else pattern, orientation)
    if pattern == "xtrans":  # a Bayer file's samples relabelled: only the geometry is tested
        h, w = raw.data.shape
        raw = replace(raw, meta=replace(raw.meta, cfa=replace(raw.meta.cfa, kind="xtrans", cell=XTRANS)),
                      colors=CellMap(XTRANS, (h, w)))
    cfg = PipelineConfig(half_size=True, output_bits=None, highlights="unclip", band_rows=5)
    res = develop_raw(raw, cfg)
    assert res.backend == HALF_SIZE
    whole = develop_raw(raw, replace(cfg, band_rows=100_000, apply_orientation=False)).image
    b, oy, ox = block_grid(raw.meta.cfa.cell)
    assert whole.shape == ((97 - oy) // b, (83 - ox) // b, 3)
    np.testing.assert_allclose(res.image, apply_orientation(whole, orientation), rtol=0, atol=1e-6)


def test_half_size_colours_are_the_full_develop_s(tmp_path):
    # a flat colour (no detail for the demosaic to differ on), with highlights clipped in one channel
    scene = np.broadcast_to(np.array([0.9, 0.4, 0.15], np.float32), (64, 96, 3)).copy()
    scene[:, 48:] = [1.3, 0.7, 0.2]
    raw = read_raw(write_dng(tmp_path / "flat.dng", scene, pattern="GRBG"))
    half = develop_raw(raw, PipelineConfig(half_size=True, output_bits=8)).image.astype(int)
    full = develop_raw(raw, PipelineConfig(output_bits=8)).image.astype(int)
    assert half.shape == (32, 48, 3)
    assert np.abs(half[4:-4, 4:20] - full[8:-8:2, 8:40:2]).max() <= 1
    assert np.abs(half[4:-4, 28:-4] - full[8:-8:2, 56:-8:2]).max() <= 1


def test_learned_back_ends_are_not_run(tmp_path):
    raw = _raw(tmp_path, 40, 60, "BGGR", 1)
    res = develop_raw(raw, PipelineConfig(half_size=True, backend="jdd"))
    assert res.backend == HALF_SIZE and res.image.shape == (20, 30, 3)
    assert any("--half-size: back-end 'jdd' not used" in n for n in res.notices)


def test_cli_half_size(tmp_path):
    # a 120 x 80 picture, stored on its side (80 x 120) with orientation 6
    src = write_dng(tmp_path / "r.dng", demo_scene(120, 80), pattern="RGGB", orientation=6)
    assert read_raw(src).data.shape == (120, 80)
    r = run_cli("develop", src, "--half-size", "-o", tmp_path / "r.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "r.png").size == (60, 40)
    r = run_cli("batch", src, "--half-size", "-o", tmp_path / "out", "--quiet", "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "out" / "r.jpg").size == (60, 40)


BAYER_FILES = ["nikon_d1.nef", "blackmagic_pocket_cinema_camera.dng", "kodak_dc50.kdc"]


@pytest.mark.parametrize("name", BAYER_FILES)
def test_real_bayer_files_match_libraw_half_size(name):
    """dcraw's -h, through LibRaw with the same gains: the same image to rounding (74-89 dB measured)."""
    import rawpy

    path = shared_path("raw", name)
    ours = develop(path, half_size=True, output_bits=None, apply_orientation=False)
    g = ours.wb.gains
    with rawpy.imread(str(path)) as raw:
        ref = raw.postprocess(user_wb=[g[0], g[1], g[2], g[1]], gamma=(2.4, 12.92), no_auto_bright=True,
                              output_bps=16, output_color=rawpy.ColorSpace.sRGB, half_size=True, user_flip=0)
    assert ours.image.shape == ref.shape
    d = (ours.image - ref / 65535.0)[5:-5, 5:-5] * 255
    assert 10 * np.log10(255**2 / np.mean(d**2)) > 60


@pytest.mark.parametrize("name", ["canon_powershot_g1.crw", "canon_eos_6d_acr_lossy_linear.dng"])
def test_libraw_rendered_sensors_are_halved(name):
    path = shared_path("raw", name)
    full = develop(path, output_bits=None)
    half = develop(path, half_size=True, output_bits=None)
    h, w = full.image.shape[:2]
    assert half.image.shape == (h // 2, w // 2, 3)
    assert any("--half-size: LibRaw's render halved" in n for n in half.notices)
    np.testing.assert_allclose(half.image.reshape(-1, 3).mean(0), full.image.reshape(-1, 3).mean(0), atol=0.01)
