"""Tests of the classical demosaickers (bilinear, Malvar2004, Menon2007) and their dispatch.

Cross-checks against colour-demosaicing (a test-only dependency) skip when it is not installed; tests on
the staged photos skip when ``../shared`` (next to the repository) is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rawdev.cfa import BAYER_PATTERNS, bayer_masks, mosaic, pattern_after_crop
from rawdev.errors import UnknownBackendError, UsageError
from rawdev.stages.demosaic import DemosaicMethod
from rawdev.stages.demosaic import demosaic as _demosaic
from rawdev.stages.demosaic import bilinear as bilinear_mod
from rawdev.stages.demosaic import malvar2004 as malvar_mod
from rawdev.stages.demosaic import menon2007 as menon_mod

SHARED = Path(__file__).resolve().parents[2] / "shared"
KODIM19 = SHARED / "data" / "kodak24" / "kodim19.png"
#: The stage's methods under the back-end names these tests were written with.
_METHOD = {"bilinear": DemosaicMethod.BILINEAR, "malvar": DemosaicMethod.MALVAR2004, "menon": DemosaicMethod.MENON2007}
assert set(_METHOD.values()) == set(DemosaicMethod)
METHODS = tuple(_METHOD)


def demosaic(m, pattern, method):
    return _demosaic(m, pattern, _METHOD.get(method, method))

# How far from the border each method's result depends on the border handling (its stencil radius;
# for Menon the decision window and refining steps).
INTERIOR = {"bilinear": 1, "malvar": 2, "menon": 8}


def _photo(h: int = 96, w: int = 128, dtype=torch.float64) -> torch.Tensor:
    """A smooth-but-textured synthetic colour image (3, h, w) in [0, 1]."""
    y = torch.linspace(0, 1, h, dtype=dtype)[:, None]
    x = torch.linspace(0, 1, w, dtype=dtype)[None, :]
    r = 0.5 + 0.4 * torch.sin(9 * x + 4 * y)
    g = 0.5 + 0.3 * torch.cos(7 * y - 3 * x) * torch.sin(5 * x)
    b = 0.4 + 0.3 * torch.sin(13 * x * y + 1)
    return torch.stack((r, g, b))


def _crop(x: torch.Tensor, m: int) -> torch.Tensor:
    return x[..., m : x.shape[-2] - m, m : x.shape[-1] - m]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
class TestEveryMethodAndPhase:
    def test_shape_dtype_and_known_samples(self, method, pattern):
        m = mosaic(_photo(), pattern)
        for dtype in (torch.float32, torch.float64):
            out = demosaic(m.to(dtype), pattern, method)
            assert out.shape == (3, 96, 128) and out.dtype == dtype
            assert torch.isfinite(out).all()
            # The samples the sensor measured come back unchanged.
            masks = bayer_masks(pattern, 96, 128, dtype=torch.bool)
            assert torch.allclose(out[masks], m.to(dtype).expand(3, -1, -1)[masks], atol=1e-6)

    def test_flat_field_and_constant_colour_are_exact(self, method, pattern):
        flat = torch.full((1, 20, 22), 0.37, dtype=torch.float64)
        assert torch.allclose(demosaic(flat, pattern, method), torch.full((3, 20, 22), 0.37, dtype=torch.float64))
        colour = torch.tensor([0.8, 0.3, 0.1], dtype=torch.float64)[:, None, None].expand(3, 20, 22)
        out = demosaic(mosaic(colour, pattern), pattern, method)
        # Interior exact by construction; mirrored borders keep the CFA parity so the border is too.
        assert torch.allclose(out, colour, atol=1e-12)

    @pytest.mark.parametrize("size", [(2, 2), (2, 3), (3, 2), (3, 3), (5, 7), (7, 4), (33, 17)])
    def test_odd_and_tiny_sizes(self, method, pattern, size):
        h, w = size
        colour = torch.tensor([0.2, 0.6, 0.9])[:, None, None].expand(3, h, w)
        out = demosaic(mosaic(colour, pattern), pattern, method)
        assert out.shape == (3, h, w)
        assert torch.allclose(out, colour, atol=1e-5)

    def test_batch_dims_match_single_images(self, method, pattern):
        imgs = torch.stack([_photo(30, 41) * s for s in (0.5, 1.0, 0.8, 0.3, 0.9, 0.7)]).reshape(2, 3, 3, 30, 41)
        m = mosaic(imgs, pattern)  # (2, 3, 1, 30, 41)
        out = demosaic(m, pattern, method)
        assert out.shape == (2, 3, 3, 30, 41)
        for i in range(2):
            for j in range(3):
                assert torch.allclose(out[i, j], demosaic(m[i, j], pattern, method), atol=1e-12)

    def test_phase_follows_crop(self, method, pattern):
        """Cropping one row and column and updating the pattern gives the same interior."""
        m = mosaic(_photo(), pattern)
        full = demosaic(m, pattern, method)
        sub = demosaic(m[..., 1:, 1:], pattern_after_crop(pattern, 1, 1), method)
        k = INTERIOR[method] + 8
        assert torch.allclose(_crop(full[..., 1:, 1:], k), _crop(sub, k), atol=1e-12)

    def test_input_not_modified(self, method, pattern):
        m = mosaic(_photo(), pattern)
        before = m.clone()
        demosaic(m, pattern, method)
        assert torch.equal(m, before)


def test_patterns_are_not_interchangeable():
    m = mosaic(_photo(), "RGGB")
    good = demosaic(m, "RGGB", "malvar")
    bad = demosaic(m, "GRBG", "malvar")
    assert (good - bad).abs().mean() > 0.05


@pytest.mark.parametrize("method", METHODS)
def test_band_processing_equals_one_pass(method, monkeypatch):
    """Row bands (with halos for Menon) give exactly the whole-image result."""
    m = mosaic(_photo(101, 57), "GBRG")[None].repeat(2, 1, 1, 1)
    whole = demosaic(m, "GBRG", method)
    target, name = (menon_mod, "_band_step") if method == "menon" else (bilinear_mod, "band_rows")
    real = getattr(target, name)
    monkeypatch.setattr(target, name, lambda *a, **k: 3 if method != "menon" else 9)
    banded = demosaic(m, "GBRG", method)
    if method == "menon":  # the numpy (OpenCV) executor bands the same way
        arrays = m.float().numpy()
        banded_arrays = menon_mod.demosaic_menon2007(arrays, "GBRG")
        monkeypatch.setattr(target, name, real)
        np.testing.assert_allclose(banded_arrays, menon_mod.demosaic_menon2007(arrays, "GBRG"), atol=0, rtol=0)
    monkeypatch.setattr(target, name, real)
    assert torch.allclose(whole, banded, atol=1e-12, rtol=0)


def test_menon_context_margin_is_enough(monkeypatch):
    """A wider mirrored/real context changes nothing: the margin covers the dependence radius."""
    m = mosaic(_photo(70, 66), "GRBG")[None]
    ref = demosaic(m, "GRBG", "menon")
    monkeypatch.setattr(menon_mod, "_MARGIN", 40)
    assert torch.allclose(demosaic(m, "GRBG", "menon"), ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", ["bilinear", "malvar"])
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_linear_methods_gradcheck(method, pattern):
    # A first call under inference_mode (as the evaluator and the pipeline do) must not poison the cached
    # weights for later autograd use.
    with torch.inference_mode():
        demosaic(torch.rand(1, 6, 7, dtype=torch.float64), pattern, method)
    m = torch.rand(1, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: demosaic(x, pattern, method), (m,))


def test_dispatch_errors():
    with pytest.raises(UnknownBackendError):
        demosaic(torch.zeros(1, 4, 4), "RGGB", "ahd")
    with pytest.raises(UsageError):
        demosaic(torch.zeros(1, 4, 4, dtype=torch.int32), "RGGB", "malvar")
    with pytest.raises(UsageError):
        demosaic(torch.zeros(1, 4, 4), "RGBG", "malvar")


# --- cross-checks against colour-demosaicing ------------------------------------------------------------


def _reference(method: str):
    cd = pytest.importorskip("colour_demosaicing")
    return {
        "bilinear": cd.demosaicing_CFA_Bayer_bilinear,
        "malvar": cd.demosaicing_CFA_Bayer_Malvar2004,
        "menon": cd.demosaicing_CFA_Bayer_Menon2007,
    }[method]


def _real_photo() -> np.ndarray:
    """A real 8-bit photo as float64 (H, W, 3): kodim19 when staged, else scikit-image's astronaut."""
    if KODIM19.exists():
        from PIL import Image

        img = np.asarray(Image.open(KODIM19))[:200, :300]
    else:
        skdata = pytest.importorskip("skimage.data")
        img = skdata.astronaut()[:200, :300]
    return img.astype(np.float64) / 255.0


