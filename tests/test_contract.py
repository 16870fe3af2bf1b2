"""The runner contract every registered back-end keeps: any Bayer phase, odd sizes, the typed CFA
layout; tiled output equals whole-image output where the spec says tiling is exact."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rawdev.backends import registry
from rawdev.cfa import BAYER_PATTERNS, align_phase, mosaic, pattern_after_crop
from rawdev.errors import UsageError
from rawdev.tiling import mirror_pad
from rawdev.types import CFALayout

MATRIX = np.array([[1.6, -0.4, -0.2], [-0.2, 1.4, -0.2], [0.0, -0.5, 1.5]], dtype=np.float32)
#: the learned ISPs' full-width windows take minutes on a 2-core CPU: in the slow run only
#: and jdd-fast-int8's quantised trunk is slow at these tiny tiles (14 s; its int8 path is covered by
#: tests/test_compress.py in the default run)
_SLOW = {"pynet", "pynet-ca", "cameranet", "cameranet-fast", "jdd-fast-int8"}


def _mosaic(h: int, w: int, pattern: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    img = (torch.rand(1, 3, h // 4 + 1, w // 4 + 1, generator=g))
    img = F.interpolate(img, size=(h, w), mode="bilinear", align_corners=False)
    return mosaic(img.clamp(0, 1), pattern)


@functools.lru_cache(maxsize=4)
def _runner(name: str, tile: int):
    # one build per back-end and tile size: building jdd-fast-int8 (quantised trunk) costs seconds,
    # and a runner holds no per-image state
    return registry.get(name).build(device="cpu", tile=tile)


def _run(name: str, m: torch.Tensor, layout: CFALayout, tile: int) -> torch.Tensor:
    spec = registry.get(name)
    run = _runner(name, tile)
    kw = {}
    if spec.output_domain == "srgb_display":
        kw = {"noise": torch.tensor([2e-3, 2e-5]), "matrix": MATRIX}
    elif spec.uses_noise:
        kw = {"noise": torch.tensor([0.02])}
    with torch.inference_mode():
        return run(m, layout, **kw)


def _device_backends() -> list:
    return [pytest.param(s.name, marks=pytest.mark.slow) if s.name in _SLOW else s.name
            for s in registry.list_backends() if s.input_domain.startswith("mosaic")]


@pytest.mark.parametrize("name", _device_backends())
def test_every_phase_odd_size_tiled_equals_whole(name):
    spec = registry.get(name)
    for pattern in BAYER_PATTERNS:
        m = _mosaic(37, 53, pattern)
        layout = CFALayout.of(pattern)
        whole = _run(name, m, layout, tile=4096)
        tiled = _run(name, m, layout, tile=16)
        assert whole.shape == (1, 3, 37, 53) and torch.isfinite(whole).all(), (name, pattern)
        if spec.tile_exact:
            assert torch.allclose(tiled, whole, atol=1e-5), (name, pattern, float((tiled - whole).abs().max()))
        else:  # cross-faded tiles: close, not equal
            assert float((tiled - whole).abs().mean()) < 0.05, (name, pattern)
        # the typed layout and its pattern string are the same input
        assert torch.equal(_run(name, m, pattern, tile=4096), whole), (name, pattern)


class TestCFALayout:
    def test_one_classification(self):
        assert CFALayout.of("grbg").bayer_pattern == "GRBG" and CFALayout.of("GRBG").period == 2
        assert CFALayout.of(np.array([[2, 1], [1, 0]])).bayer_pattern == "BGGR"
        lay = CFALayout.of("RGGB")
        assert CFALayout.of(lay) is lay
        with pytest.raises(UsageError):
            CFALayout.of("RGBW")
        with pytest.raises(UsageError):
            CFALayout.of(np.ones((6, 6), dtype=int))  # an X-Trans cell needs all three colours

    def test_xtrans_cell(self):
        from conftest import XTRANS

        lay = CFALayout.of(XTRANS)
        assert lay.kind == "xtrans" and lay.period == 6 and lay.bayer_pattern is None
        assert np.array_equal(lay.shifted(1, 2).cell, np.roll(XTRANS, (-1, -2), axis=(0, 1)))

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_shifted_is_the_crop_pattern(self, pattern):
        for top in range(-3, 4):
            for left in range(-3, 4):
                assert CFALayout.of(pattern).shifted(top, left).bayer_pattern == pattern_after_crop(pattern, top, left)


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("offset", [0, 1, 32])
def test_align_phase_starts_on_the_target(pattern, offset):
    for target in BAYER_PATTERNS:
        dy, dx = align_phase(pattern, target, offset)
        assert pattern_after_crop(pattern, -offset - dy, -offset - dx) == target


@pytest.mark.parametrize("shape", [(2, 3), (5, 4), (9, 11)])
def test_mirror_pad_is_repeated_reflection(shape):
    """One mirror for every pad: equal to ``F.pad(mode="reflect")`` applied step by step (each step
    shorter than the axis), whatever the pad's length."""
    x = torch.arange(float(np.prod(shape))).reshape(1, 1, *shape)
    pads = (7, 5, 3, 6)  # top, bottom, left, right
    want = x
    t, b, left, r = pads
    while t or b or left or r:
        st, sb = min(t, want.shape[-2] - 1), min(b, want.shape[-2] - 1)
        sl, sr = min(left, want.shape[-1] - 1), min(r, want.shape[-1] - 1)
        want = F.pad(want, (sl, sr, st, sb), mode="reflect")
        t, b, left, r = t - st, b - sb, left - sl, r - sr
    assert torch.equal(mirror_pad(x, *pads), want)


