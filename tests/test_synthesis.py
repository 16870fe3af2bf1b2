"""rawdev.train.synthesis: unprocessing, random cameras, noise models."""

from __future__ import annotations

import math

import pytest
import torch

from rawdev.cfa import mosaic
from rawdev.errors import UsageError
from rawdev.train import synthesis as syn


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _photo(n: int = 2, h: int = 16, w: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=_gen(seed))


class TestTransferFunctions:
    def test_round_trip(self):
        x = torch.linspace(-0.2, 1.2, 1001, dtype=torch.float64)
        assert torch.allclose(syn.encode_srgb(syn.decode_srgb(x)), x, atol=1e-12)

    def test_known_values(self):
        assert float(syn.decode_srgb(torch.tensor(1.0))) == pytest.approx(1.0)
        assert float(syn.decode_srgb(torch.tensor(0.04045))) == pytest.approx(0.04045 / 12.92)
        assert float(syn.decode_srgb(torch.tensor(0.5))) == pytest.approx(0.21404, abs=1e-5)

    def test_slope_matches_finite_difference(self):
        x = torch.tensor([0.001, 0.01, 0.1, 0.5, 0.9], dtype=torch.float64)
        h = 1e-7
        fd = (syn.encode_srgb(x + h) - syn.encode_srgb(x - h)) / (2 * h)
        assert torch.allclose(syn.encode_srgb_slope(x), fd, rtol=1e-5)

    def test_smoothstep_inverse(self):
        y = torch.linspace(0, 1, 101, dtype=torch.float64)
        assert torch.allclose(syn.smoothstep(syn.inverse_smoothstep(y)), y, atol=1e-10)


class TestRandomCamera:
    def test_white_stays_white(self):
        m = syn.random_rgb_to_cam(16, generator=_gen())
        assert m.shape == (16, 3, 3)
        assert torch.allclose(m.sum(dim=2), torch.ones(16, 3), atol=1e-5)

    def test_single_camera_is_that_camera(self):
        name = "Canon EOS 5D Mark II"
        m = syn.random_rgb_to_cam(1, generator=_gen(), cameras={name: syn.CAMERA_XYZ_TO_CAM[name]})[0]
        ref = torch.tensor(syn.CAMERA_XYZ_TO_CAM[name]) @ torch.tensor(syn.SRGB_TO_XYZ)
        assert torch.allclose(m, ref / ref.sum(1, keepdim=True), atol=1e-6)

    def test_gain_ranges(self):
        g = syn.random_gains(2000, generator=_gen())
        assert 1.9 <= float(g["red"].min()) and float(g["red"].max()) <= 2.4
        assert 1.5 <= float(g["blue"].min()) and float(g["blue"].max()) <= 1.9
        assert float((1 / g["brightness"]).mean()) == pytest.approx(0.8, abs=0.01)

    def test_noise_levels_follow_brooks(self):
        shot, read = syn.random_noise_levels(4000, generator=_gen())
        assert float(shot.min()) >= 1e-4 - 1e-12 and float(shot.max()) <= 0.012 + 1e-9
        resid = read.log() - (2.18 * shot.log() + 1.20)
        assert float(resid.mean()) == pytest.approx(0.0, abs=0.02)
        assert float(resid.std()) == pytest.approx(0.26, abs=0.02)


class TestNoise:
    def test_gaussian_std(self):
        x = torch.full((4, 1, 64, 64), 0.5)
        sigma = torch.tensor([0.0, 0.01, 0.03, 0.05])
        y = syn.add_gaussian_noise(x, sigma, generator=_gen())
        std = (y - x).flatten(1).std(1)
        assert torch.allclose(std, sigma, atol=2e-3)
        assert torch.equal(y[0], x[0])

    def test_shot_read_variance(self):
        x = torch.full((2, 1, 128, 128), 0.25)
        shot, read = torch.tensor([0.01, 0.001]), torch.tensor([1e-4, 0.0])
        y = syn.add_shot_read_noise(x, shot, read, generator=_gen())
        var = (y - x).flatten(1).var(1)
        assert torch.allclose(var, shot * 0.25 + read, rtol=0.05)

    def test_sample_sigmas(self):
        s = syn.sample_sigmas(4000, sigma_max=0.1, p_zero=0.25, generator=_gen())
        assert float((s == 0).float().mean()) == pytest.approx(0.25, abs=0.03)
        assert float(s.max()) <= 0.1
        with pytest.raises(UsageError):
            syn.sample_sigmas(4, p_zero=1.5)

    def test_srgb_equivalent_noise_has_requested_rms(self):
        x = torch.rand(3, 1, 96, 96, generator=_gen(1)) * 0.8 + 0.1
        target = torch.tensor([0.0, 5 / 255, 15 / 255])
        y, sigma = syn.srgb_equivalent_noise(x, target, generator=_gen(2))
        assert torch.equal(sigma, target)
        rms = (y - x).flatten(1).square().mean(1).sqrt()
        assert torch.allclose(rms, target, rtol=0.1, atol=1e-6)

    def test_seeded(self):
        x = torch.rand(2, 1, 8, 8)
        a = syn.add_gaussian_noise(x, torch.tensor([0.1, 0.1]), generator=_gen(5))
        b = syn.add_gaussian_noise(x, torch.tensor([0.1, 0.1]), generator=_gen(5))
        assert torch.equal(a, b)


