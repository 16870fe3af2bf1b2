"""The classical developers' noise reduction (rawdev.stages.denoise) and the numpy (OpenCV) paths of
the default develop: Menon's second executor, the encoding, the torch-free route."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rawdev.config import PipelineConfig
from rawdev.io.raw import read_raw
from rawdev.pipeline import develop_raw, plan_develop
from rawdev.stages.demosaic.menon2007 import demosaic_menon2007
from rawdev.stages.denoise import MIN_SIGMA, chroma_radius, reduce_noise
from rawdev.stages.tone import quantise, quantise_scale, srgb_decode_unclipped
from rawdev.synthetic import demo_scene, write_dng

PHASES = ("RGGB", "GRBG", "GBRG", "BGGR")


@pytest.mark.parametrize("pattern", PHASES)
@pytest.mark.parametrize(("h", "w"), [(2, 2), (3, 5), (17, 33), (64, 81)])
def test_menon_numpy_executor_equals_torch(pattern, h, w):
    # one algorithm (the taps and the steps), two executors: float32 rounding apart, the same image
    x = np.random.default_rng(h * w).random((2, 1, h, w), dtype=np.float32)
    arrays = demosaic_menon2007(x, pattern)
    tensors = demosaic_menon2007(torch.from_numpy(x), pattern).numpy()
    assert arrays.dtype == np.float32 and arrays.shape == (2, 3, h, w)
    np.testing.assert_allclose(arrays, tensors, atol=1e-6, rtol=0)


def test_quantise_arrays_agree_with_tensors():
    # OpenCV's saturating casts round where torch truncates x + 0.5: at most one code, at exact ties
    x = np.random.default_rng(0).random((40, 50, 3), dtype=np.float32) * 1.3 - 0.1
    for bits in (8, 16):
        for curve in ("srgb", "linear"):
            s = np.float32(quantise_scale(bits, curve))
            a = quantise(x * s, bits, curve)
            t = quantise(torch.from_numpy(x * s), bits, curve).numpy()
            assert a.dtype == t.dtype
            assert np.abs(a.astype(np.int64) - t).max() <= 1 and (a != t).mean() < 0.002


def test_decode_of_arrays_is_the_formula():
    x = np.linspace(-0.3, 1.4, 10001, dtype=np.float32)
    np.testing.assert_allclose(srgb_decode_unclipped(x), srgb_decode_unclipped(x.astype(np.float64)), rtol=3e-6,
                               atol=1e-7)


def test_no_reduction_below_the_threshold_and_a_wider_chroma_window_above():
    rgb = np.random.default_rng(1).random((3, 20, 20), dtype=np.float32)
    assert reduce_noise(rgb, MIN_SIGMA * 0.99) is rgb and chroma_radius(MIN_SIGMA * 0.99) == 0
    assert 0 < chroma_radius(MIN_SIGMA) < chroma_radius(12 / 255) <= chroma_radius(1.0)


def test_reduction_removes_noise_and_keeps_a_strong_edge():
    rng = np.random.default_rng(2)
    clean = np.zeros((3, 64, 64), np.float32)
    clean[:, :, :32] = 0.25
    clean[:, :, 32:] = 0.75
    clean[0, :, 32:] = 0.6  # coloured on the right
    sigma = 10 / 255
    noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
    out = reduce_noise(noisy, sigma)
    inner = (slice(None), slice(8, -8))
    err_in = np.sqrt(((noisy - clean)[inner] ** 2).mean())
    err_out = np.sqrt(((out - clean)[inner] ** 2).mean())
    assert err_out < 0.5 * err_in
    # the edge stays an edge: the columns either side still differ by the step
    left, right = out[1, 8:-8, 28].mean(), out[1, 8:-8, 35].mean()
    assert right - left > 0.4


@pytest.fixture(scope="module")
def noisy_dng(tmp_path_factory):
    # shot noise of a high ISO, no NoiseProfile: the estimate decides
    return write_dng(tmp_path_factory.mktemp("nr") / "noisy.dng", demo_scene(180, 123), pattern="GBRG",
                     shot=3e-3, read=2e-5, seed=3, noise_profile=False)


def test_the_default_develop_reduces_noise_it_finds_and_says_so(noisy_dng):
    raw = read_raw(noisy_dng)
    plan = plan_develop(raw, PipelineConfig())
    assert plan.denoise_sigma is not None and plan.denoise_sigma >= MIN_SIGMA
    assert any(n.startswith("noise reduction for sigma") for n in plan.notices)
    assert plan_develop(raw, PipelineConfig(denoise="off")).denoise_sigma is None
    # only the classical back-ends on the encoded mosaic reduce noise
    assert plan_develop(raw, PipelineConfig(backend="malvar")).denoise_sigma is None


def test_reduction_is_exact_in_bands(noisy_dng):
    # each band is demosaicked and reduced with real context: bands of 4 rows give the whole-image result
    raw = read_raw(noisy_dng)
    whole = develop_raw(raw, PipelineConfig(band_rows=4096)).image
    banded = develop_raw(raw, PipelineConfig(band_rows=4)).image
    np.testing.assert_array_equal(whole, banded)
    off = develop_raw(raw, PipelineConfig(denoise="off")).image
    assert np.abs(whole.astype(int) - off).mean() > 1


def test_clean_files_are_not_touched(tmp_path):
    raw = read_raw(write_dng(tmp_path / "clean.dng", demo_scene(160, 120), noise_profile=False))
    plan = plan_develop(raw, PipelineConfig())
    assert plan.denoise_sigma is None
    np.testing.assert_array_equal(develop_raw(raw, PipelineConfig()).image,
                                  develop_raw(raw, PipelineConfig(denoise="off")).image)