def _run_both(method: str, img: np.ndarray, pattern: str):
    ref_fn = _reference(method)
    m = mosaic(torch.from_numpy(img).permute(2, 0, 1), pattern)
    ref = torch.from_numpy(np.asarray(ref_fn(m[0].numpy(), pattern))).permute(2, 0, 1)
    return demosaic(m, pattern, method), ref


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", ["bilinear", "malvar"])
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_linear_methods_match_colour_demosaicing(method, pattern):
    """Identical away from the border (colour-demosaicing's scipy 'reflect' repeats the edge pixel)."""
    img = _real_photo()[:199, :299]  # odd size on purpose
    ours, ref = _run_both(method, img, pattern)
    k = INTERIOR[method]
    assert torch.allclose(_crop(ours, k), _crop(ref, k), atol=1e-12, rtol=0)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_menon_matches_colour_demosaicing(pattern):
    """Same algorithm step for step: identical away from the border when there are no decision ties.

    8-bit data make exact ties between the horizontal and vertical classifiers common; rounding then
    decides them, differently in two implementations. A sub-quantum dither removes the ties.
    """
    img = _real_photo()
    img = img + np.random.default_rng(1).uniform(0.0, 1e-3, img.shape)
    ours, ref = _run_both("menon", img, pattern)
    k = INTERIOR["menon"]
    assert torch.allclose(_crop(ours, k), _crop(ref, k), atol=1e-10, rtol=0)
    # Near the border only the mirrored (ours) vs zero-padded (theirs) decision window differs.
    assert (ours - ref).abs().mean() < 1e-3


