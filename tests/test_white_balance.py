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


def test_preview_fit_leaves_out_chroma_smeared_across_edges_by_a_subsampled_jpeg():
    """A 4:2:0 JPEG stores colour at half resolution: next to the edges of saturated patches (a channel
    near 0) the decoded colours are smeared and clipped, and the means over all samples moved the
    fitted gains 1.5 % here; over samples in flat surroundings (``subsampled=True``) 0.3 %."""
    import io

    from PIL import Image

    from rawdev.stages.white_balance import area_mean

    rng = np.random.default_rng(1)
    scene = np.empty((96, 128, 3))
    scene[:] = np.linspace(0.1, 0.6, 128)[None, :, None]
    for _ in range(60):  # saturated patches: each channel 0 with probability 0.3
        y, x = rng.integers(0, 88), rng.integers(0, 120)
        scene[y:y + rng.integers(4, 24), x:x + rng.integers(4, 24)] = rng.uniform(0.02, 0.8, 3) * (rng.random(3) < 0.7)
    m = camera_from_srgb(np.asarray(XYZ_TO_CAMERA[1]))
    rgb_cam = np.linalg.inv(m)
    rgb_cam = rgb_cam / rgb_cam.sum(1, keepdims=True)
    true = np.array([1.9, 1.0, 1.45])
    cam = (scene @ np.linalg.inv(rgb_cam).T) / true
    buf = io.BytesIO()
    Image.fromarray(np.round(_encode(0.9 * scene) * 255).astype(np.uint8)).save(buf, "JPEG", quality=90, subsampling=2)
    jpeg = np.asarray(Image.open(buf), dtype=np.float64) / 255
    size = (48, 64)
    thumb = CameraThumb(area_mean(cam, size), np.zeros(size, bool))
    preview = area_mean(jpeg, size)
    err = {sub: np.abs(np.asarray(preview_gains(thumb, preview, rgb_cam, subsampled=sub).gains) / true - 1).max()
           for sub in (False, True)}
    assert err[True] < 0.005 < err[False], err
    # the sample choice is the same in the chromaticity check
    fit = preview_gains(thumb, preview, rgb_cam, subsampled=True)
    assert chromaticity_error(thumb, preview, rgb_cam, fit.gains, subsampled=True) < 0.002


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


def _bitmap(pixels: np.ndarray):
    """``pixels`` as the embedded preview a reader returns (a bitmap, upright)."""
    from rawdev.io.preview import Preview

    return Preview("bitmap", pixels.shape[1], pixels.shape[0], 1, bitmap=pixels)


def test_develop_fits_the_preview_when_the_file_stores_no_white_balance(tmp_path, monkeypatch):
    path, scene = _no_wb_dng(tmp_path)
    preview = _rendered_preview(scene)
    monkeypatch.setattr("rawdev.io.preview.read_preview", lambda p: _bitmap(preview))
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

    monkeypatch.setattr("rawdev.io.preview.read_preview", none)
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
    monkeypatch.setattr("rawdev.io.preview.read_preview", lambda p: _bitmap(_rendered_preview(scene)))
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


def _tent_mean(m: np.ndarray, full: np.ndarray, cell: np.ndarray, ys: range, xs: range, c: int) -> float:
    """Colour ``c``'s mean over the cell ``ys`` x ``xs`` of every CFA position's sub-lattice linearly
    interpolated to each pixel (weight ``1 - |d| / period`` at distance ``d``, nothing extrapolated),
    written out sample by sample."""
    p, q = cell.shape
    tent = lambda d, n: max(0.0, 1.0 - abs(d) / n)
    num = den = 0.0
    for y in range(m.shape[0]):
        wy = sum(tent(Y - y, p) for Y in ys)
        if wy == 0:
            continue
        for x in range(m.shape[1]):
            if full[y, x] != c:
                continue
            w = wy * sum(tent(X - x, q) for X in xs)
            num, den = num + w * m[y, x], den + w
    return num / den if den else 0.0


