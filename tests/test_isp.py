"""The learned-ISP frame, runner and pipeline path (rawdev.models.isp_frame, rawdev.backends.isp).

An untrained frame has zeroed output convolutions, so it must render exactly its classical base
(bilinear or Menon2007) through the colour matrix and the sRGB curve: that pins the packing, the phase alignment, the fixed
colour layer, the tiling and the blending without any trained weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rawdev.backends.isp import JDDNoiseStart, isp_runner
from rawdev.cfa import mosaic as make_mosaic
from rawdev.backends.isp import make_isp
from rawdev.models.isp_frame import LearnedISP, noise_planes, pack_rggb
from rawdev.stages.demosaic.bilinear import demosaic_bilinear
from rawdev.stages.demosaic.menon2007 import demosaic_menon2007
from rawdev.stages.tone import srgb_decode_unclipped, srgb_encode, srgb_encode_unclipped

PHASES = ("RGGB", "GRBG", "GBRG", "BGGR")
MATRIX = torch.tensor([[1.6, -0.4, -0.2], [-0.2, 1.5, -0.3], [0.0, -0.5, 1.5]])


def _mosaic(h: int, w: int, pattern: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g), size=(h, w),
                                             mode="bicubic", align_corners=False)
    rgb = (0.6 * smooth + 0.2 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)
    return make_mosaic(rgb, pattern)


def _expected(m: torch.Tensor, pattern: str, base: str = "bilinear") -> torch.Tensor:
    if base == "menon-srgb":
        cam = srgb_decode_unclipped(demosaic_menon2007(srgb_encode_unclipped(m), pattern))
    else:
        cam = (demosaic_menon2007 if base == "menon" else demosaic_bilinear)(m, pattern)
    return srgb_encode(torch.einsum("ij,njhw->nihw", MATRIX, cam))


@pytest.mark.parametrize("kind,base", [("cameranet", "bilinear"), ("pynet-ca", "bilinear"),
                                       ("cameranet", "menon"), ("pynet", "menon"),
                                       ("cameranet", "menon-srgb"), ("pynet-ca", "menon-srgb")])
@pytest.mark.parametrize("pattern", PHASES)
def test_untrained_isp_renders_its_base_every_phase_tiled(kind, base, pattern):
    torch.manual_seed(0)
    net = make_isp(kind, width=8, kernels="dilated", padding_mode="zeros", instance_norm=False, base=base)
    runner = isp_runner(net, device="cpu", tile=64)
    m = _mosaic(90, 133, pattern)  # odd width, not a multiple of 32: alignment and padding paths
    got = runner(m, pattern, noise=torch.tensor([1e-3, 1e-5]), matrix=MATRIX.numpy())
    want = _expected(m, pattern, base)
    assert got.shape == (1, 3, 90, 133)
    # Exact to the last pixel for Menon too: the runner's phase alignment mirrors without edge
    # repeat, as Menon's own border handling does, and the margin covers its decision windows.
    assert torch.allclose(got, want, atol=2e-5), (got - want).abs().max()


@pytest.mark.parametrize("kind", ["cameranet", "pynet"])
@pytest.mark.parametrize("pattern", PHASES)
def test_untrained_isp_over_jdd_noise_renders_the_jdd_noise_back_end(kind, pattern):
    """The ``jdd-noise`` start is the registered back-end run as the pipeline runs it (clipped sRGB
    encoding, one sigma at 18 % grey); inside every tile it is exact, tiles and phases included."""
    from rawdev.backends.registry import get
    from rawdev.models.isp_frame import jdd_noise_sigma
    from rawdev.stages.tone import srgb_decode

    torch.manual_seed(0)
    net = make_isp(kind, width=8, kernels="dilated", padding_mode="zeros", instance_norm=False, base="jdd-noise",
                   learned_start=JDDNoiseStart())
    runner = isp_runner(net, device="cpu", tile=64)
    m = _mosaic(90, 133, pattern)
    noise = torch.tensor([2e-3, 2e-5])
    got = runner(m, pattern, noise=noise, matrix=MATRIX.numpy())
    # one sigma at 18 % grey, carried through the sRGB curve's slope there (as the pipeline's jdd-noise)
    sigma = torch.tensor([(2e-3 * 0.18 + 2e-5) ** 0.5 * 1.055 / 2.4 * 0.18 ** (1 / 2.4 - 1)])
    assert torch.allclose(jdd_noise_sigma(noise.reshape(1, 2), 1), sigma)
    assert float(sigma) > 4.5 / 255  # a real noise level: the noise-aware network, not the fade
    cam = srgb_decode(get("jdd-noise").build(device="cpu")(srgb_encode(m), pattern, noise=sigma))
    want = srgb_encode(torch.einsum("ij,njhw->nihw", MATRIX, cam))
    # The aligning reflection (non-RGGB phases) gives the first rows/columns a different mirror
    # than jdd's own; past its 31-pixel receptive field every pixel is jdd-noise's exactly.
    inner = (slice(None), slice(None), slice(32, -32), slice(32, -32))
    assert torch.allclose(got[inner], want[inner], atol=2e-5), (got - want)[inner].abs().max()
    assert (got - want).abs().mean() < 2e-3


@pytest.mark.parametrize("pattern", ("RGGB", "GBRG"))
def test_untrained_isp_over_jdd_fast_renders_the_jdd_fast_int8_back_end(pattern):
    """cameranet-fast's start is the registered jdd-fast-int8 back-end, told the same sigma as
    jdd-noise would be: an untrained frame over it renders that back-end through the matrix."""
    from rawdev.backends.isp import JDDFastStart
    from rawdev.backends.registry import get
    from rawdev.models.isp_frame import jdd_noise_sigma
    from rawdev.stages.tone import srgb_decode

    torch.manual_seed(0)
    net = make_isp("cameranet-fast", width=8, padding_mode="zeros", base="jdd-fast-int8", learned_start=JDDFastStart())
    runner = isp_runner(net, device="cpu", tile=64)
    m = _mosaic(90, 133, pattern)
    noise = torch.tensor([2e-3, 2e-5])
    got = runner(m, pattern, noise=noise, matrix=MATRIX.numpy())
    sigma = jdd_noise_sigma(noise.reshape(1, 2), 1)
    cam = srgb_decode(get("jdd-fast-int8").build(device="cpu")(srgb_encode(m), pattern, noise=sigma))
    want = srgb_encode(torch.einsum("ij,njhw->nihw", MATRIX, cam))
    # exact everywhere: the student's tiling is exact and its 13 px border stays inside the margin
    assert torch.allclose(got, want, atol=2e-5), (got - want).abs().max()


def test_jdd_fast_start_runs_the_float_student_off_the_cpu():
    """The int8 student is CPU-only, so cameranet-fast's start falls back to ``jdd-fast`` elsewhere."""
    from rawdev.backends.isp import JDDFastStart
    from rawdev.backends.registry import get

    start = JDDFastStart()
    assert start.backend_for(torch.device("cpu")) == "jdd-fast-int8"
    other = start.backend_for(torch.device("cuda"))
    assert other == "jdd-fast" and get(other).weights["bayer"] == get("jdd-fast-int8").weights["bayer"]