class TestRunnerAdapter:
    """rawdev.backends.runner.Runner is the one reader of a spec's CFA needs, margin and exactness."""

    def test_torch_free_margins_agree_with_the_networks(self):
        from rawdev.backends.specs import JDD_XTRANS_MARGIN
        from rawdev.models.gharbi2016 import XTRANS_BORDER

        assert JDD_XTRANS_MARGIN == XTRANS_BORDER

    def test_runner_reads_the_spec(self):
        """A recording core sees windows on the spec's native pattern, grown by the spec's margin
        and padded to its multiple; changing the spec (not the core) changes what it sees."""
        from dataclasses import replace

        from rawdev.backends.runner import Runner, execution

        seen = []

        class Core:
            pad_multiple = 8

            def __call__(self, windows, layout, noise=None):
                seen.append((tuple(windows.shape[-2:]), layout.bayer_pattern))
                return windows.expand(-1, 3, -1, -1)

        base = replace(registry.get("jdd"), margin=6, native_pattern="RGGB", tile_exact=True)
        m = _mosaic(21, 30, "GBRG")
        for native in ("RGGB", "BGGR"):
            seen.clear()
            out = Runner(replace(base, native_pattern=native), Core(), execution("cpu", tile=16, workers=1))(m, "GBRG")
            assert out.shape == (1, 3, 21, 30)
            assert {p for _, p in seen} == {native}
            assert all(h % 8 == 0 and w % 8 == 0 for (h, w), _ in seen)
            # exact stitching of an identity core gives the input back, whatever the alignment
            assert torch.equal(out[:, :1], m)

    def test_cfa_kind_outside_the_spec_is_refused(self):
        from conftest import XTRANS

        from rawdev.errors import BackendError

        with pytest.raises(BackendError, match="bayer sensors only.*jdd"):
            _runner("malvar", 64)(torch.rand(1, 1, 24, 24), XTRANS)


def test_band_margin_covers_the_margin_and_the_alignment():
    """The pipeline's regions get the spec's margin plus a cell of real context, on whole cells."""
    from conftest import XTRANS

    run = _runner("jdd", 64)
    spec = registry.get("jdd")
    bayer, xtrans = CFALayout.of("GBRG"), CFALayout.of(XTRANS)
    assert run.exact == spec.tile_exact
    assert run.band_margin(bayer) % 2 == 0 and run.band_margin(bayer) >= spec.margin + 2
    assert run.band_margin(xtrans) % 6 == 0 and run.band_margin(xtrans) >= spec.margin + 6
