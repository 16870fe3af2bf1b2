"""Tests of the jdd / jdd-noise back-ends, the Gharbi2016 networks and weights loading."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rawdev.backends import registry
from rawdev.backends.learned import JDD_BAYER, JDD_NOISE, JDD_XTRANS
from rawdev.backends.weights import load_into, load_state_dict, resolve_path, sha256_file, verify
from rawdev.cfa import BAYER_PATTERNS, mosaic, pattern_after_crop
from rawdev.errors import BackendError, UsageError, WeightsError
from rawdev.models.gharbi2016 import BayerDemosaicNet, XTransDemosaicNet
from rawdev.tiling import run_tiled

from conftest import XTRANS

SHARED = Path(__file__).resolve().parents[2] / "shared"
KODAK = SHARED / "data" / "kodak24"



@pytest.fixture(scope="module")
def jdd():
    return registry.get("jdd").build(device="cpu")


def smooth_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(1, 3, h, w) photo-like test image in [0, 1]: smooth colour fields plus some texture."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    return (img + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def xtrans_mosaic(img: torch.Tensor, cell: np.ndarray) -> torch.Tensor:
    h, w = img.shape[-2:]
    idx = torch.from_numpy(np.tile(cell, (-(-h // 6), -(-w // 6)))[:h, :w])
    return img.gather(-3, idx.expand(img.shape[0], 1, h, w))


def reference_bayer():
    """demosaicnet 0.0.14's own BayerDemosaick (its modules.py exec'd with pkg_resources stubbed)."""
    dist = importlib.metadata.distribution("demosaicnet")
    src = Path(str(dist.locate_file("demosaicnet/modules.py"))).read_text()
    stub = types.ModuleType("pkg_resources")
    stub.resource_filename = lambda _n, rel: str(dist.locate_file("demosaicnet/" + rel))
    saved = sys.modules.get("pkg_resources")
    sys.modules["pkg_resources"] = stub
    try:
        ns: dict = {"__name__": "demosaicnet_reference"}
        exec(compile(src, "modules.py", "exec"), ns)
    finally:
        if saved is None:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = saved
    return ns


class TestNetworks:
    def test_bayer_matches_reference_module(self):
        ref = reference_bayer()["BayerDemosaick"](pretrained=True).eval()
        net = load_into(BayerDemosaicNet(), JDD_BAYER).eval()
        x = torch.rand(1, 3, 96, 80)
        with torch.no_grad():
            a, b = ref(x), net(x)
        assert b.shape == (1, 3, 34, 18)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)

    def test_xtrans_matches_reference_module(self):
        ref = reference_bayer()["XTransDemosaick"](pretrained=True).eval()
        net = load_into(XTransDemosaicNet(), JDD_XTRANS).eval()
        x = torch.rand(1, 3, 40, 46)
        with torch.no_grad():
            torch.testing.assert_close(ref(x), net(x), atol=1e-6, rtol=0)

    def test_noise_variant_starts_equal_to_pretrained(self):
        sd = load_state_dict(JDD_BAYER)
        base = BayerDemosaicNet().eval()
        base.load_state_dict(sd)
        noisy = BayerDemosaicNet.from_pretrained_noise_free(sd).eval()
        assert noisy.main_processor.conv1.weight.shape == (64, 5, 3, 3)
        x = torch.rand(2, 3, 70, 70)
        with torch.no_grad():
            for sigma in (0.0, 0.05):
                torch.testing.assert_close(noisy(x, torch.full((2,), sigma)), base(x), atol=1e-6, rtol=0)
        with pytest.raises(ValueError):
            noisy(x)
        with pytest.raises(ValueError):
            base(x, torch.zeros(2))

    def test_noise_variant_uses_the_noise_plane(self):
        net = BayerDemosaicNet.from_pretrained_noise_free(load_state_dict(JDD_BAYER)).eval()
        with torch.no_grad():
            net.main_processor.conv1.weight[:, 4] += 0.1
            x = torch.rand(1, 3, 70, 70)
            assert not torch.allclose(net(x, torch.tensor([0.0])), net(x, torch.tensor([0.08])))


class TestJDDRunner:
    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize("shape", [(101, 91), (77, 64)])
    def test_tiled_equals_whole_image(self, jdd, pattern, shape):
        img = smooth_image(*shape, seed=sum(shape))
        m = mosaic(img, pattern)
        whole = registry.get("jdd").build(device="cpu", tile=4096)(m, pattern)
        assert whole.shape == (1, 3, *shape) and whole.dtype == torch.float32
        for tile in (32, 48, 64):
            tiled = registry.get("jdd").build(device="cpu", tile=tile, batch=3)(m, pattern)
            torch.testing.assert_close(tiled, whole, atol=1e-4, rtol=0)
        # the generic engine around the whole-image runner (margin = spec.margin) is exact as well
        spec = registry.get("jdd")
        generic = run_tiled(jdd, m, pattern, tile=40, margin=spec.margin, multiple=spec.tile_multiple, exact=spec.tile_exact)
        torch.testing.assert_close(generic, whole, atol=1e-4, rtol=0)

    @pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GBRG"])
    def test_every_phase_is_aligned(self, jdd, pattern):
        """A non-native phase equals the native GRBG run on the same scene samples (shift recipe)."""
        img = smooth_image(96, 96, seed=3)
        dy, dx = {"RGGB": (0, 1), "BGGR": (1, 0), "GBRG": (1, 1)}[pattern]
        assert pattern_after_crop("GRBG", dy, dx) == pattern
        native = jdd(mosaic(img, "GRBG"), "GRBG")
        shifted = jdd(mosaic(img[..., dy:, dx:], pattern), pattern)
        torch.testing.assert_close(shifted[..., 34:-34, 34:-34], native[..., dy:, dx:][..., 34:-34, 34:-34], atol=1e-5, rtol=0)

    def test_phase_matters(self, jdd):
        img = smooth_image(80, 80, seed=5)
        m = mosaic(img, "RGGB")
        good = (jdd(m, "RGGB") - img)[..., 8:-8, 8:-8].abs().mean()
        wrong = (jdd(m, "GRBG") - img)[..., 8:-8, 8:-8].abs().mean()
        assert wrong > 3 * good

    def test_batch_dtype_and_cell_pattern(self, jdd):
        img = torch.cat([smooth_image(40, 38, seed=1), smooth_image(40, 38, seed=2)])
        m = mosaic(img, "BGGR")
        a = jdd(m, "BGGR")
        b = jdd(m.double(), np.array([[2, 1], [1, 0]]))
        assert a.shape == (2, 3, 40, 38) and b.dtype == torch.float64
        torch.testing.assert_close(a.double(), b, atol=1e-6, rtol=0)
        torch.testing.assert_close(a[1:], jdd(m[1:], "BGGR"), atol=1e-6, rtol=0)

    def test_bad_inputs(self, jdd):
        with pytest.raises(UsageError):
            jdd(torch.rand(1, 3, 20, 20), "RGGB")
        with pytest.raises(UsageError):
            jdd(torch.rand(1, 1, 20, 20), "RGBG")
        with pytest.raises(UsageError):
            jdd(torch.rand(1, 1, 20, 20), np.zeros((3, 3), dtype=int))
        with pytest.raises(UsageError):
            registry.get("jdd").build(device="cpu", dtype="float16")


class TestXTrans:
    @pytest.mark.parametrize("shift", [(0, 0), (1, 4), (3, 5)])
    def test_tiled_equals_whole_and_any_phase(self, jdd, shift):
        img = smooth_image(61, 55, seed=7)
        cell = np.roll(XTRANS, shift, axis=(0, 1))
        m = xtrans_mosaic(img, cell)
        whole = registry.get("jdd").build(device="cpu", tile=4096)(m, cell)
        tiled = registry.get("jdd").build(device="cpu", tile=24)(m, cell)
        assert whole.shape == (1, 3, 61, 55)
        torch.testing.assert_close(tiled, whole, atol=1e-4, rtol=0)
        err = (whole - img)[..., 6:-6, 6:-6].abs().mean()
        assert err < 0.03

    def test_bad_cell(self, jdd):
        with pytest.raises(UsageError):
            jdd(torch.rand(1, 1, 30, 30), np.ones((6, 6), dtype=int))


class TestWeights:
    def test_packaged_sha256_recorded(self):
        for spec in (JDD_BAYER, JDD_XTRANS):
            assert sha256_file(resolve_path(spec.file)) == spec.sha256
            assert verify(spec).is_file()
            assert spec.license

    def test_registry_specs(self):
        spec = registry.get("jdd")
        assert spec.kind == "learned" and spec.input_domain == "mosaic_srgb_wb"
        assert spec.native_pattern == "GRBG" and spec.margin >= 31 and spec.tile_exact
        assert spec.cfa_types == {"bayer", "xtrans"} and not spec.uses_noise
        noisy = registry.get("jdd-noise")
        assert noisy.uses_noise and noisy.weights["bayer"].file == "jdd_noise.safetensors"

    def test_sha256_mismatch(self):
        bad = replace(JDD_BAYER, sha256="0" * 64)
        with pytest.raises(WeightsError, match="sha256"):
            load_into(BayerDemosaicNet(), bad)

    def test_missing_file_and_unverified(self, tmp_path, monkeypatch):
        monkeypatch.setenv("RAWDEV_WEIGHTS_DIR", str(tmp_path))
        with pytest.raises(WeightsError, match="not found"):
            verify(replace(JDD_BAYER, file="nope.pth"))
        (tmp_path / "x.pth").write_bytes(b"abc")
        with pytest.raises(WeightsError, match="no sha256"):
            verify(replace(JDD_BAYER, file="x.pth", sha256=""))
        with pytest.raises(WeightsError, match="pip install"):
            resolve_path("pkg:no-such-dist-rawdev/x.pth")

    def test_missing_or_unexpected_keys(self):
        drop = replace(JDD_BAYER, state_dict_filter=lambda sd: {k: v for k, v in sd.items() if "conv3" not in k})
        with pytest.raises(WeightsError, match="missing"):
            load_into(BayerDemosaicNet(), drop)
        with pytest.raises(WeightsError, match="unexpected|missing"):
            load_into(XTransDemosaicNet(), JDD_BAYER)
        with pytest.raises(WeightsError, match="shape"):
            load_into(BayerDemosaicNet(noise_input=True), JDD_BAYER)

    def test_safetensors_and_corrupt_file(self, tmp_path, monkeypatch):
        from safetensors.torch import save_file

        monkeypatch.setenv("RAWDEV_WEIGHTS_DIR", str(tmp_path))
        net = BayerDemosaicNet.from_pretrained_noise_free(load_state_dict(JDD_BAYER))
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "n.safetensors"))
        spec = replace(JDD_NOISE, file="n.safetensors", sha256=sha256_file(tmp_path / "n.safetensors"))
        loaded = load_into(BayerDemosaicNet(noise_input=True), spec)
        torch.testing.assert_close(loaded.main_processor.conv1.weight, net.main_processor.conv1.weight)
        (tmp_path / "c.pth").write_bytes(b"not a checkpoint")
        with pytest.raises(WeightsError, match="cannot read"):
            load_state_dict(replace(JDD_BAYER, file="c.pth", sha256=sha256_file(tmp_path / "c.pth")))


class TestJDDNoise:
    def test_missing_weights_raise(self):
        if resolve_path(JDD_NOISE.file).is_file():
            pytest.skip("weights/jdd_noise.safetensors exists")
        with pytest.raises(WeightsError, match="jdd-noise"):
            registry.get("jdd-noise").build(device="cpu")

    def test_runs_when_released(self):
        if not resolve_path(JDD_NOISE.file).is_file():
            pytest.skip("weights/jdd_noise.safetensors not produced yet")
        run = registry.get("jdd-noise").build(device="cpu", tile=48)
        img = smooth_image(70, 66, seed=9)
        m = mosaic(img, "RGGB")
        noisy = (m + 0.03 * torch.randn(m.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
        out = run(noisy, "RGGB", noise=torch.tensor([0.03]))
        whole = registry.get("jdd-noise").build(device="cpu", tile=4096)(noisy, "RGGB", noise=0.03)
        assert out.shape == (1, 3, 70, 66)
        torch.testing.assert_close(out, whole, atol=1e-4, rtol=0)
        # No noise level means a clean input: the same as sigma 0.
        torch.testing.assert_close(run(m, "RGGB"), run(m, "RGGB", noise=0.0), atol=0, rtol=0)
        with pytest.raises(BackendError):
            run(torch.rand(1, 1, 30, 30), XTRANS, noise=0.01)


@pytest.mark.skipif(not KODAK.is_dir(), reason="needs ../shared/data/kodak24")
class TestRealPhoto:
    """kodim19 (Kodak24), 8-bit protocol: clip, round, CPSNR over 3 channels, 10-pixel border."""

    @staticmethod
    def cpsnr(a: np.ndarray, b: np.ndarray, border: int = 10) -> float:
        a = a[border:-border, border:-border].astype(np.float64)
        b = b[border:-border, border:-border].astype(np.float64)
        return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))

    @staticmethod
    def develop(run, img: np.ndarray, pattern: str) -> np.ndarray:
        x = torch.from_numpy(img.copy()).permute(2, 0, 1).float()[None] / 255.0
        y = run(mosaic(x, pattern), pattern)[0]
        return (y.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()

    def test_psnr_every_phase(self, jdd):
        from PIL import Image

        img = np.array(Image.open(KODAK / "kodim19.png").convert("RGB"))
        # Each phase samples the same scene points as GRBG on the full image: crop by the phase's
        # shift, then compare on the common area. All four must agree and reach the expected PSNR.
        scores = {}
        for pattern, (dy, dx) in {"GRBG": (0, 0), "RGGB": (0, 1), "BGGR": (1, 0), "GBRG": (1, 1)}.items():
            crop = img[dy:, dx:]
            out = self.develop(jdd, crop, pattern)
            scores[pattern] = self.cpsnr(out[1 - dy :, 1 - dx :], crop[1 - dy :, 1 - dx :])
        assert max(scores.values()) - min(scores.values()) < 0.1, scores
        assert min(scores.values()) > 42.0, scores

    @pytest.mark.slow
    def test_psnr_every_phase_uncropped(self, jdd):
        """On the uncropped photo every phase reaches the published level (the cropped phases above
        see nearly the same pixels; four more whole-photo develops, so in the slow run)."""
        from PIL import Image

        img = np.array(Image.open(KODAK / "kodim19.png").convert("RGB"))
        for pattern in BAYER_PATTERNS:
            assert self.cpsnr(self.develop(jdd, img, pattern), img) > 42.0, pattern


def test_jdd_noise_fades_into_jdd_below_the_fade_level():
    """sigma 0 and up to JDD_NOISE_FADE[0]: exactly the noise-free network; from JDD_NOISE_FADE[1]:
    the fine-tuned one alone; in between a linear mix of the two."""
    from rawdev.backends import learned
    from rawdev.backends.registry import get

    g = torch.Generator().manual_seed(5)
    m = torch.rand(1, 1, 70, 90, generator=g)
    jdd = get("jdd").build(device="cpu")
    faded = get("jdd-noise").build(device="cpu")
    alone = learned._build_jdd(True, device="cpu", fade=False)
    with torch.inference_mode():
        lo, top = learned.JDD_NOISE_FADE
        assert torch.equal(faded(m, "BGGR", noise=torch.tensor([0.0])), jdd(m, "BGGR"))
        assert torch.equal(faded(m, "BGGR", noise=torch.tensor([lo * 0.99])), jdd(m, "BGGR"))
        hi = torch.tensor([top * 1.5])
        assert torch.equal(faded(m, "BGGR", noise=hi), alone(m, "BGGR", noise=hi))
        mid = torch.tensor([(lo + top) / 2])
        a, b, c = jdd(m, "BGGR"), alone(m, "BGGR", noise=mid), faded(m, "BGGR", noise=mid)
        assert torch.allclose(c, (a + b) / 2, atol=1e-5)
