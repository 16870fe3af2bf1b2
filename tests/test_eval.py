"""Tests of the metrics, the demosaicking evaluation protocol and ``rawdev eval demosaic``.

Tests on the staged data sets skip when ``../shared`` (next to the repository) is absent; the full-set
reproductions of the published numbers are ``slow``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rawdev.backends import registry
from rawdev.backends.registry import BackendSpec
from rawdev.errors import InputError, UnknownBackendError, UnsupportedFileError, UsageError
from rawdev.evaluate import demosaic as ev
from rawdev.evaluate.metrics import cpsnr, psnr, ssim

SHARED = Path(__file__).resolve().parents[2] / "shared"
KODAK = SHARED / "data" / "kodak24"
MCMASTER = SHARED / "data" / "mcmaster"
needs_kodak = pytest.mark.skipif(not KODAK.is_dir(), reason="staged Kodak24 (../shared) not available")
needs_mcmaster = pytest.mark.skipif(not MCMASTER.is_dir(), reason="staged McMaster (../shared) not available")


def _write_photos(folder: Path, sizes=((40, 52), (37, 45))) -> list[Path]:
    """Small smooth RGB PNGs (one of odd size), plus a non-image file that must be ignored."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (h, w) in enumerate(sizes):
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        rgb = np.stack([0.5 + 0.4 * np.sin(6 * x + i), 0.5 + 0.3 * np.cos(5 * y), 0.4 + 0.3 * np.sin(4 * x * y)], -1)
        p = folder / f"img{i + 1}.png"
        Image.fromarray((rgb * 255).round().astype(np.uint8)).save(p)
        paths.append(p)
    (folder / "notes.txt").write_text("not an image")
    return paths


# --- metrics ------------------------------------------------------------------------------------------------


