"""White balance: the chain as-shot -> preview fit -> grey-edge -> daylight, each estimator on
synthetic data with a known answer, and the whole developer on synthetic DNGs that store no
white balance. Fast; no real files."""

from __future__ import annotations

import numpy as np
import pytest

from rawdev.cameras import XYZ_TO_CAMERA, camera_from_srgb
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop_raw
from rawdev.stages.white_balance import (CameraThumb, PreviewFit, choose_gains, chromaticity_error, grey_edge_gains,
                                         preview_gains)
from rawdev.synthetic import write_dng

FIT = PreviewFit((1.8, 1.0, 1.4), 0.9, (1.0, 1.0))


def _chain(mode, camera=None, daylight=(2.0, 1.0, 1.5), preview=FIT, ones_error=0.02, auto=(1.6, 1.0, 1.2)):
    return choose_gains(mode, camera=camera, daylight=daylight, preview=lambda: preview,
                        ones_error=lambda: ones_error, auto=lambda: auto)


def test_as_shot_wins_when_stored():
    wb = _chain("camera", camera=(2.2, 1.0, 1.3, 1.0))
    assert wb.source == "camera" and wb.gains == (2.2, 1.0, 1.3) and wb.notice is None


def test_stored_ones_stand_unless_the_preview_disagrees():
    assert _chain("camera", camera=(1.0, 1.0, 1.0, 1.0), ones_error=0.06).source == "camera"
    assert _chain("camera", camera=(1.0, 1.0, 1.0, 1.0), ones_error=None).source == "camera"  # no preview
    wb = _chain("camera", camera=(1.0, 1.0, 1.0, 1.0), ones_error=0.4)
    assert wb.source == "preview" and wb.gains == FIT.gains and "differs from the embedded preview" in wb.notice


def test_fallbacks_preview_then_auto_then_daylight():
    wb = _chain("camera")
    assert wb.source == "preview" and "no as-shot white balance" in wb.notice
    wb = _chain("camera", preview=None)
    assert wb.source == "auto" and wb.gains == (1.6, 1.0, 1.2) and "grey-edge" in wb.notice
    wb = _chain("camera", preview=None, auto=None)
    assert wb.source == "daylight" and wb.gains == (2.0, 1.0, 1.5) and "daylight" in wb.notice


def test_explicit_modes():
    assert _chain("preview", camera=(2.2, 1.0, 1.3)).source == "preview"
    assert _chain("preview", preview=None).source == "auto"
    assert _chain("auto", camera=(2.2, 1.0, 1.3)).gains == (1.6, 1.0, 1.2)
    assert _chain("daylight").gains == (2.0, 1.0, 1.5)
    assert _chain("daylight", daylight=None).source == "auto"
    assert _chain((2.0, 1.0, 3.0)).source == "custom"
    with pytest.raises(Exception, match="unknown white balance"):
        _chain("tungsten")


