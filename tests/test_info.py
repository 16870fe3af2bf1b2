"""Tests of ``rawdev info`` and of embedded previews (rawdev.io.preview)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rawdev.cli import app
from rawdev.errors import UnsupportedFileError
from rawdev.io import preview as preview_mod
from rawdev.synthetic import write_dng

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="module")
def dngs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("info")
    img = np.random.default_rng(0).random((40, 60, 3)) * 0.6
    return {
        "plain": write_dng(d / "plain.dng", img, pattern="GRBG", black=(500, 510, 520, 530), white=4095),
        "rot": write_dng(d / "rot.dng", img, orientation=6),
    }


def test_info_human(dngs):
    r = CliRunner().invoke(app, ["info", str(dngs["plain"])])
    assert r.exit_code == 0, r.output
    out = r.output
    for text in ("rawdev Synthetic", "60 x 40", "Bayer GRBG", "R 510 G 500 B 520 G 530 / 4095 (12-bit)", "1/125 s", "f/5.6",
                 "ISO 200", "camera RGB -> linear sRGB", "developable    yes: Bayer GRBG", "malvar", "preview        none"):
        assert text in out, text


def test_info_json_and_orientation(dngs):
    r = CliRunner().invoke(app, ["info", "--json", str(dngs["plain"]), str(dngs["rot"])])
    assert r.exit_code == 0
    a, b = (json.loads(ln) for ln in r.output.splitlines())
    assert a["cfa"] == {"kind": "bayer", "color_desc": "RGBG", "colors": 3, "pattern": "GRBG"}
    assert a["white_level"] == 4095 and len(a["black_level"]) == 4
    assert len(a["rgb_cam"]) == 3 and all(len(row) == 3 for row in a["rgb_cam"])
    assert a["camera_wb"][1] == 1.0 and a["developable"] is True and a["preview"] is None
    assert b["orientation"] == 6 and (b["width"], b["height"]) == (40, 60) and (b["output_width"], b["output_height"]) == (60, 40)


def test_info_bad_and_good_files(dngs, tmp_path):
    bad = tmp_path / "bad.nef"
    bad.write_bytes(b"\0" * 1000)
    r = CliRunner().invoke(app, ["info", str(bad), str(dngs["plain"])])
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("rawdev: error")]
    assert len(errors) == 1 and "bad.nef" in errors[0] and "not a RAW format" in errors[0]
    assert "Bayer GRBG" in r.output  # the good file is still described
    r = CliRunner().invoke(app, ["info", "--json", str(bad)])
    assert json.loads(r.stdout.splitlines()[0])["developable"] is False


REAL = {
    "nikon_d1.nef": ("bayer", "BGGR", ("bitmap", 160, 120)),
    "canon_powershot_g1.crw": ("other", None, ("jpeg", 640, 480)),
    "canon_eos_6d_acr_lossy_linear.dng": ("linear", None, ("jpeg", 1024, 683)),
    "blackmagic_pocket_cinema_camera.dng": ("bayer", "GBRG", None),
    "kodak_dc50.kdc": ("bayer", "GRBG", ("bitmap", 96, 64)),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_info_real_files(name):
    path = SHARED / "raw" / name
    if not path.is_file():
        pytest.skip("needs ../shared/raw")
    kind, pattern, prev = REAL[name]
    r = CliRunner().invoke(app, ["info", "--json", str(path)])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["developable"] is True and info["cfa"]["kind"] == kind
    assert info["cfa"].get("pattern") == pattern
    if prev is None:
        assert info["preview"] is None and "no embedded preview" in info["preview_reason"]
    else:
        assert (info["preview"]["format"], info["preview"]["width"], info["preview"]["height"]) == prev


def test_write_preview_applies_orientation(monkeypatch, tmp_path):
    bmp = np.zeros((20, 30, 3), np.uint8)
    bmp[0, 0] = (255, 0, 0)  # top-left red
    monkeypatch.setattr(preview_mod, "read_preview",
                        lambda p: preview_mod.Preview("bitmap", 30, 20, 6, bitmap=bmp))
    src = tmp_path / "x.dng"
    src.write_bytes(b"raw")
    w, h = preview_mod.write_preview(src, tmp_path / "p.png")
    assert (w, h) == (20, 30)
    from PIL import Image

    with Image.open(tmp_path / "p.png") as im:
        px = np.asarray(im.convert("RGB"))
    assert px.shape == (30, 20, 3) and tuple(px[0, -1]) == (255, 0, 0)  # rotated 90 clockwise: top-right


def test_write_preview_copies_an_upright_jpeg_unchanged(monkeypatch, tmp_path):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (10, 200, 30)).save(buf, "JPEG")
    data = buf.getvalue()
    monkeypatch.setattr(preview_mod, "read_preview", lambda p: preview_mod.Preview("jpeg", 16, 8, 1, jpeg=data))
    src = tmp_path / "x.dng"
    src.write_bytes(b"raw")
    assert preview_mod.write_preview(src, tmp_path / "p.jpg") == (16, 8)
    assert (tmp_path / "p.jpg").read_bytes() == data
    assert not list(tmp_path.glob(".*rawdev-tmp"))


def test_read_preview_without_one(dngs):
    with pytest.raises(UnsupportedFileError, match="no embedded preview"):
        preview_mod.read_preview(dngs["plain"])


@pytest.mark.skipif(not (SHARED / "raw" / "canon_powershot_g1.crw").is_file(), reason="needs ../shared/raw")
def test_preview_image_real():
    img = preview_mod.preview_image(SHARED / "raw" / "canon_powershot_g1.crw")
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8 and img.std() > 5


def test_info_counts_clipped_photosites(tmp_path):
    """Per colour, the share of photosites at the clip point, with the hint where some are."""
    h, w = 64, 96
    scene = np.full((h, w, 3), 0.4, np.float32)
    scene[:, w // 2 :] = [0.5, 1.4, 0.6]  # green far above white on the right half only
    path = write_dng(tmp_path / "c.dng", scene, pattern="GRBG")
    r = CliRunner().invoke(app, ["info", str(path), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    data = data[0] if isinstance(data, list) else data
    assert data["clipped"]["G"] == pytest.approx(0.5, abs=0.02) and data["clipped"]["R"] == data["clipped"]["B"] == 0
    assert "-H reconstruct rebuilds them" in CliRunner().invoke(app, ["info", str(path)]).output
    flat = write_dng(tmp_path / "f.dng", np.full((h, w, 3), 0.4, np.float32))
    assert "-H reconstruct" not in CliRunner().invoke(app, ["info", str(flat)]).output
