"""The noise model: estimation from the data (Foi 2008 + Liu 2013), the order of its sources, and
what noise-aware back-ends are told. Synthetic and fast."""

from __future__ import annotations

import numpy as np
import pytest

from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop_raw
from rawdev.stages import noise
from rawdev.stages.noise import NoiseModel, backend_sigma, choose_noise_model, estimate_noise_model, srgb_slope
from rawdev.synthetic import write_dng


def _textured_scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Linear sRGB with smooth ramps over the whole range of levels and dense fine texture in half of
    it (stripes at 2-3 px: the case a one-figure estimator reads as noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    base = 0.02 + 0.85 * (0.5 * x + 0.5 * y)
    tex = 0.25 * np.sin(2.6 * np.pi * np.arange(w)[None, :] / 2.7) * np.sin(np.arange(h)[:, None] * 1.9)
    lum = np.clip(base + np.where(x > 0.5, tex, 0.0), 0.0, 1.0)
    tint = np.array([1.0, 0.9, 0.75]) + 0.05 * rng.standard_normal(3)
    return np.clip(lum[..., None] * tint, 0.0, 1.0)


def _raw(tmp_path, shot, read, *, profile=False, pattern="RGGB", h=256, w=384, seed=0):
    path = write_dng(tmp_path / f"n{shot}_{pattern}.dng", _textured_scene(h, w, seed), pattern=pattern,
                     shot=shot, read=read, seed=seed, noise_profile=profile)
    return read_raw(path)


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
@pytest.mark.parametrize("shot", [1e-3, 1e-2])
def test_estimate_recovers_the_model_despite_texture(tmp_path, pattern, shot):
    read = float(np.exp(2.18 * np.log(shot) + 1.2))  # Brooks2019's tie of read to shot noise
    raw = _raw(tmp_path, shot, read, pattern=pattern)
    assert raw.meta.noise_profile is None
    model = estimate_noise_model(raw)
    assert model.source == "estimate"
    truth = np.sqrt(shot * 0.18 + read)
    for c in range(3):
        assert 0.8 < model.sigma(0.18, c) / truth < 1.25, (c, model)


def test_clean_file_estimates_below_the_jdd_noise_fade(tmp_path):
    """A clean file (14-bit quantisation only) reads as nearly noise-free: jdd-noise runs as jdd."""
    from rawdev.backends.learned import JDD_NOISE_FADE

    raw = _raw(tmp_path, 0.0, 0.0)
    model = estimate_noise_model(raw)
    assert model.sigma(0.18) < 1e-3
    assert backend_sigma(raw, model, (1.0, 1.0, 1.0), encoded=True) < JDD_NOISE_FADE[0]


def test_source_order_noise_then_profile_then_estimate(tmp_path):
    raw = _raw(tmp_path, 1e-3, 1e-6, profile=True)
    assert raw.meta.noise_profile is not None
    assert choose_noise_model(raw, 0.02) == NoiseModel((0.0,) * 3, (0.02**2,) * 3, "--noise")
    prof = choose_noise_model(raw)
    assert prof.source == "profile" and prof.shot[1] == pytest.approx(1e-3) and prof.read[1] == pytest.approx(1e-6)
    raw2 = _raw(tmp_path, 1e-3, 1e-6, profile=False)
    assert choose_noise_model(raw2).source == "estimate"


def test_white_balanced_model_and_backend_sigma(tmp_path):
    m = NoiseModel((1e-3, 2e-3, 3e-3), (1e-6, 2e-6, 3e-6), "profile")
    wb = m.white_balanced((2.0, 1.0, 1.5))
    assert wb.shot == pytest.approx((2e-3, 2e-3, 4.5e-3)) and wb.read == pytest.approx((4e-6, 2e-6, 6.75e-6))
    # the figure a scalar network gets: RMS of the per-pixel encoded std, so a flat grey file gets
    # the model at its level through the curve's slope
    path = write_dng(tmp_path / "flat.dng", np.full((64, 64, 3), 0.18), shot=0.0, read=0.0)
    raw = read_raw(path)
    flat = NoiseModel((1e-3,) * 3, (0.0,) * 3, "profile")
    x = float(np.median(raw.data[::2, 1::2] - 512) / (16383 - 512))  # green level
    s = backend_sigma(raw, flat, (1.0, 1.0, 1.0), encoded=False)
    assert s == pytest.approx(np.sqrt(1e-3 * x), rel=0.35)  # channels differ in level; green in the middle
    assert backend_sigma(raw, choose_noise_model(raw, 0.03), (1.0, 1.0, 1.0), encoded=True) == pytest.approx(0.03)
    assert srgb_slope(0.0) == pytest.approx(12.92)


@pytest.mark.parametrize("profile, noise, source", [(True, None, "the DNG NoiseProfile"), (False, None, "the data"),
                                                     (True, 0.02, "--noise")])
def test_develop_notice_names_the_source(tmp_path, profile, noise, source):
    raw = _raw(tmp_path, 2e-3, 2e-6, profile=profile, h=96, w=128)
    res = develop_raw(raw, PipelineConfig(backend="jdd-noise", noise=noise, output_bits=8))
    assert res.noise_model is not None and any(f"noise model from {source}" in n for n in res.notices), res.notices
    assert res.noise_sigma > 0


def test_estimator_cost_does_not_grow_with_the_image(tmp_path):
    """At most MAX_PATCHES patches per colour are drawn, whatever the image's size."""

    big = np.zeros((2000, 3000), np.uint16) + 600
    calls = []
    real = noise._estimate_channel

    def spy(p):
        calls.append(len(p))
        return real(p)

    raw = _raw(tmp_path, 1e-3, 1e-6, h=64, w=64)
    from dataclasses import replace

    raw = replace(raw, data=big + np.random.default_rng(0).integers(0, 20, big.shape, dtype=np.uint16))
    import unittest.mock as um

    with um.patch.object(noise, "_estimate_channel", spy):
        noise.estimate_noise_model(raw)
    assert max(calls) <= noise.MAX_PATCHES


@pytest.mark.parametrize("profile, source", [(True, "profile"), (False, "estimate")])
def test_info_shows_the_noise_model_and_white_balance_and_their_sources(tmp_path, profile, source):
    from rawdev.cli.info import _human, file_info

    path = write_dng(tmp_path / "i.dng", _textured_scene(96, 128), shot=2e-3, read=2e-6, noise_profile=profile)
    info = file_info(path)
    assert info["noise_model"]["source"] == source and info["noise_model"]["sigma_18"] > 0
    assert info["white_balance"]["source"] == "camera"
    text = _human(info)
    assert "noise model" in text and "WB develop" in text and "(as shot)" in text


def test_immerkaer_is_the_mean_response_to_its_mask():
    """Immerkaer 1996 eq. 3 written out with the 3x3 mask, against the separable second differences;
    and on pure Gaussian noise it reads the noise's sigma."""
    from rawdev.stages.noise import immerkaer_sigma

    p = np.random.default_rng(4).normal(0.0, 0.05, (120, 90)).astype(np.float32)
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    r = sum(mask[i, j] * p[i:i + 118, j:j + 88].astype(np.float64) for i in range(3) for j in range(3))
    want = np.sqrt(np.pi / 2) * np.abs(r).sum() / (6.0 * 88 * 118)
    assert immerkaer_sigma(p) == pytest.approx(want, rel=1e-6)
    assert immerkaer_sigma(p) == pytest.approx(0.05, rel=0.05)


def test_tabulated_constants_are_the_drawn_ones():
    """The texture threshold and the median-to-mean factor are tabulated to spare every run the draw;
    the table must hold exactly what the draws give."""
    assert noise._texture_threshold(noise.PATCH, noise.WEAK_TEXTURE_QUANTILE) == \
        noise._draw_texture_threshold(noise.PATCH, noise.WEAK_TEXTURE_QUANTILE)
    assert noise._median_to_mean(noise.PATCH) == noise._draw_median_to_mean(noise.PATCH)