def _scene(h=48, w=64, seed=0, patches=12):
    """A Mondrian of coloured patches on a grey ramp (linear sRGB, in [0.03, 0.8])."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3))
    img[:] = np.linspace(0.1, 0.6, w)[None, :, None]
    for _ in range(patches):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y:y + rng.integers(4, 16), x:x + rng.integers(4, 16)] = rng.uniform(0.03, 0.8, 3)
    return img


def _encode(lin):
    lin = np.clip(lin, 0, 1)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def test_preview_fit_recovers_the_gains_the_preview_was_rendered_with():
    m = camera_from_srgb(np.asarray(XYZ_TO_CAMERA[1]))  # srgb -> camera
    rgb_cam = np.linalg.inv(m)
    rgb_cam = rgb_cam / rgb_cam.sum(1, keepdims=True)
    scene = _scene()
    true = np.array([1.9, 1.0, 1.45])
    cam = (scene @ np.linalg.inv(rgb_cam).T) / true  # what the sensor saw under the illuminant
    preview = np.round(_encode(0.9 * scene) * 255) / 255  # the camera's rendering, 8-bit, exposure differs
    thumb = CameraThumb(cam, np.zeros(cam.shape[:2], bool))
    fit = preview_gains(thumb, preview, rgb_cam)
    assert np.allclose(fit.gains, true, rtol=0.02), fit
    assert chromaticity_error(thumb, preview, rgb_cam, fit.gains) < 0.02
    assert chromaticity_error(thumb, preview, rgb_cam, (1.0, 1.0, 1.0)) > 0.3
    # useless previews: grey-scale, or nothing well exposed
    grey = np.repeat(preview.mean(-1, keepdims=True), 3, -1)
    assert preview_gains(thumb, grey, rgb_cam) is None
    assert preview_gains(thumb, np.zeros_like(preview), rgb_cam) is None


def test_grey_edge_recovers_a_cast():
    """Van de Weijer 2007: the average edge is achromatic, so a cast on every edge is the illuminant."""
    scene = _scene(192, 256, seed=3, patches=400)
    e = np.array([0.6, 1.0, 0.8])
    thumb = CameraThumb(scene * e, np.zeros(scene.shape[:2], bool))
    g = np.array(grey_edge_gains(thumb))
    want = 1 / e
    assert np.allclose(g / g[1], want / want[1], rtol=0.15), g
    flat = CameraThumb(np.full((32, 32, 3), 0.2), np.zeros((32, 32), bool))
    assert grey_edge_gains(flat) is None


def _no_wb_dng(tmp_path, name="nowb.dng", clip=False):
    scene = _scene(96, 128, seed=5)
    if clip:
        scene[10:30, 10:40] = 3.0  # far above the clip point in every channel
    path = write_dng(tmp_path / name, scene, pattern="GRBG", xyz_to_camera=XYZ_TO_CAMERA[2], as_shot=False)
    return path, scene


def _rendered_preview(scene, gains_error=(1.0, 1.0, 1.0)):
    return (np.round(_encode(scene * np.asarray(gains_error)) * 255)).astype(np.uint8)


def test_develop_fits_the_preview_when_the_file_stores_no_white_balance(tmp_path, monkeypatch):
    path, scene = _no_wb_dng(tmp_path)
    preview = _rendered_preview(scene)
    monkeypatch.setattr("rawdev.io.preview.preview_image", lambda p: preview)
    raw = read_raw(path)
    assert raw.meta.camera_wb is None
    res = develop_raw(raw, PipelineConfig(output_bits=None))
    assert res.wb.source == "preview" and "no as-shot white balance" in res.wb.notice
    out = res.image
    ok = (preview.min(-1) > 3) & (preview.max(-1) < 240)
    lin = lambda x: np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    pm, dm = lin(preview[ok] / 255.0).mean(0), lin(out[ok]).mean(0)
    err = np.abs((dm[[0, 2]] / dm[1]) / (pm[[0, 2]] / pm[1]) - 1).max()
    assert err < 0.02, err


def test_develop_without_preview_falls_back_to_auto_then_daylight(tmp_path, monkeypatch):
    from rawdev.errors import UnsupportedFileError

    path, _ = _no_wb_dng(tmp_path)

    def none(p):
        raise UnsupportedFileError("the file holds no embedded preview", p)

    monkeypatch.setattr("rawdev.io.preview.preview_image", none)
    raw = read_raw(path)
    res = develop_raw(raw, PipelineConfig(output_bits=8))
    assert res.wb.source == "auto" and "no usable embedded preview" in res.wb.notice
    monkeypatch.setattr("rawdev.stages.white_balance.grey_edge_gains", lambda thumb: None)
    res = develop_raw(raw, PipelineConfig(output_bits=8))
    assert res.wb.source == "daylight" and "daylight" in res.wb.notice


@pytest.mark.parametrize("highlights", ["clip", "unclip", "blend"])
def test_highlight_modes_keep_clipped_regions_white_with_a_fitted_balance(tmp_path, monkeypatch, highlights):
    """Gains from the preview are normalised like the as-shot ones (smallest 1), so a clipped region
    comes out white with clip and blend; unclip keeps the channels' unequal clip levels (dcraw -H 1:
    a clipped region takes the gains' tint), as it does with an as-shot balance."""
    path, scene = _no_wb_dng(tmp_path, clip=True)
    monkeypatch.setattr("rawdev.io.preview.preview_image", lambda p: _rendered_preview(scene))
    res = develop_raw(read_raw(path), PipelineConfig(output_bits=None, highlights=highlights))
    assert res.wb.source == "preview" and min(res.wb.gains) == pytest.approx(1.0)
    patch = res.image[14:26, 14:36]
    if highlights == "unclip":
        assert patch.max() > 0.99
        return
    assert patch.min() > 0.97, (highlights, patch.min(axis=(0, 1)))
    assert np.ptp(patch.mean(axis=(0, 1))) < 0.02


@pytest.mark.parametrize("shape, size", [((64, 96), (8, 12)), ((101, 77, 3), (13, 9)), ((30, 40), (60, 70)),
                                         ((7, 5), (1, 1))])
def test_area_mean_is_the_mean_over_each_cell(shape, size):
    """Cell (i, j) covers rows floor(i H / h) .. ceil((i + 1) H / h) and the same in columns (neighbouring
    cells share a row or column where the sizes do not divide): checked against the definition, loop by loop."""
    from rawdev.stages.white_balance import area_mean

    x = np.random.default_rng(3).random(shape)
    H, W = shape[:2]
    h, w = size
    want = np.empty((h, w) + shape[2:])
    for i in range(h):
        for j in range(w):
            cell = x[i * H // h:-(-(i + 1) * H // h), j * W // w:-(-(j + 1) * W // w)]
            want[i, j] = cell.mean(axis=(0, 1))
    assert np.allclose(area_mean(x, size), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["bayer-cellmap", "xtrans-array", "no-repeat"])
def test_camera_thumbnail_is_the_per_colour_mean_of_each_cell(kind):
    """Per sub-lattice sums (a repeating CFA cell) or per-colour masks (none) give, in every grid cell,
    the mean of each colour's samples and whether any sample is clipped: checked against the definition."""
    from rawdev.stages.white_balance import _CLIP, camera_thumbnail
    from rawdev.types import CellMap

    rng = np.random.default_rng(5)
    H, W, size = 61, 94, (7, 11)
    m = rng.random((H, W), dtype=np.float32) * 1.02
    if kind == "bayer-cellmap":
        colors = CellMap(np.array([[1, 0], [2, 1]], np.uint8), (H, W))
    elif kind == "xtrans-array":
        cell = rng.integers(0, 3, (6, 6))
        colors = np.tile(cell, (H // 6 + 1, W // 6 + 1))[:H, :W]
    else:
        colors = rng.integers(0, 3, (H, W))
    full = np.asarray(colors)
    thumb = camera_thumbnail(m, colors, size)
    for i in range(size[0]):
        for j in range(size[1]):
            ys = slice(i * H // size[0], -(-(i + 1) * H // size[0]))
            xs = slice(j * W // size[1], -(-(j + 1) * W // size[1]))
            for c in range(3):
                sel = m[ys, xs][full[ys, xs] == c]
                assert thumb.rgb[i, j, c] == pytest.approx(sel.mean() if sel.size else 0.0, rel=1e-5, abs=1e-7)
            assert thumb.clipped[i, j] == (m[ys, xs] >= _CLIP).any()
