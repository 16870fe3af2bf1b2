"""Unit tests of the pipeline's stages: white balance, normalise, highlights, colour, quantise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rawdev.errors import UsageError
from rawdev.stages.colour import apply_matrix
from rawdev.stages.highlights import blend_highlights, check_mode, clip_level, clip_mosaic
from rawdev.stages.normalise import normalise
from rawdev.stages.tone import encode_lut, quantise, quantise_scale, srgb_decode, srgb_encode
from rawdev.stages.white_balance import apply_gains_mosaic, choose_gains, grey_world_gains


class TestWhiteBalance:
    def test_camera_gains_are_relative_to_green(self):
        wb = choose_gains("camera", camera=(2.0, 1.0, 1.5, 1.0), daylight=None)
        assert wb.gains == (2.0, 1.0, 1.5) and wb.source == "camera" and not wb.notice

    def test_custom_multipliers_are_divided_by_green(self):
        assert choose_gains((4.0, 2.0, 3.0), camera=None, daylight=None).gains == (2.0, 1.0, 1.5)
        with pytest.raises(UsageError):
            choose_gains((1.0, -1.0, 1.0), camera=None, daylight=None)

    def test_fallbacks_say_so(self):
        wb = choose_gains("camera", camera=None, daylight=(1.8, 1.0, 1.4))
        assert wb.gains == (1.8, 1.0, 1.4) and wb.source == "daylight" and "daylight" in wb.notice
        wb = choose_gains("camera", camera=None, daylight=None, grey_world=lambda: (2.0, 1.0, 3.0))
        assert wb.gains == (2.0, 1.0, 3.0) and wb.source == "auto" and wb.notice  # the automatic estimate, said so
        with pytest.raises(UsageError):
            choose_gains("tungsten", camera=None, daylight=None)

    def test_grey_world_recovers_a_cast(self):
        """A grey scene seen through gains (0.5, 1, 0.25): grey world finds their inverse."""
        colors = np.tile([[0, 1], [1, 2]], (32, 32))
        scene = np.random.default_rng(0).random((64, 64), dtype=np.float32) * 0.5 + 0.1
        cast = np.array([0.5, 1.0, 0.25], np.float32)[colors] * scene
        r, g, b = grey_world_gains(cast, colors)
        assert g == 1.0 and r == pytest.approx(2.0, rel=0.1) and b == pytest.approx(4.0, rel=0.1)

    def test_apply_gains_by_colour_index(self):
        colors = np.array([[0, 1], [1, 2]])
        m = np.ones((2, 2), np.float32)
        out = apply_gains_mosaic(m, colors, (2.0, 1.0, 3.0))
        assert out is m and np.array_equal(out, [[2.0, 1.0], [1.0, 3.0]])  # in place


class TestNormalise:
    def test_black_and_white_level(self):
        counts = np.array([[512, 16383], [1000, 0]], dtype=np.uint16)
        x = normalise(counts, 512.0, 16383.0)
        assert x.dtype == np.float32
        assert np.allclose(x, [[0.0, 1.0], [488 / 15871, -512 / 15871]])

    def test_per_pixel_black(self):
        x = normalise(np.full((2, 2), 600, np.uint16), np.array([[500, 600], [600, 400]]), 1100.0)
        assert np.allclose(x, [[0.1 / 0.6, 0.0], [0.0, 0.2 / 0.7]])

    @pytest.mark.parametrize("make", [lambda a: a, torch.from_numpy])
    def test_does_not_modify_its_input(self, make):
        """A float32 input (NumPy or torch) is not overwritten: the caller's data are still there."""
        data = np.array([[100.0, 200.0], [300.0, 1000.0]], dtype=np.float32)
        counts = make(data.copy())
        out = normalise(counts, 100.0, 1100.0)
        assert np.array_equal(counts.numpy() if torch.is_tensor(counts) else counts, data)
        assert isinstance(out, np.ndarray) and np.allclose(out, [[0.0, 0.1], [0.2, 0.9]])


class TestHighlights:
    def test_modes_and_clip_level(self):
        assert check_mode("blend") == "blend"
        with pytest.raises(UsageError):
            check_mode("rebuild")
        assert clip_level((2.1, 1.0, 1.6)) == 1.0

    def test_clip_mosaic_in_place(self):
        m = torch.tensor([0.5, 1.5, 2.5])
        assert clip_mosaic(m, 1.2) is m and torch.equal(m, torch.tensor([0.5, 1.2, 1.2]))

    def test_blend_keeps_unclipped_pixels_and_lightness(self):
        """Pixels below the level are untouched; above it dcraw's blend keeps the opponent-space
        lightness (R + G + B) of the unclipped pixel and cuts its chroma to the clipped one's."""
        rgb = torch.tensor([[0.2, 1.8], [0.4, 1.0], [0.6, 1.2]]).reshape(3, 1, 2)
        out = blend_highlights(rgb, 1.0)
        assert torch.equal(out[..., 0], rgb[..., 0])
        assert float(out[:, 0, 1].sum()) == pytest.approx(float(rgb[:, 0, 1].sum()), rel=1e-5)
        chroma = lambda v: float((v - v.mean()).norm())  # noqa: E731
        assert chroma(out[:, 0, 1]) == pytest.approx(chroma(rgb[:, 0, 1].clamp(max=1.0)), rel=1e-4)
        assert blend_highlights(rgb * 0.5, 1.0) is not None and torch.equal(blend_highlights(rgb * 0.5, 1.0), rgb * 0.5)


class TestColour:
    def test_matrix_product_per_pixel(self):
        rgb = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(1))
        m = np.array([[1.5, -0.3, -0.2], [-0.1, 1.2, -0.1], [0.0, -0.4, 1.4]])
        want = torch.einsum("ij,njhw->nihw", torch.tensor(m, dtype=torch.float32), rgb)
        assert torch.allclose(apply_matrix(rgb, m), want, atol=1e-6)
        assert apply_matrix(rgb, None) is rgb


class TestQuantise:
    def test_srgb_round_trip_and_endpoints(self):
        x = torch.linspace(0, 1, 1001, dtype=torch.float64)
        assert torch.allclose(srgb_decode(srgb_encode(x)), x, atol=1e-9)
        assert float(srgb_encode(torch.tensor(0.0031308))) == pytest.approx(0.0031308 * 12.92)

    @pytest.mark.parametrize("bits", [8, 16])
    def test_codes_are_the_rounded_curve(self, bits):
        """quantise(x * scale) is round(sRGB(x) * (2**bits - 1)) up to one code at table-cell edges."""
        x = torch.rand(10000, generator=torch.Generator().manual_seed(2), dtype=torch.float64).float()
        codes = quantise(x * quantise_scale(bits), bits)
        assert codes.dtype == (torch.uint8 if bits == 8 else torch.uint16)
        want = torch.round(srgb_encode(x.double()) * ((1 << bits) - 1))
        assert (codes.to(torch.float64) - want).abs().max() <= 1
        assert (codes.to(torch.float64) == want).float().mean() > 0.95

    def test_linear_clips_and_rounds(self):
        codes = quantise(torch.tensor([-3.0, 0.4, 0.6, 254.6, 300.0]), 8, "linear")
        assert codes.tolist() == [0, 0, 1, 255, 255]
        assert quantise_scale(8, "linear") == 255.0 and quantise_scale(8) == encode_lut(8)[1] - 1
