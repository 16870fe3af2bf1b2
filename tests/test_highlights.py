"""``--highlights reconstruct``: clipped photosites rebuilt from the colours that did not clip around
them ("inpaint opposed"). The stage on known values, and the develop on a scene whose true values
above the clip point are known: nearer the truth than clip, blend and unclip, a fully blown disc still
white, streamed regions equal to the whole image, every route."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rawdev import pipeline
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop, develop_raw
from rawdev.stages.highlights import opposed_chroma, opposed_mean, reconstruct_mosaic
from rawdev.stages.orientation import apply_orientation
from rawdev.stages.tone import srgb_encode
from rawdev.synthetic import write_dng
from rawdev.types import CellMap

from conftest import XTRANS, run_cli, shared_path

RGGB = np.array([[0, 1], [1, 2]])


def _mosaic(rgb, cell, h, w):
    colours = np.tile(cell, (h // cell.shape[0] + 1, w // cell.shape[1] + 1))[:h, :w]
    return np.asarray(rgb, np.float32)[colours]


@pytest.mark.parametrize("cell", [RGGB, XTRANS], ids=["bayer", "xtrans"])
def test_a_clipped_channel_is_the_opposed_mean_of_the_others(cell):
    clips = np.array([2.0, 1.0, 1.6], np.float32)  # white-balanced clip points: green clips first
    m = _mosaic([0.8, 1.0, 1.25], cell, 24, 30)  # green stuck at its clip point
    out = reconstruct_mosaic(m, cell, clips, np.zeros(3))
    g = _mosaic([0, 1, 0], cell, 24, 30) > 0
    np.testing.assert_allclose(out[g], opposed_mean(np.float32(0.8), np.float32(1.25)), rtol=1e-5)
    np.testing.assert_array_equal(out[~g], m[~g])
    # the image-wide correction is added; a channel never goes down
    out = reconstruct_mosaic(m, cell, clips, np.array([0.0, 0.1, 0.0]))
    np.testing.assert_allclose(out[g], opposed_mean(np.float32(0.8), np.float32(1.25)) + 0.1, rtol=1e-5)
    low = reconstruct_mosaic(m, cell, clips, np.array([0.0, -0.5, 0.0]))
    np.testing.assert_array_equal(low, m)


def test_nothing_clipped_is_left_alone():
    m = _mosaic([0.3, 0.5, 0.7], RGGB, 10, 10)
    assert reconstruct_mosaic(m, RGGB, [1.0, 1.0, 1.0], np.zeros(3)) is m


def test_chroma_is_measured_just_around_the_clipped_area():
    rgb = np.zeros((3, 60, 60), np.float32)
    rgb[0], rgb[1], rgb[2] = 0.4, 0.7, 0.5
    yy, xx = np.mgrid[0:60, 0:60]
    disc = (yy - 30) ** 2 + (xx - 30) ** 2 < 100
    rgb[1][disc] = 1.0  # green clipped in the disc
    chroma = opposed_chroma(rgb, [1.0, 1.0, 1.0])
    assert chroma[1] == pytest.approx(0.7 - float(opposed_mean(np.float32(0.4), np.float32(0.5))), rel=1e-4)
    assert chroma[0] == chroma[2] == 0.0  # red and blue never clipped


def _sky(tmp_path, pattern="RGGB", orientation=1):
    """Linear sRGB, a sky whose blue and green run above the clip point to the right, and a sun disc
    far above it in every channel."""
    h, w = 96, 144
    yy, xx = np.mgrid[0:h, 0:w]
    t = xx / w
    scene = np.stack([0.35 + 0.9 * t, 0.5 + 1.2 * t, 0.7 + 1.6 * t], -1).astype(np.float32) * 0.8
    sun = (yy - 48) ** 2 + (xx - 115) ** 2 < 150
    scene[sun] = 4.0
    stored = scene if orientation == 1 else np.ascontiguousarray(np.swapaxes(scene, 0, 1))
    return write_dng(tmp_path / "sky.dng", stored, pattern=pattern, orientation=orientation), scene, sun


def test_reconstruct_is_nearest_the_true_values_above_white(tmp_path):
    path, scene, sun = _sky(tmp_path)
    over = (scene.max(-1) > 1.0) & ~sun
    over[:, :4] = over[:, -4:] = over[:4] = over[-4:] = False  # the demosaic's mirrored edges
    rmse = {}
    for mode in ("clip", "blend", "unclip", "reconstruct"):
        img = develop(path, highlights=mode, output_bits=32, curve="linear").image
        rmse[mode] = float(np.sqrt(np.mean((img[over] - scene[over]) ** 2)))
    assert rmse["reconstruct"] < 0.7 * min(rmse["clip"], rmse["blend"], rmse["unclip"]), rmse
    # as displayed (8 bits, each channel cut at white), nearer the truth too
    truth = srgb_encode(np.clip(scene, 0, 1)) * 255
    err = {m: np.abs(develop(path, highlights=m).image[over] - truth[over]).mean() for m in ("clip", "reconstruct")}
    assert err["reconstruct"] < 0.5 * err["clip"], err
    # a disc blown in every channel stays white
    img = develop(path, highlights="reconstruct").image
    assert img[sun].min() >= 254


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("pattern", ["GBRG", "xtrans"])
def test_reconstructed_regions_equal_the_whole_image(tmp_path, monkeypatch, orientation, pattern):
    path, _, _ = _sky(tmp_path, "RGGB" if pattern == "xtrans" else pattern, orientation)
    raw = read_raw(path)
    if pattern == "xtrans":  # a Bayer file's samples relabelled: only the geometry is tested
        h, w = raw.data.shape
        raw = replace(raw, meta=replace(raw.meta, cfa=replace(raw.meta.cfa, kind="xtrans", cell=XTRANS)),
                      colors=CellMap(XTRANS, (h, w)))
    monkeypatch.setattr(pipeline, "_CLASSICAL_CHUNK", 30)  # regions 30 wide
    cfg = PipelineConfig(backend="menon", output_bits=None, curve="linear", highlights="reconstruct", band_rows=8)
    streamed = develop_raw(raw, cfg).image
    whole = develop_raw(raw, replace(cfg, band_rows=100_000, apply_orientation=False)).image
    np.testing.assert_allclose(streamed, apply_orientation(whole, orientation), rtol=0, atol=1e-6)
    half = develop_raw(raw, replace(cfg, half_size=True)).image
    assert half.max() > 0.9


def test_cli_and_libraw_rendered_files(tmp_path):
    path, _, _ = _sky(tmp_path)
    r = run_cli("develop", path, "-H", "reconstruct", "-o", tmp_path / "o.jpg")
    assert r.returncode == 0, r.stderr
    g1 = shared_path("raw", "canon_powershot_g1.crw")
    res = develop(g1, highlights="reconstruct")  # LibRaw's rebuild mode for a 4-colour sensor
    assert res.backend == "libraw-ahd" and 5 < res.image.mean() < 250