def test_noise_planes_follow_the_profile():
    packed = torch.full((1, 4, 2, 2), 0.25)
    planes = noise_planes(packed, torch.tensor([[0.01, 1e-4]]))
    assert torch.allclose(planes, torch.full_like(planes, (0.01 * 0.25 + 1e-4) ** 0.5))
    assert noise_planes(packed, None).abs().sum() == 0


def test_pack_order_is_r_g1_g2_b():
    rgb = torch.zeros(1, 3, 2, 2)
    rgb[:, 0] = 1.0
    rgb[:, 1] = 2.0
    rgb[:, 2] = 3.0
    packed = pack_rggb(make_mosaic(rgb, "RGGB"))
    assert packed.flatten().tolist() == [1.0, 2.0, 2.0, 3.0]


def _perturbed(kind: str, instance_norm: bool = False) -> LearnedISP:
    """A frame whose output convolutions are no longer zero, so every part of the network acts."""
    torch.manual_seed(1)
    net = make_isp(kind, width=8, kernels="dilated", padding_mode="zeros", instance_norm=instance_norm)
    with torch.no_grad():
        for mod in net.core.modules():
            if isinstance(mod, torch.nn.Conv2d) and mod.out_channels in (3, 12):
                mod.weight.normal_(0, 0.02)
            if isinstance(mod, torch.nn.ConvTranspose2d):
                mod.weight.normal_(0, 0.05)
    return net


