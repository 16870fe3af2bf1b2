"""Round trip: a photo -> a DNG our fixture writes with a known camera -> rawdev develop -> the photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rawdev.cameras import XYZ_TO_CAMERA, camera_from_srgb
from rawdev.pipeline import develop
from rawdev.stages.demosaic import DemosaicMethod, demosaic
from rawdev.stages.tone import srgb_encode
from rawdev.synthetic import demo_scene, write_dng

from conftest import shared_path, srgb_to_linear

PATTERNS = ["RGGB", "BGGR", "GRBG", "GBRG"]
ORIENTATIONS = [1, 3, 6, 8]


def _patch_means(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Mean colour of the interior of each of the 24 demo-scene patches."""
    pw, ph = width // 8, height // 8
    out = []
    for i in range(24):
        r, k = divmod(i, 6)
        y0, x0 = ph // 2 + r * ph, pw + k * pw
        out.append(img[y0 + 4 : y0 + ph - 10, x0 + 4 : x0 + pw - 10].reshape(-1, 3).mean(axis=0))
    return np.array(out)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_chart_colours_every_phase_and_orientation(tmp_path, pattern, orientation):
    w, h = 240, 160
    scene = demo_scene(w, h)
    truth = np.round(srgb_encode(torch.from_numpy(scene)).numpy() * 255)
    path = write_dng(tmp_path / "chart.dng", scene, pattern=pattern, xyz_to_camera=XYZ_TO_CAMERA[1],
                     orientation=orientation, black=(512, 520, 516, 508))
    res = develop(path, backend="malvar")
    assert res.image.shape == (h, w, 3) and res.image.dtype == np.uint8
    assert res.orientation == orientation and res.wb.source == "camera"
    err = np.abs(_patch_means(res.image.astype(float), w, h) - _patch_means(truth, w, h))
    assert err.max() < 1.0, err.max()


def _photo(name: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(shared_path("data", "kodak24", name)).convert("RGB")).astype(np.float64) / 255


@pytest.mark.parametrize("pattern,orientation", zip(PATTERNS, ORIENTATIONS))
def test_photo_round_trip(tmp_path, pattern, orientation):
    photo = _photo("kodim23.png")
    lin = srgb_to_linear(photo)
    cam = XYZ_TO_CAMERA[2]
    path = write_dng(tmp_path / "p.dng", lin, pattern=pattern, xyz_to_camera=cam, orientation=orientation)
    psnr = {}
    for method in ("bilinear", "malvar"):
        out = develop(path, backend=method, output_bits=None).image
        assert out.shape == photo.shape
        d = (out - photo)[10:-10, 10:-10] * 255
        assert np.abs(d.reshape(-1, 3).mean(axis=0)).max() < 1.0
        psnr[method] = 10 * np.log10(255**2 / np.mean(d**2))
    assert psnr["malvar"] > psnr["bilinear"] + 2.0, psnr
    assert psnr["bilinear"] > 28 and psnr["malvar"] > 31, psnr


def test_srgb_domain_demosaic_beats_linear_light(tmp_path):
    """menon-srgb / malvar-srgb: the same methods on the encoded mosaic, decoded after."""
    photo = _photo("kodim19.png")[:256, :384]
    path = write_dng(tmp_path / "p.dng", srgb_to_linear(photo), pattern="GBRG", xyz_to_camera=XYZ_TO_CAMERA[0])
    psnr = {}
    for method in ("malvar", "malvar-srgb", "menon", "menon-srgb"):
        out = develop(path, backend=method, output_bits=None).image
        d = (out - photo)[10:-10, 10:-10] * 255
        assert np.abs(d.reshape(-1, 3).mean(axis=0)).max() < 1.0, method  # no colour shift
        psnr[method] = 10 * np.log10(255**2 / np.mean(d**2))
    assert psnr["malvar-srgb"] > psnr["malvar"] + 1.0, psnr
    assert psnr["menon-srgb"] > psnr["menon"] + 1.0, psnr


def test_pipeline_is_demosaic_then_known_inverse(tmp_path):
    """The developed image equals demosaicking the same mosaic and applying the camera's inverse
    matrix by hand: nothing else (no hidden curve, scale or shift) happens on the way."""
    rng = np.random.default_rng(1)
    lin = np.clip(rng.random((64, 96, 3)) * 0.8, 0, 1)
    cam = XYZ_TO_CAMERA[3]
    path = write_dng(tmp_path / "r.dng", lin, pattern="GBRG", xyz_to_camera=cam, white=65535, black=0)
    out = develop(path, backend="bilinear", output_bits=None, curve="linear").image
    m = camera_from_srgb(cam)
    white = m @ np.ones(3)
    camraw = lin @ m.T / white.max()
    from rawdev.cfa import mosaic

    mos = mosaic(torch.from_numpy(camraw).permute(2, 0, 1), "GBRG")
    rgb = demosaic(mos.double(), "GBRG", DemosaicMethod.BILINEAR).permute(1, 2, 0).numpy()
    wb = rgb * (white.max() / white)  # camera white balance
    expected = np.clip(wb @ np.linalg.inv(m / white[:, None]).T, 0, 1)
    assert np.abs(out - expected).max() < 2e-3


def test_odd_sizes(tmp_path):
    # LibRaw refuses images under about 22 px a side; tiny mosaics are covered by the demosaic tests.
    for h, w in ((65, 47), (101, 77), (64, 99)):
        lin = np.full((h, w, 3), 0.18)
        path = write_dng(tmp_path / f"t{h}x{w}.dng", lin, pattern="GRBG")
        out = develop(path, output_bits=8).image
        assert out.shape == (h, w, 3)
        assert np.abs(out.astype(int) - 118).max() <= 1  # 18 % grey is sRGB 118


@pytest.mark.parametrize("method", ["menon", "menon-srgb", "malvar-srgb"])
def test_pipeline_bands_equal_one_pass(tmp_path, method):
    """The pipeline's row bands (with the back-end's margin) give the whole-image render, also when
    the mosaic is encoded before and decoded after the demosaic; odd height, unclipped highlights."""
    from rawdev.backends.registry import get

    assert 301 > 8 * get(method).margin  # several bands (the pipeline takes at least 8 margins)
    from rawdev.io.raw import read_raw
    from rawdev.pipeline import PipelineConfig, develop_raw

    scene = demo_scene(64, 301) * 1.3  # some samples above the clip point; menon bands: 8 x 16 rows
    path = write_dng(tmp_path / "b.dng", scene, pattern="GRBG", xyz_to_camera=XYZ_TO_CAMERA[3])
    raw = read_raw(path)
    outs = [develop_raw(raw, PipelineConfig(backend=method, output_bits=None, highlights="unclip",
                                           curve="linear", band_rows=rows)).image for rows in (16, 1000)]
    assert np.abs(outs[0] - outs[1]).max() < 1e-6
