"""Tests of rawdev.tiling: geometry, CFA phase of every tile, exact stitching and seam blending."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rawdev.cfa import BAYER_PATTERNS, pattern_cell
from rawdev.errors import BackendError, UsageError
from rawdev.tiling import (
    mirror_indices,
    raised_cosine_ramp,
    resolve_device,
    resolve_dtype,
    run_tiled,
    window_pattern,
)

from conftest import XTRANS



def colour_map(pattern, h: int, w: int) -> torch.Tensor:
    """(1, 1, h, w) float map of the colour index of every pixel."""
    cell = np.array(pattern_cell(pattern)) if isinstance(pattern, str) else np.asarray(pattern)
    p = cell.shape[0]
    return torch.from_numpy(np.tile(cell, (-(-h // p), -(-w // p)))[:h, :w]).float()[None, None]


def identity3(windows, pattern, noise=None):
    return windows.expand(-1, 3, -1, -1).clone()


class TestMirror:
    @pytest.mark.parametrize("size,pad", [(7, 3), (8, 5), (10, 9)])
    def test_period_2_is_reflect_padding(self, size, pad):
        x = torch.arange(size, dtype=torch.float32)[None, None]
        ref = F.pad(x, (pad, pad), mode="reflect")[0, 0]
        idx = mirror_indices(-pad, size + pad, size, period=2)
        assert torch.equal(x[0, 0][idx], ref)

    @pytest.mark.parametrize("period", [1, 2, 6])
    @pytest.mark.parametrize("size", [6, 7, 13, 40])
    def test_in_range_and_phase_kept(self, period, size):
        idx = mirror_indices(-50, size + 50, size, period=period)
        pos = torch.arange(-50, size + 50)
        assert int(idx.min()) >= 0 and int(idx.max()) < size
        assert torch.equal(idx[50 : 50 + size], torch.arange(size))
        assert torch.equal(torch.remainder(idx - pos, period), torch.zeros_like(idx))

    def test_too_short_axis(self):
        with pytest.raises(UsageError):
            mirror_indices(-2, 5, 4, period=6)

    def test_ramp_partition_of_unity(self):
        r = raised_cosine_ramp(16, dtype=torch.float64)
        assert torch.allclose(r + r.flip(0), torch.ones(16, dtype=torch.float64), atol=1e-12)
        assert float(r[0]) < 0.01 and float(r[-1]) > 0.99


class TestGeometry:
    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize("shape", [(1, 1, 37, 29), (2, 1, 64, 64), (1, 1, 51, 80)])
    @pytest.mark.parametrize("tile", [8, 14, 100])
    @pytest.mark.parametrize("exact", [True, False])
    def test_identity_runner_reproduces_input(self, pattern, shape, tile, exact):
        x = torch.rand(shape)
        out = run_tiled(identity3, x, pattern, tile=tile, margin=6, multiple=2, exact=exact)
        assert out.shape == (shape[0], 3, *shape[2:])
        torch.testing.assert_close(out, x.expand(-1, 3, -1, -1), atol=1e-6, rtol=0)

    @pytest.mark.parametrize("pattern", list(BAYER_PATTERNS) + [XTRANS])
    @pytest.mark.parametrize("shape", [(39, 31), (42, 60), (13, 17)])
    @pytest.mark.parametrize("margin", [0, 5, 12, 40])
    def test_every_window_matches_its_pattern(self, pattern, shape, margin):
        """The data seen by each tile (mirrored context included) follows the pattern passed with it."""
        cmap = colour_map(pattern, *shape)
        seen = []

        def check(windows, pat, noise=None):
            expect = colour_map(pat, *windows.shape[-2:])
            assert torch.equal(windows, expect.expand_as(windows))
            seen.append(windows.shape)
            return windows.expand(-1, 3, -1, -1)

        out = run_tiled(check, cmap, pattern, tile=12, margin=margin, multiple=2)
        assert torch.equal(out[:, :1], cmap)
        assert len(seen) > 1

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize("shape", [(33, 47), (40, 40)])
    def test_native_pattern_and_valid(self, pattern, shape):
        """valid=True with native_pattern: windows start on GRBG, are even, and the runner returns the interior."""
        x = torch.rand(1, 1, *shape)
        margin = 8

        def valid_runner(windows, pat, noise=None):
            assert pat == "GRBG"
            assert windows.shape[-2] % 2 == 0 and windows.shape[-1] % 2 == 0
            return windows[..., margin:-margin, margin:-margin].expand(-1, 3, -1, -1)

        out = run_tiled(valid_runner, x, pattern, tile=10, margin=margin, native_pattern="GRBG", valid=True)
        torch.testing.assert_close(out, x.expand(-1, 3, -1, -1), atol=0, rtol=0)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_region_reads_real_context(self, pattern):
        """A region of a crop, with the crop's margins as context, equals the whole image's pixels
        (a local filter: reflections at the crop's edges would differ)."""
        x = torch.rand(1, 1, 41, 53)
        k = torch.rand(1, 1, 5, 5)

        def blur(windows, pat, noise=None):  # valid 5x5 filter: needs a margin of 2
            return torch.nn.functional.conv2d(windows, k).expand(-1, 3, -1, -1)

        whole = run_tiled(blur, x, pattern, tile=8, margin=2, valid=True)
        crop = x[..., 6:35, 10:49]  # starts on even rows and columns: same pattern
        part = run_tiled(blur, crop, pattern, tile=8, margin=2, valid=True, region=(4, 25, 2, 36))
        assert part.shape == (1, 3, 21, 34)
        torch.testing.assert_close(part, whole[..., 10:31, 12:46], atol=1e-6, rtol=0)
        reflected = run_tiled(blur, crop[..., 4:25, 2:36], pattern, tile=8, margin=2, valid=True)
        assert (reflected - part).abs().max() > 1e-3  # the test can tell context from reflection

    def test_region_checks(self):
        x = torch.rand(1, 1, 20, 20)
        with pytest.raises(UsageError, match="region"):
            run_tiled(identity3, x, "RGGB", tile=8, margin=2, region=(1, 10, 0, 10))  # odd start
        with pytest.raises(UsageError, match="region"):
            run_tiled(identity3, x, "RGGB", tile=8, margin=2, region=(0, 21, 0, 10))
        with pytest.raises(UsageError, match="exact"):
            run_tiled(identity3, x, "RGGB", tile=8, margin=2, exact=False, region=(0, 10, 0, 10))

    def test_batched_equals_unbatched_and_noise_is_routed(self):
        x = torch.rand(3, 1, 50, 46)
        noise = torch.tensor([0.1, 0.2, 0.3])

        def add_noise(windows, pat, noise=None):
            return windows.expand(-1, 3, -1, -1) + noise.view(-1, 1, 1, 1)

        a = run_tiled(add_noise, x, "RGGB", tile=16, margin=4, noise=noise, batch=1)
        b = run_tiled(add_noise, x, "RGGB", tile=16, margin=4, noise=noise, batch=5)
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        torch.testing.assert_close(a, x.expand(-1, 3, -1, -1) + noise.view(-1, 1, 1, 1))

    @pytest.mark.parametrize("exact", [True, False])
    def test_concurrent_workers_equal_serial(self, exact):
        x = torch.rand(2, 1, 75, 66)

        def runner(windows, pat, noise=None):
            k = torch.ones(1, 1, 3, 3) / 9
            return torch.nn.functional.conv2d(windows, k, padding=1).expand(-1, 3, -1, -1) + windows.mean()

        threads = torch.get_num_threads()
        serial = run_tiled(runner, x, "GBRG", tile=16, margin=4, exact=exact, workers=1)
        done = []
        par = run_tiled(runner, x, "GBRG", tile=16, margin=4, exact=exact, workers=3, threads=2,
                        progress=lambda d, t: done.append((d, t)))
        torch.testing.assert_close(par, serial, atol=1e-6, rtol=0)
        assert torch.get_num_threads() == threads  # restored
        assert done[-1] == (50, 50) and len(done) == 50

    def test_workers_inside_inference_mode(self):
        """Regression: worker threads must write into an output allocated under inference mode."""
        x = torch.rand(1, 1, 40, 40)
        with torch.inference_mode():
            out = run_tiled(identity3, x, "RGGB", tile=8, margin=2, workers=2)
        torch.testing.assert_close(out, x.expand(-1, 3, -1, -1), atol=0, rtol=0)

    @pytest.mark.parametrize("balance", [True, False])
    def test_balanced_tiles(self, balance):
        sizes = set()

        def rec(windows, pat, noise=None):
            sizes.add(tuple(windows.shape[-2:]))
            return windows.expand(-1, 3, -1, -1)

        x = torch.rand(1, 1, 12, 40)  # tile 30 -> two tiles per row: 20 + 20 balanced, 30 + 10 plain
        out = run_tiled(rec, x, "RGGB", tile=30, margin=1, balance=balance)
        torch.testing.assert_close(out[:, :1], x, atol=0, rtol=0)
        assert {(h - 2, w - 2) for h, w in sizes} == {(12, 20)} if balance else {(12, 30), (12, 10)}

    def test_xtrans_origins_are_multiples_of_6(self):
        starts = []

        def rec(windows, pat, noise=None):
            starts.append(pat)
            return windows.expand(-1, 3, -1, -1)

        run_tiled(rec, colour_map(XTRANS, 40, 40), XTRANS, tile=10, margin=3, multiple=2)
        # tile rounded up to 12 (lcm(2, 6)); every window starts at origin - 3: the same cell each time
        assert all(np.array_equal(p, window_pattern(XTRANS, -3, -3)) for p in starts)
        assert len(starts) == 16

    def test_output_keeps_input_dtype(self):
        x = torch.rand(1, 1, 20, 20, dtype=torch.float64)
        out = run_tiled(identity3, x, "RGGB", tile=8, margin=2, dtype="float32")
        assert out.dtype == torch.float64


class TestBlend:
    @staticmethod
    def per_window_offset(windows, pat, noise=None):
        """Not shift-consistent: the result depends on the window's mean (like instance normalisation)."""
        return (windows + 2.0 * windows.mean(dim=(-2, -1), keepdim=True)).expand(-1, 3, -1, -1)

    def test_blend_hides_seams(self):
        h, w, tile = 96, 96, 32
        yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        x = (0.2 + 0.6 * xx * yy + 0.1 * torch.sin(6 * xx))[None, None]
        stitched = run_tiled(self.per_window_offset, x, "RGGB", tile=tile, margin=16, exact=True)
        blended = run_tiled(self.per_window_offset, x, "RGGB", tile=tile, margin=16, exact=False, overlap=8)

        def seam_metrics(img):
            """(step at the seams beyond the local slope, largest slope anywhere) along x."""
            d = (img[0, 0, :, 1:] - img[0, 0, :, :-1]).abs()
            step = max(float((d[:, s] - 0.5 * (d[:, s - 1] + d[:, s + 1])).abs().max()) for s in (tile - 1, 2 * tile - 1))
            return step, float(d.max())

        step_s, slope_s = seam_metrics(stitched)
        step_b, slope_b = seam_metrics(blended)
        assert step_s > 0.1  # the dummy back-end really makes seams when stitched
        assert step_b < 0.02 * step_s  # no step left where tiles meet
        assert slope_b < 0.2 * slope_s  # the offset is spread over the overlap

    def test_blend_of_exact_runner_is_exact(self):
        x = torch.rand(1, 1, 70, 53)
        out = run_tiled(identity3, x, "GBRG", tile=16, margin=8, exact=False, overlap=8)
        torch.testing.assert_close(out, x.expand(-1, 3, -1, -1), atol=1e-6, rtol=0)


class TestErrors:
    def test_bad_shape(self):
        with pytest.raises(UsageError):
            run_tiled(identity3, torch.rand(3, 20, 20), "RGGB", margin=2)
        with pytest.raises(UsageError):
            run_tiled(identity3, torch.zeros(1, 1, 20, 20, dtype=torch.int32), "RGGB", margin=2)

    def test_bad_pattern(self):
        with pytest.raises(UsageError):
            run_tiled(identity3, torch.rand(1, 1, 20, 20), "RGBX", margin=2)

    def test_valid_needs_exact(self):
        with pytest.raises(UsageError):
            run_tiled(identity3, torch.rand(1, 1, 20, 20), "RGGB", margin=2, valid=True, exact=False)

    def test_runner_shape_checked(self):
        with pytest.raises(BackendError):
            run_tiled(lambda w, p, noise=None: w[..., 1:, :], torch.rand(1, 1, 20, 20), "RGGB", margin=2)

    def test_runner_error_stops_the_workers(self):
        calls = []

        def bad(windows, pat, noise=None):
            calls.append(1)
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            run_tiled(bad, torch.rand(1, 1, 200, 200), "RGGB", tile=8, margin=2, workers=2)
        assert len(calls) < 100  # of 625 tiles

    def test_device_and_dtype(self):
        assert resolve_device("cpu").type == "cpu"
        assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
        with pytest.raises(UsageError):
            resolve_device("tpu")
        cpu = torch.device("cpu")
        assert resolve_dtype(None, cpu) == torch.float32
        with pytest.raises(UsageError):
            resolve_dtype("float16", cpu)
        with pytest.raises(UsageError):
            resolve_dtype("int8", cpu)
        if not torch.cuda.is_available():
            with pytest.raises(BackendError):
                resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_half_windows_back_to_cpu_output():
    x = torch.rand(1, 1, 40, 40)
    out = run_tiled(identity3, x, "RGGB", tile=16, margin=4, device="cuda", dtype="float16")
    assert out.device.type == "cpu" and out.dtype == torch.float32
    torch.testing.assert_close(out, x.expand(-1, 3, -1, -1), atol=1e-3, rtol=0)