@pytest.mark.parametrize("kind,instance_norm", [("cameranet", False), ("pynet-ca", False), ("pynet-ca", True),
                                                 ("pynet", True)])
def test_tiled_equals_whole_to_45_db(kind, instance_norm):
    net = _perturbed(kind, instance_norm)
    m = _mosaic(200, 264, "GRBG", seed=3)
    whole = isp_runner(net, device="cpu", tile=4096)
    tiled = isp_runner(net, device="cpu", tile=96)
    a = whole(m, "GRBG", noise=None, matrix=MATRIX.numpy())
    b = tiled(m, "GRBG", noise=None, matrix=MATRIX.numpy())
    mse = float((a - b).square().mean())
    psnr = 10 * np.log10(1.0 / max(mse, 1e-20))
    assert psnr >= 45.0, psnr
    assert float((a - _expected(m, "GRBG")).abs().mean()) > 1e-4  # the network does act


def test_frame_levels_and_sizes():
    net = make_isp("pynet", width=8, kernels="dilated", instance_norm=False)
    m = _mosaic(64, 96, "RGGB")
    assert net(m, MATRIX, None, level=0).shape == (1, 3, 64, 96)
    assert net(m, MATRIX, None, level=2).shape == (1, 3, 16, 24)
    with pytest.raises(ValueError):
        net(_mosaic(60, 96, "RGGB"), MATRIX, None)


def test_isp_back_ends_refuse_the_demosaic_api():
    import rawdev
    from rawdev.errors import UsageError

    with pytest.raises(UsageError):
        rawdev.demosaic(np.zeros((8, 8), np.float32), "RGGB", method="cameranet")


@pytest.mark.parametrize("name", ["pynet", "pynet-ca", "cameranet", "cameranet-fast"])
def test_shipped_isp_develops_a_dng_with_the_classical_colours(tmp_path, name):
    """The shipped weights load (sha256-checked), develop a DNG of every phase through the pipeline,
    keep its colours (no cast against the classical render) and beat bilinear against the truth."""
    from rawdev.pipeline import PipelineConfig, develop
    from rawdev.synthetic import demo_scene, write_dng

    scene = demo_scene(192, 128).astype(np.float64)
    for pattern in ("RGGB", "GBRG"):
        path = write_dng(tmp_path / f"{pattern}.dng", scene, pattern=pattern, shot=1e-3, read=1e-6)
        got = develop(path, PipelineConfig(backend=name, output_bits=None, device="cpu")).image
        ref = develop(path, PipelineConfig(backend="malvar", output_bits=None)).image
        bil = develop(path, PipelineConfig(backend="bilinear", output_bits=None)).image
        truth = srgb_encode(torch.from_numpy(scene)).numpy()
        assert got.shape == ref.shape == (128, 192, 3)
        cast = np.abs((got - ref).reshape(-1, 3).mean(0)) * 255
        # Measured 2.4-3.5 levels (weights of 2026-11-25) on this synthetic chart (zone plate, gratings: content unlike the
        # training photos; docs/learned_isp.md); a wrong matrix, white balance or phase gives tens.
        assert cast.max() < 5.0, cast
        assert np.mean((got - truth) ** 2) < np.mean((bil - truth) ** 2)