@pytest.mark.filterwarnings("ignore")
def test_menon_on_8bit_data_agrees_within_ties():
    img = _real_photo()
    ours, ref = _run_both("menon", img, "RGGB")
    diff = _crop(ours - ref, INTERIOR["menon"]).abs()
    assert (diff > 1e-9).double().mean() < 0.05  # only tie-broken pixels and their neighbours
    mse = diff.square().mean()
    assert 10 * torch.log10(1 / mse) > 45  # tie breaks are between two good estimates


# --- devices and size ------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(method):
    m = mosaic(_photo(64, 90, torch.float32), "BGGR")
    cpu = demosaic(m, "BGGR", method)
    gpu = demosaic(m.cuda(), "BGGR", method)
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    if method == "menon":
        # The decision can break exact ties differently on the GPU; compare the bulk.
        assert (gpu.cpu() - cpu).abs().mean() < 1e-4
    else:
        # Full float32 precision: the GPU path must not go through TF32 convolutions.
        assert torch.allclose(gpu.cpu(), cpu, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["bilinear", "malvar"])
def test_linear_gpu_path_equals_conv_path(method):
    """The tap-sum path that GPUs take gives the CPU convolution's result (checked here on the CPU)."""
    weight = {"bilinear": bilinear_mod._bilinear_weight, "malvar": malvar_mod._malvar_weight}[method]
    for pattern in BAYER_PATTERNS:
        for h, w in [(2, 2), (5, 7), (40, 61)]:
            m = torch.rand(2, 1, h, w, dtype=torch.float64)
            a = bilinear_mod.demosaic_packed_stencils(m, weight(pattern), use_conv=True)
            b = bilinear_mod.demosaic_packed_stencils(m, weight(pattern), use_conv=False)
            assert torch.allclose(a, b, atol=1e-12, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_24_megapixels_is_fast(method):
    import time

    m = torch.rand(1, 4000, 6000)
    demosaic(m[..., :64, :64], "RGGB", method)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        demosaic(m, "RGGB", method)
        times.append(time.perf_counter() - t)
    # A regression guard, not a benchmark (docs/benchmarks_demosaic_eval.md has the figures: ~0.3 s on 2
    # idle cores); shared machines are often several times slower.
    assert sorted(times)[1] < 5.0