class TestUnprocess:
    def test_outputs_and_shapes(self):
        x = _photo()
        out = syn.unprocess(x, generator=_gen(), pattern="GRBG")
        assert out["pattern"] == "GRBG"
        for k in ("linear_rgb", "camera_rgb", "raw_rgb"):
            assert out[k].shape == x.shape
        for k in ("clean_mosaic", "noisy_mosaic"):
            assert out[k].shape == (2, 1, 16, 24)
        assert out["rgb_to_cam"].shape == (2, 3, 3) and out["wb_gains"].shape == (2, 3)
        assert torch.equal(out["clean_mosaic"], mosaic(out["raw_rgb"], "GRBG"))
        assert float(out["raw_rgb"].min()) >= 0 and float(out["raw_rgb"].max()) <= 1

    def test_inverts_to_the_photo(self):
        """Re-applying the gains and the inverse matrix to the clean camera RGB gives linear sRGB back."""
        x = _photo(h=8, w=8) * 0.5  # no highlights: the safe-gain blend and the clip stay inactive
        out = syn.unprocess(x, generator=_gen(), noise=False)
        g = out["wb_gains"] * out["brightness"][:, None]
        cam = out["raw_rgb"] * g[:, :, None, None]
        rgb = torch.einsum("nij,njhw->nihw", out["cam_to_rgb"], cam)
        assert torch.allclose(rgb, out["linear_rgb"], atol=1e-5)
        assert torch.allclose(syn.encode_srgb(rgb), x, atol=1e-4)
        assert torch.equal(out["noisy_mosaic"], out["clean_mosaic"])

    def test_highlights_stay_white(self):
        x = torch.ones(1, 3, 4, 4)
        out = syn.unprocess(x, generator=_gen(), noise=False)
        assert torch.allclose(out["raw_rgb"], torch.ones_like(x))

    def test_noise_present_and_seeded(self):
        x = _photo()
        a = syn.unprocess(x, generator=_gen(3))
        b = syn.unprocess(x, generator=_gen(3))
        assert torch.equal(a["noisy_mosaic"], b["noisy_mosaic"])
        assert not torch.equal(a["noisy_mosaic"], a["clean_mosaic"])

    def test_random_pattern(self):
        seen = {syn.unprocess(_photo(1, 4, 4), generator=_gen(s), pattern="random")["pattern"] for s in range(40)}
        assert seen == {"RGGB", "BGGR", "GRBG", "GBRG"}

    def test_tone_option(self):
        x = _photo()
        a = syn.unprocess(x, generator=_gen(), noise=False)["linear_rgb"]
        b = syn.unprocess(x, generator=_gen(), noise=False, tone=True)["linear_rgb"]
        assert torch.allclose(b, syn.decode_srgb(syn.inverse_smoothstep(x)))
        assert not torch.allclose(a, b)

    @pytest.mark.parametrize("bad", [torch.rand(3, 8, 8), torch.rand(1, 4, 8, 8), torch.rand(1, 3, 7, 8)])
    def test_bad_shapes(self, bad):
        with pytest.raises(UsageError):
            syn.unprocess(bad)

    def test_bad_pattern(self):
        with pytest.raises(UsageError):
            syn.unprocess(_photo(), pattern="RGBG")

    def test_float64(self):
        out = syn.unprocess(_photo().double(), generator=_gen())
        assert out["noisy_mosaic"].dtype == torch.float64
        assert math.isfinite(float(out["noisy_mosaic"].sum()))