@pytest.mark.parametrize("kind", ["bayer-cellmap", "xtrans-array", "no-repeat"])
def test_camera_thumbnail_is_the_per_colour_mean_of_each_cell(kind):
    """A repeating CFA: in every grid cell, the mean of each colour's sub-lattices linearly
    interpolated to every pixel; no repeating cell: the mean of each colour's own samples. Clipped
    where any sample that counts reaches the clip point. Checked against the definitions, loop by loop."""
    from rawdev.stages.white_balance import _CLIP, camera_thumbnail
    from rawdev.types import CellMap

    rng = np.random.default_rng(5)
    H, W, size = 61, 94, (7, 11)
    m = rng.random((H, W), dtype=np.float32) * 1.02
    if kind == "bayer-cellmap":
        cell = np.array([[1, 0], [2, 1]], np.uint8)
        colors = CellMap(cell, (H, W))
    elif kind == "xtrans-array":
        cell = rng.integers(0, 3, (6, 6))
        colors = np.tile(cell, (H // 6 + 1, W // 6 + 1))[:H, :W]
    else:
        cell = None
        colors = rng.integers(0, 3, (H, W))
    full = np.asarray(colors)
    reach = (0, 0) if cell is None else (cell.shape[0] - 1, cell.shape[1] - 1)
    thumb = camera_thumbnail(m, colors, size)
    for i in range(size[0]):
        for j in range(size[1]):
            ys = range(i * H // size[0], -(-(i + 1) * H // size[0]))
            xs = range(j * W // size[1], -(-(j + 1) * W // size[1]))
            for c in range(3):
                if cell is None:
                    sel = m[ys.start:ys.stop, xs.start:xs.stop][full[ys.start:ys.stop, xs.start:xs.stop] == c]
                    want = sel.mean() if sel.size else 0.0
                else:
                    want = _tent_mean(m, full, cell, ys, xs, c)
                assert thumb.rgb[i, j, c] == pytest.approx(want, rel=1e-5, abs=1e-7)
            near = m[max(ys.start - reach[0], 0):ys.stop + reach[0], max(xs.start - reach[1], 0):xs.stop + reach[1]]
            assert thumb.clipped[i, j] == (near >= _CLIP).any()


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_camera_thumbnail_of_a_grey_ramp_is_grey(pattern):
    """Every colour's cell mean is centred on the cell: on a grey ramp rising 1 % of its level per
    pixel across and 0.5 % down the thumbnail has no colour away from the borders. Averaged over
    their own samples only, R and B sit half a pixel either side of the cell's centre in each
    direction, 0.5-1.5 % apart on this ramp (the bias behind half of the tungsten GRBG preview fit's
    1.3 % error)."""
    from rawdev.cfa import pattern_cell
    from rawdev.stages.white_balance import camera_thumbnail

    H, W = 64, 96
    y, x = np.mgrid[0:H, 0:W]
    m = (0.2 * 1.01 ** x * 1.005 ** y).astype(np.float32)
    colors = np.tile(np.array(pattern_cell(pattern)), (H // 2, W // 2))
    rgb = camera_thumbnail(m, colors, (8, 12)).rgb[1:-1, 1:-1].astype(np.float64)
    assert np.abs(rgb / rgb[..., 1:2] - 1).max() < 2e-4


class TestAsShotWhiteXY:
    """DNGs that give the as-shot white as a chromaticity (AsShotWhiteXY) and no AsShotNeutral, as
    Google's Pixel camera app writes them: LibRaw reads no camera multipliers from them."""

    D65 = (0.31271, 0.32902)
    STD_A = (0.44757, 0.40745)

    def test_gains_are_the_reciprocal_of_the_mapped_white(self):
        from rawdev.stages.white_balance import gains_for_white_xy

        cm = np.array([[0.9, 0.3, -0.2], [-0.3, 1.2, 0.1], [0.0, 0.2, 0.7]])
        x, y = self.STD_A
        neutral = cm @ np.array([x / y, 1.0, (1 - x - y) / y])
        r, g, b = gains_for_white_xy(self.STD_A, [(tuple(cm.ravel()), 21)])
        assert g == 1.0
        np.testing.assert_allclose([r, b], [neutral[1] / neutral[0], neutral[1] / neutral[2]], rtol=1e-12)

    def test_two_matrices_are_interpolated_in_inverse_temperature(self):
        from rawdev.stages.white_balance import cct_mccamy, gains_for_white_xy

        cm_a = np.array([[1.1, 0.2, -0.3], [-0.4, 1.3, 0.1], [-0.1, 0.3, 0.9]])
        cm_d65 = np.array([[0.8, 0.3, -0.1], [-0.3, 1.1, 0.2], [0.0, 0.1, 0.6]])
        mats = [(tuple(cm_a.ravel()), 17), (tuple(cm_d65.ravel()), 21)]

        def with_one(cm, xy):
            return gains_for_white_xy(xy, [(tuple(cm.ravel()), 21)])

        assert cct_mccamy(*self.D65) == pytest.approx(6504, abs=5)
        assert gains_for_white_xy((0.30, 0.1858), mats)  # McCamy's epicentre: no division by zero
        assert cct_mccamy(*self.STD_A) == pytest.approx(2856, abs=5)
        # beyond either calibration illuminant the nearer matrix alone; in between, a mixture
        np.testing.assert_allclose(gains_for_white_xy(self.STD_A, mats), with_one(cm_a, self.STD_A), rtol=1e-3)
        np.testing.assert_allclose(gains_for_white_xy(self.D65, mats), with_one(cm_d65, self.D65), rtol=1e-3)
        np.testing.assert_allclose(gains_for_white_xy((0.25, 0.26), mats), with_one(cm_d65, (0.25, 0.26)), rtol=1e-12)
        mid = (0.3457, 0.3585)  # D50
        t = cct_mccamy(*mid)
        g = (1 / t - 1 / 6504) / (1 / 2856 - 1 / 6504)
        np.testing.assert_allclose(gains_for_white_xy(mid, mats), with_one(g * cm_a + (1 - g) * cm_d65, mid), rtol=1e-12)

    def test_a_dng_with_white_xy_develops_as_with_as_shot_neutral(self, tmp_path):
        from rawdev.cameras import XYZ_TO_CAMERA
        from rawdev.io.raw import read_raw
        from rawdev.pipeline import develop
        from rawdev.synthetic import demo_scene

        scene = demo_scene(120, 80)
        xy = write_dng(tmp_path / "xy.dng", scene, xyz_to_camera=XYZ_TO_CAMERA[3], white_xy=self.D65)
        neutral = write_dng(tmp_path / "n.dng", scene, xyz_to_camera=XYZ_TO_CAMERA[3])
        meta = read_raw(xy).meta
        assert meta.white_xy is not None and meta.white_xy.xy == pytest.approx(self.D65)
        np.testing.assert_allclose(meta.camera_wb, read_raw(neutral).meta.camera_wb, rtol=2e-3)
        a, b = develop(xy), develop(neutral)
        assert a.wb.source == b.wb.source == "camera"
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
        from conftest import run_cli

        r = run_cli("info", xy)
        assert r.returncode == 0 and "from AsShotWhiteXY x 0.3127, y 0.3290" in r.stdout

    def test_libraw_renders_get_the_multipliers_libraw_cannot_read(self, tmp_path):
        """A sensor LibRaw renders itself (here a Bayer file relabelled 4-colour) whose as-shot white
        is AsShotWhiteXY: LibRaw is given the multipliers, not told to use its own (it has none)."""
        from dataclasses import replace

        from rawdev.cameras import XYZ_TO_CAMERA
        from rawdev.io.raw import read_raw
        from rawdev.stages.white_balance import libraw_white_balance
        from rawdev.synthetic import demo_scene

        raw = read_raw(write_dng(tmp_path / "xy.dng", demo_scene(60, 40), xyz_to_camera=XYZ_TO_CAMERA[3],
                                 white_xy=self.D65))
        other = replace(raw, meta=replace(raw.meta, cfa=replace(raw.meta.cfa, kind="other")))
        lwb = libraw_white_balance(other, "camera", 0)
        assert lwb.user_wb == raw.meta.camera_wb and not lwb.camera
        plain = read_raw(write_dng(tmp_path / "n.dng", demo_scene(60, 40), xyz_to_camera=XYZ_TO_CAMERA[3]))
        lwb = libraw_white_balance(replace(plain, meta=replace(plain.meta, cfa=replace(plain.meta.cfa, kind="other"))),
                                   "camera", 0)
        assert lwb.camera and lwb.user_wb is None


class TestColourTemperature:
    """``--wb 5500K``: a black body at that temperature made neutral through the file's matrix."""

    @pytest.mark.parametrize("kelvin, xy", [(2856, (0.4476, 0.4074)), (5000, (0.3451, 0.3516)),
                                            (6500, (0.3135, 0.3237)), (10000, (0.2807, 0.2884))])
    def test_planckian_locus(self, kelvin, xy):
        from rawdev.stages.white_balance import planckian_xy

        np.testing.assert_allclose(planckian_xy(kelvin), xy, atol=6e-4)

    @pytest.mark.parametrize("kelvin", [2500, 3200, 5000, 6504, 9000])
    def test_libraw_matrix_route_agrees_with_the_dng_matrix_route(self, tmp_path, kelvin):
        """LibRaw's camera -> sRGB matrix with its daylight multipliers, and the DNG's own XYZ -> camera
        matrix (gains_for_white_xy), map the same temperature to the same gains."""
        from rawdev.stages.white_balance import gains_for_temperature, gains_for_white_xy, planckian_xy
        from rawdev.synthetic import demo_scene

        cam_xyz = XYZ_TO_CAMERA[3]
        meta = read_raw(write_dng(tmp_path / "t.dng", demo_scene(40, 30), xyz_to_camera=cam_xyz)).meta
        via_libraw = gains_for_temperature(kelvin, meta.rgb_cam, meta.daylight_wb)
        via_dng = gains_for_white_xy(planckian_xy(kelvin), [(tuple(np.ravel(cam_xyz)), 21)])
        np.testing.assert_allclose(via_libraw, via_dng, rtol=5e-3)

    def test_develop_and_usage_errors(self, tmp_path):
        from conftest import run_cli
        from rawdev.pipeline import develop
        from rawdev.synthetic import demo_scene

        path = write_dng(tmp_path / "t.dng", demo_scene(60, 40), xyz_to_camera=XYZ_TO_CAMERA[3])
        warm, cool = develop(path, wb="3000K"), develop(path, wb="8000K")
        assert warm.wb.source == cool.wb.source == "temperature"
        assert warm.wb.gains[2] > cool.wb.gains[2] and warm.wb.gains[0] < cool.wb.gains[0]
        assert warm.image[..., 2].mean() > cool.image[..., 2].mean()  # a warm light made neutral: bluer
        as_shot = develop(path).wb.gains  # the scene's white is D65, 0.003 off the Planckian locus
        np.testing.assert_allclose(develop(path, wb="6504K").wb.gains, as_shot, rtol=0.03)
        r = run_cli("develop", path, "--wb", "900K", "-o", tmp_path / "o.jpg")
        assert r.returncode == 2 and "1667 K to 25000 K" in r.stderr
        assert run_cli("develop", path, "--wb", "5500k", "-o", tmp_path / "o.jpg").returncode == 0

    def test_a_temperature_needs_an_rgb_sensor(self, tmp_path):
        from conftest import run_cli, shared_path

        g1 = shared_path("raw", "canon_powershot_g1.crw")
        r = run_cli("develop", g1, "--wb", "5000K", "-o", tmp_path / "o.jpg")
        assert r.returncode == 2 and "needs an RGB sensor" in r.stderr and not (tmp_path / "o.jpg").exists()
        linear = shared_path("raw", "canon_eos_6d_acr_lossy_linear.dng")  # LibRaw renders it, with user_wb
        assert run_cli("develop", linear, "--wb", "5000K", "-o", tmp_path / "l.jpg").returncode == 0


# ------------------------------------------------------------------ --wb area:X,Y,W,H (dcraw -A)


@pytest.mark.parametrize("text, want", [("area:10,20,30,40", (10, 20, 30, 40)), (" AREA:0,0,1,1 ", (0, 0, 1, 1)),
                                        ("camera", None), ("5500K", None)])
def test_area_parses(text, want):
    from rawdev.stages.white_balance import parse_area

    assert parse_area(text) == want


@pytest.mark.parametrize("text", ["area:", "area:1,2,3", "area:1,2,3,0", "area:-1,2,3,4", "area:a,b,c,d", "area:1,2,3,4,5"])
def test_bad_areas_are_usage_errors(text):
    from rawdev.errors import UsageError
    from rawdev.stages.white_balance import parse_area

    with pytest.raises(UsageError, match="area:X,Y,W,H"):
        parse_area(text)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_area_of_the_upright_picture_maps_to_the_stored_one(orientation):
    from rawdev.stages.orientation import apply_orientation
    from rawdev.stages.orientation import stored_box

    stored = np.arange(7 * 10).reshape(7, 10)
    upright = apply_orientation(stored, orientation)
    area = (1, 2, 3, 2)  # x, y, w, h on the upright picture
    y0, y1, x0, x1 = stored_box(area, stored.shape, orientation)
    want = upright[2:4, 1:4]
    assert sorted(stored[y0:y1, x0:x1].reshape(-1)) == sorted(want.reshape(-1))


def _cast_scene(h: int = 120, w: int = 180) -> np.ndarray:
    """A warm-lit scene (the camera balanced for daylight): a grey card at rows 30-60, columns
    40-80, reading (0.50, 0.38, 0.22) in linear sRGB, beside coloured patches."""
    scene = np.empty((h, w, 3))
    scene[:] = (0.30, 0.20, 0.08)
    scene[:, 100:] = (0.10, 0.25, 0.05)
    scene[30:60, 40:80] = (0.50, 0.38, 0.22)
    return scene


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_a_grey_card_area_comes_out_neutral(tmp_path, orientation, pattern):
    src = write_dng(tmp_path / "c.dng", _cast_scene(), orientation=orientation, pattern=pattern)
    raw = read_raw(src)
    as_shot = develop_raw(raw, PipelineConfig(output_bits=None, curve="linear")).image
    card = as_shot[34:56, 44:76].reshape(-1, 3).mean(0)
    assert card[0] / card[2] > 2  # the cast the as-shot balance leaves
    r = develop_raw(raw, PipelineConfig(output_bits=None, curve="linear", wb="area:45,35,30,20"))
    card = r.image[34:56, 44:76].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(card / card[1], 1.0, atol=0.01)
    assert r.wb.source == "area"


def test_areas_outside_blown_or_black_are_one_line_exit_2(tmp_path):
    from conftest import run_cli

    scene = _cast_scene()
    scene[0:20, 0:20] = 4.0  # blown out
    scene[100:120, 0:20] = 0.0  # black
    src = write_dng(tmp_path / "c.dng", scene)
    for area, why in (("area:170,100,20,20", "not inside the 180 x 120 picture"), ("area:0,0,20,20", "blown out"),
                      ("area:0,100,20,20", "no light"), ("area:1,2", "area:X,Y,W,H")):
        r = run_cli("develop", src, "-o", tmp_path / "x.jpg", "--wb", area)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and why in r.stderr, (area, r.stderr)
        assert not (tmp_path / "x.jpg").exists()


def test_area_on_a_libraw_rendered_sensor():
    """The Canon G1's 4-colour CFA is LibRaw's render: gains on it make the area neutral."""
    from conftest import shared_path

    from rawdev.pipeline import develop

    path = shared_path("raw", "canon_powershot_g1.crw")
    full = develop(path, output_bits=None, curve="linear")
    h, w = full.image.shape[:2]
    area = (w // 2, h // 3, 60, 40)  # the house's sunlit wall
    r = develop(path, output_bits=None, curve="linear", wb="area:{},{},{},{}".format(*area))
    patch = r.image[area[1] : area[1] + area[3], area[0] : area[0] + area[2]].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(patch / patch[1], 1.0, atol=0.01)
    assert r.wb.source == "area" and r.backend == full.backend