@pytest.mark.parametrize("kind", ["cameranet", "pynet-ca"])
def test_large_odd_image_uses_the_reduced_context(kind):
    """Above STATS_MEGAPIXELS the context comes from a down-scaled copy (CameraNet) or from
    full-resolution crops (PyNET-CA); odd sizes and an odd phase must work on both paths."""
    from rawdev.backends import isp

    net = make_isp(kind, width=8, kernels="dilated", padding_mode="zeros", instance_norm=kind != "cameranet")
    runner = isp_runner(net, device="cpu", tile=256)
    old = isp.STATS_MEGAPIXELS, isp.STATS_CROP
    isp.STATS_MEGAPIXELS, isp.STATS_CROP = 0.01, 64  # force the reduced path on a small image
    try:
        m = _mosaic(161, 203, "GBRG")
        got = runner(m, "GBRG", noise=None, matrix=MATRIX.numpy())
    finally:
        isp.STATS_MEGAPIXELS, isp.STATS_CROP = old
    assert torch.allclose(got, _expected(m, "GBRG"), atol=2e-5)


def test_stat_crops_are_full_resolution_rggb_crops_on_a_grid():
    from rawdev.backends.isp import _stat_crops

    h, w = 301, 517
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    coded = (ys * 1000 + xs).float().reshape(1, 1, h, w)  # each value names its pixel
    crops = _stat_crops(coded, 64, 0.02)
    assert crops.shape == (4, 1, 64, 64)  # 0.02 MP / 64^2 = 4 crops, 2 x 2 for this aspect ratio
    tops = crops[:, 0, 0, 0]
    y0, x0 = (tops // 1000).long(), (tops % 1000).long()
    assert (y0 % 2 == 0).all() and (x0 % 2 == 0).all()  # an RGGB mosaic stays RGGB
    # pixels are the image's own, unscaled and contiguous
    assert torch.equal(crops[:, 0, 1:, :] - crops[:, 0, :-1, :], torch.full((4, 63, 64), 1000.0))
    assert torch.equal(crops[:, 0, :, 1:] - crops[:, 0, :, :-1], torch.ones(4, 64, 63))
    # spread over the image: one per quadrant
    assert sorted(zip((y0 > h // 2).tolist(), (x0 > w // 2).tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # a strip narrower than a crop gives crops as tall as the strip
    assert _stat_crops(coded[..., :40, :], 64, 0.01).shape[-2:] == (40, 64)


def test_pynet_context_of_a_large_image_is_pooled_from_full_resolution_crops(monkeypatch):
    """Instance-norm statistics and attention gates of a large image come from crops at the
    training scale, pooled as one image, not from a down-scaled copy (docs/learned_isp.md)."""
    from rawdev.backends import isp

    net = _perturbed("pynet-ca", instance_norm=True)
    runner = isp_runner(net, device="cpu", tile=256)
    monkeypatch.setattr(isp, "STATS_MEGAPIXELS", 0.02)
    monkeypatch.setattr(isp, "STATS_CROP", 64)
    seen = []
    orig = net.forward
    monkeypatch.setattr(net, "forward", lambda x, *a, **k: (seen.append(tuple(x.shape)), orig(x, *a, **k))[1])
    m = _mosaic(300, 420, "RGGB")
    aligned = m  # RGGB: the runner's alignment adds nothing
    ctx = runner.core.global_context(aligned, None, MATRIX)
    assert seen == [(4, 1, 64, 64)]
    assert all((s[0] if isinstance(s, tuple) else s).shape[0] == 1 for s in ctx["stats"])
    # the same statistics as recording the crops directly, pooled
    with torch.inference_mode(), net.record_stats(pooled=True) as want:
        orig(isp._stat_crops(aligned, 64, 0.02), MATRIX.expand(4, 3, 3), None)
    for a, b in zip(ctx["stats"], want):
        for ta, tb in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert torch.equal(ta, tb)
