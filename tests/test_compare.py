"""Tests of rawdev.compare and ``rawdev compare``: region choice, metrics, the contact sheet, and end
to end on a round-trip DNG with its truth image and on a real file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

from rawdev.compare import BackendRun, Comparison, contact_sheet, image_metrics, pick_regions
from rawdev.synthetic import demo_scene, write_demo_dng, write_dng

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"


def test_pick_regions_finds_planted_differences_apart_and_inside():
    score = np.zeros((400, 600), np.float32)
    score[300:320, 100:120] = 5.0  # strongest
    score[50:60, 500:510] = 3.0
    score[0:6, 0:6] = 1000.0  # within the border: never chosen
    score[305:315, 130:140] = 1.0  # next to the strongest: must not give an overlapping crop
    regions = pick_regions(score, 32, 3, border=8)
    assert len(regions) == 3
    (y0, x0), (y1, x1) = regions[0], regions[1]
    assert y0 <= 300 and y0 + 32 >= 320 and x0 <= 100 and x0 + 32 >= 120
    assert y1 <= 50 and y1 + 32 >= 60 and x1 <= 500 and x1 + 32 >= 510
    for a in range(3):
        ya, xa = regions[a]
        assert 8 <= ya <= 400 - 32 - 8 and 8 <= xa <= 600 - 32 - 8
        for b in range(a):
            yb, xb = regions[b]
            assert abs(ya - yb) >= 32 or abs(xa - xb) >= 32, "crops overlap"


def test_pick_regions_small_image():
    regions = pick_regions(np.ones((20, 30), np.float32), 48, 3)
    assert regions and all(0 <= y <= 20 and 0 <= x <= 30 for y, x in regions)


def test_metrics_identity_and_banding_equals_whole_image():
    from rawdev.evaluate import metrics
    import torch

    rng = np.random.default_rng(0)
    a = rng.random((1030, 24, 3)).astype(np.float32)  # taller than one band of rows
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    p, s = image_metrics(a, a)
    assert p == float("inf") and s == pytest.approx(1.0)
    p, s = image_metrics(b, a)
    ta, tb = (torch.from_numpy(x).permute(2, 0, 1) for x in (a, b))
    assert p == pytest.approx(float(metrics.psnr(tb, ta)), rel=1e-9)
    assert s == pytest.approx(float(metrics.ssim(tb, ta)), rel=1e-7)


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    a = rng.random((64, 80, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    _, s = image_metrics(b.astype(np.float32), a.astype(np.float32))
    ref = skm.structural_similarity(b, a, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
    assert s == pytest.approx(ref, abs=1e-5)


def test_contact_sheet_layout_with_a_failed_backend():
    rng = np.random.default_rng(2)
    img = (rng.random((120, 180, 3)) * 65535).astype(np.uint16)
    other = img.copy()
    other[40:60, 50:70] = 0
    runs = [BackendRun("a", True, img, 0.5, 100.0, "a"), BackendRun("b", True, other, 1.5, 120.0, "b", psnr=30.0, ssim=0.9),
            BackendRun("c", False, reason="the decoder crashed (SIGSEGV)")]
    spread = np.abs(img[..., 1].astype(np.float32) - other[..., 1]) / 257
    comp = Comparison(Path("x.dng"), runs, crop_size=24, spread=spread, regions=pick_regions(spread, 24, 2))
    assert comp.regions[0] == (pytest.approx(40, abs=8), pytest.approx(50, abs=8))
    sheet = contact_sheet(comp, zoom=4)
    # 3 back-end rows and the difference row, each one crop tile (24 x 4) high
    assert sheet.size[1] > 4 * 96 and sheet.size[0] >= 230 + 2 * 96
    px = np.asarray(sheet)
    assert px.std() > 10  # not blank


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory) -> tuple[Path, Path]:
    """A synthetic DNG (the demo scene, a real camera matrix, noise) and its truth image (16-bit TIFF)."""
    from rawdev.io.write import write_image

    d = tmp_path_factory.mktemp("rt")
    dng = write_demo_dng(d / "demo.dng", 480, 320)
    lin = np.clip(demo_scene(480, 320), 0.0, 1.0)
    enc = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    truth = write_image(d / "truth.tif", np.round(enc * 65535).astype(np.uint16))
    return dng, truth


def test_compare_roundtrip_with_truth(roundtrip, tmp_path):
    from PIL import Image

    dng, truth = roundtrip
    out = tmp_path / "cmp"
    p = run_cli("compare", str(dng), "--reference", str(truth), "-b", "bilinear,malvar", "-o", str(out))
    assert p.returncode == 0, p.stderr
    sheet = out / "demo.compare.png"
    with Image.open(sheet) as im:
        assert im.format == "PNG" and im.size[0] > 800 and im.size[1] > 600
    md = (out / "report.md").read_text()
    assert "demo.compare.png" in md and (out / "report.html").is_file()
    psnr = {m[0]: float(m[1]) for m in re.findall(r"^\| (\w+) \| ok \| [^|]+ \| [^|]+ \| ([\d.]+) dB \| 0\.\d+ \|$", md, re.M)}
    assert set(psnr) == {"bilinear", "malvar"}
    assert 15 < psnr["bilinear"] < psnr["malvar"] < 60  # Malvar2004 beats bilinear on the demo scene


def test_compare_reference_of_wrong_size_is_reported(roundtrip, tmp_path):
    from rawdev.io.write import write_image

    dng, _ = roundtrip
    bad = write_image(tmp_path / "small.png", np.zeros((10, 10, 3), np.uint8))
    p = run_cli("compare", str(dng), "--reference", str(bad), "-b", "malvar", "-o", str(tmp_path / "c"))
    assert p.returncode == 0 and "no metrics" in p.stderr
    assert (tmp_path / "c" / "demo.compare.png").is_file()


def test_compare_usage_errors(roundtrip, tmp_path):
    from typer.testing import CliRunner

    from rawdev.cli import app

    dng, truth = roundtrip
    r = CliRunner().invoke(app, ["compare", str(dng), "-b", "malvr", "-o", str(tmp_path / "c")])
    assert r.exit_code == 2 and "malvar" in r.output
    r = CliRunner().invoke(app, ["compare", str(dng.parent), "--reference", str(truth), "-o", str(tmp_path / "c")])
    assert r.exit_code == 2 and "single RAW file" in r.output
    assert not (tmp_path / "c").exists()


def test_compare_folder(tmp_path):
    rng = np.random.default_rng(3)
    for name in ("a.dng", "sub/b.dng"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        write_dng(tmp_path / "in" / name, rng.random((64, 96, 3)) * 0.6)
    p = run_cli("compare", str(tmp_path / "in"), "-b", "bilinear", "-o", str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "c" / "a.compare.png").is_file() and (tmp_path / "c" / "sub__b.compare.png").is_file()
    md = (tmp_path / "c" / "report.md").read_text()
    assert md.count("![contact sheet") == 2 and md.count("| bilinear | ok |") == 2


@pytest.mark.skipif(not (SHARED / "raw" / "kodak_dc50.kdc").is_file(), reason="needs ../shared/raw")
def test_compare_real_file_against_libraw(tmp_path):
    p = run_cli("compare", str(SHARED / "raw" / "kodak_dc50.kdc"), "-b", "malvar", "--reference-backend", "libraw",
                   "-o", str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "c" / "report.md").read_text()
    assert "libraw (reference)" in md
    (db,) = re.findall(r"\| malvar \| ok \| .* \| ([\d.]+) dB \| 0\.\d+ \|", md)
    assert float(db) > 25  # the same pipeline, only the demosaic differs
    assert (tmp_path / "c" / "kodak_dc50.compare.png").stat().st_size > 10_000