class TestMetrics:
    def test_cpsnr_known_value_and_border(self):
        a = torch.zeros(3, 32, 32, dtype=torch.uint8)
        b = a.clone()
        b[1, 16, 16] = 255  # one wrong value among 3 * 12 * 12 after a 10 px crop
        assert float(cpsnr(a, b, border=10)) == pytest.approx(10 * math.log10(3 * 12 * 12))
        b[0, 0, 0] = 255  # in the border: ignored
        assert float(cpsnr(a, b, border=10)) == pytest.approx(10 * math.log10(3 * 12 * 12))
        assert float(cpsnr(a, b, border=0)) == pytest.approx(10 * math.log10(3 * 32 * 32 / 2))
        assert math.isinf(float(cpsnr(a, a)))

    def test_cpsnr_batch_and_errors(self):
        a = torch.randint(0, 256, (2, 3, 30, 30), dtype=torch.uint8)
        assert cpsnr(a, a.flip(-1), border=5).shape == (2,)
        with pytest.raises(UsageError):
            cpsnr(a.float(), a.float())
        with pytest.raises(UsageError):
            cpsnr(a, a[..., :20])
        with pytest.raises(UsageError):
            cpsnr(a, a, border=15)

    def test_psnr_float(self):
        x = torch.zeros(2, 3, 8, 8)
        y = torch.full((2, 3, 8, 8), 0.1)
        assert torch.allclose(psnr(x, y), torch.tensor([20.0, 20.0], dtype=torch.float64))

    def test_ssim_identity_and_range(self):
        x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
        assert float(ssim(x[0], 1 - x[0])) < 0.1
        with pytest.raises(UsageError):
            ssim(x[..., :8, :8], x[..., :8, :8])

    def test_ssim_matches_scikit_image(self):
        skm = pytest.importorskip("skimage.metrics")
        g = torch.Generator().manual_seed(3)
        x = torch.rand(3, 48, 57, generator=g, dtype=torch.float64)
        y = (x + 0.1 * torch.randn(3, 48, 57, generator=g, dtype=torch.float64)).clamp(0, 1)
        ref = skm.structural_similarity(
            x.permute(1, 2, 0).numpy(), y.permute(1, 2, 0).numpy(), channel_axis=-1, data_range=1.0,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
        assert float(ssim(x, y)) == pytest.approx(ref, abs=1e-9)


# --- images and noise ------------------------------------------------------------------------------------------


def test_list_images_natural_order_and_errors(tmp_path):
    for name in ("10.tif", "2.png", "1.jpg", "readme.md"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in ev.list_images(tmp_path)] == ["1.jpg", "2.png", "10.tif"]
    with pytest.raises(InputError):
        ev.list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        ev.list_images(tmp_path / "empty")
    with pytest.raises(InputError):
        ev.list_images(tmp_path / "2.png")


def test_load_image_modes(tmp_path):
    Image.fromarray(np.full((5, 6), 77, np.uint8)).save(tmp_path / "grey.png")
    img = ev.load_image(tmp_path / "grey.png")
    assert img.shape == (3, 5, 6) and img.dtype == torch.uint8 and int(img[2, 4, 5]) == 77
    Image.fromarray(np.full((5, 6), 4000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(UnsupportedFileError):
        ev.load_image(tmp_path / "deep.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError):
        ev.load_image(tmp_path / "bad.png")


def test_gaussian_noise_is_seeded_and_scaled():
    m = torch.full((1, 1, 200, 200), 0.5)
    n1, level = ev.add_noise(m, sigma=10, generator=torch.Generator().manual_seed(7))
    n2, _ = ev.add_noise(m, sigma=10, generator=torch.Generator().manual_seed(7))
    assert torch.equal(n1, n2) and n1.dtype == m.dtype
    assert float((n1 - m).std()) == pytest.approx(10 / 255, rel=0.03)
    assert torch.allclose(level, torch.tensor([10 / 255], dtype=torch.float64))


def test_shot_read_noise_is_heteroscedastic():
    dark = torch.full((1, 1, 200, 200), 0.1)
    bright = torch.full((1, 1, 200, 200), 0.9)
    kw = dict(model="shot-read", shot=1e-3, read=1e-6)
    nd, ld = ev.add_noise(dark, generator=torch.Generator().manual_seed(0), **kw)
    nb, lb = ev.add_noise(bright, generator=torch.Generator().manual_seed(0), **kw)
    assert float(lb) > 0 and float(ld) > 0 and float(lb) != pytest.approx(float(ld), rel=0.05)
    assert float((nb - bright).std()) == pytest.approx(float(lb), rel=0.05)
    same, level0 = ev.add_noise(bright, model="shot-read", generator=torch.Generator().manual_seed(0))
    assert torch.allclose(same, bright, atol=1e-6) and float(level0) < 1e-6
    with pytest.raises(UsageError):
        ev.add_noise(bright, model="poisson")


# --- the protocol on synthetic photos -----------------------------------------------------------------------


def test_evaluate_synthetic_folder(tmp_path):
    _write_photos(tmp_path)
    res = ev.evaluate_demosaic(tmp_path, "malvar", border=4, device="cpu", with_ssim=True)
    assert [r.name for r in res.rows] == ["img1.png", "img2.png"]
    assert (res.rows[1].height, res.rows[1].width) == (37, 45)
    assert all(35 < r.cpsnr < 100 and 0.9 < r.ssim <= 1 for r in res.rows)
    assert res.mean_cpsnr == pytest.approx(np.mean([r.cpsnr for r in res.rows]))
    d = json.loads(json.dumps(res.to_dict()))
    assert d["mean"]["images"] == 2 and d["pattern"] == "RGGB"
    assert len(ev.evaluate_demosaic(tmp_path, "bilinear", border=4, device="cpu", limit=1).rows) == 1


def test_evaluate_hands_noise_to_the_runner(tmp_path, monkeypatch):
    _write_photos(tmp_path)
    seen = []

    def build(device="cpu", **_):
        def run(m, pattern, noise=None):
            seen.append((tuple(m.shape), pattern, None if noise is None else noise.tolist()))
            return m.expand(-1, 3, -1, -1).clone()
        return run

    fake = BackendSpec(name="fake-jdd", kind="learned", description="test double", build=build, uses_noise=True)
    monkeypatch.setattr(registry, "get", lambda name: fake)
    res = ev.evaluate_demosaic(tmp_path, "fake-jdd", pattern="GRBG", noise_sigma=5, device="cpu", border=2)
    assert seen[0][0] == (1, 1, 40, 52) and seen[0][1] == "GRBG"
    assert seen[0][2] == [pytest.approx(5 / 255)] and res.rows[0].noise_sigma == pytest.approx(5 / 255)
    # The same seed gives the same noise and so the same score; another seed does not.
    again = ev.evaluate_demosaic(tmp_path, "fake-jdd", pattern="GRBG", noise_sigma=5, device="cpu", border=2)
    other = ev.evaluate_demosaic(tmp_path, "fake-jdd", pattern="GRBG", noise_sigma=5, device="cpu", border=2, seed=9)
    assert again.rows[0].cpsnr == res.rows[0].cpsnr != other.rows[0].cpsnr
    seen.clear()
    ev.evaluate_demosaic(tmp_path, "fake-jdd", device="cpu", border=2)
    assert seen[0][2] is None


def test_evaluate_errors(tmp_path, monkeypatch):
    _write_photos(tmp_path)
    with pytest.raises(UnknownBackendError):
        ev.evaluate_demosaic(tmp_path, "no-such-method")
    with pytest.raises(InputError):
        ev.evaluate_demosaic(tmp_path / "missing", "malvar")
    with pytest.raises(UsageError):
        ev.evaluate_demosaic(tmp_path, "malvar", pattern="RGBG")
    with pytest.raises(UsageError):
        ev.evaluate_demosaic(tmp_path, "malvar", noise_sigma=5, noise_model="shot-read")
    with pytest.raises(UsageError):
        ev.evaluate_demosaic(tmp_path, "malvar", shot=1e-3)
    with pytest.raises(UsageError):
        ev.evaluate_demosaic(tmp_path, "malvar", border=30, device="cpu")
    e2e = BackendSpec(name="e2e", kind="learned", description="", replaces=("demosaic", "colour", "tone"),
                      build=lambda **_: None)
    monkeypatch.setattr(registry, "get", lambda name: e2e)
    with pytest.raises(UsageError):
        ev.evaluate_demosaic(tmp_path, "e2e", device="cpu")


# --- the command line -------------------------------------------------------------------------------------------


def test_cli_json_markdown_table(tmp_path):
    from typer.testing import CliRunner

    from rawdev.cli.evaluate import app

    _write_photos(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["demosaic", str(tmp_path), "--method", "bilinear", "--border", "4", "--json",
                            "--device", "cpu"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["method"] == "bilinear" and len(d["rows"]) == 2 and d["border"] == 4
    r = runner.invoke(app, ["demosaic", str(tmp_path), "-m", "malvar", "--border", "4", "--markdown", "--limit", "1"])
    assert r.exit_code == 0 and "| img1.png | 52x40 |" in r.stdout and "img2" not in r.stdout
    r = runner.invoke(app, ["demosaic", str(tmp_path), "-m", "menon", "--border", "4", "--ssim", "--noise", "2"])
    assert r.exit_code == 0 and "mean of 2" in r.stdout and "SSIM" in r.stdout
    # Errors: one line on stderr and the error class's exit code, no traceback.
    r = runner.invoke(app, ["demosaic", str(tmp_path / "nope"), "-m", "malvar"])
    assert r.exit_code == InputError.exit_code and "no such folder" in r.stderr and "Traceback" not in r.stderr
    r = runner.invoke(app, ["demosaic", str(tmp_path), "-m", "malvar", "--json", "--markdown"])
    assert r.exit_code == UsageError.exit_code == 2
    r = runner.invoke(app, ["demosaic", str(tmp_path), "-m", "no-such-method"])
    assert r.exit_code == UnknownBackendError.exit_code == 2 and "unknown back-end" in r.stderr


# --- the staged data sets ----------------------------------------------------------------------------------------


@needs_kodak
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", ["bilinear", "malvar"])
def test_two_kodak_images_match_colour_demosaicing(method):
    """Our protocol and an independent one built on colour-demosaicing give the same CPSNR."""
    cd = pytest.importorskip("colour_demosaicing")
    ref_fn = {"bilinear": cd.demosaicing_CFA_Bayer_bilinear, "malvar": cd.demosaicing_CFA_Bayer_Malvar2004}[method]
    files = [KODAK / "kodim01.png", KODAK / "kodim02.png"]
    res = ev.evaluate_demosaic(KODAK, method, files=files, device="cpu")
    for row, f in zip(res.rows, files):
        gt = np.asarray(Image.open(f)).astype(np.float64)
        cfa = cd.mosaicing_CFA_Bayer(gt / 255, "RGGB")
        out = np.round(np.clip(ref_fn(cfa, "RGGB"), 0, 1) * 255)
        mse = np.mean((out - gt)[10:-10, 10:-10] ** 2)
        # float32 (ours) vs float64 (theirs) can round exact .5 values of 8-bit averages differently.
        assert row.cpsnr == pytest.approx(10 * np.log10(255**2 / mse), abs=0.01)


# Published / calibrated figures: RGGB, border 10 (docs: shared published_numbers.md sections 1 and 4).
EXPECTED = {
    ("bilinear", "kodak24"): 30.24, ("bilinear", "mcmaster"): 32.30,
    ("malvar", "kodak24"): 35.78, ("malvar", "mcmaster"): 34.43,
    ("menon", "kodak24"): 39.27, ("menon", "mcmaster"): 34.20,
}


@pytest.mark.slow
@pytest.mark.parametrize("method,dataset", list(EXPECTED))
def test_full_protocol_reproduces_published_numbers(method, dataset):
    folder = SHARED / "data" / dataset
    if not folder.is_dir():
        pytest.skip(f"staged {dataset} (../shared) not available")
    res = ev.evaluate_demosaic(folder, method, device="cpu")
    assert len(res.rows) == (24 if dataset == "kodak24" else 18)
    assert res.mean_cpsnr == pytest.approx(EXPECTED[method, dataset], abs=0.02)
