"""`rawdev develop` from the command line: outputs, metadata, and bad input (one line, exit code,
no output file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

from rawdev.synthetic import write_dng


def rawdev(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rawdev", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def rotated_dng(tmp_path_factory) -> Path:
    from rawdev.synthetic import demo_scene

    return write_dng(tmp_path_factory.mktemp("rot") / "rot6.dng", demo_scene(120, 80), pattern="BGGR", orientation=6)


def test_jpeg_png_tiff_with_exif_icc_and_orientation(tmp_path, rotated_dng):
    import rawpy

    with rawpy.imread(str(rotated_dng)) as raw:
        assert (raw.sizes.width, raw.sizes.height, raw.sizes.flip) == (80, 120, 6)
    for ext in ("jpg", "png", "tif"):
        out = tmp_path / f"o.{ext}"
        r = run_cli("develop", rotated_dng, "-o", out)
        assert r.returncode == 0, r.stderr
        if ext == "tif":
            import tifffile

            with tifffile.TiffFile(out) as t:
                page = t.pages[0]
                img = page.asarray()
                tags = {tag.code: tag.value for tag in page.tags}
            assert img.dtype == np.uint16 and img.shape == (80, 120, 3)
            assert tags[274] == 1 and tags[271] == "rawdev" and 34675 in tags
            exif = tags[34665]  # the EXIF sub-IFD, written by exiv2
            assert exif["ExposureTime"] == (1, 125) and exif["ISOSpeedRatings"] == 200
        else:
            im = Image.open(out)
            assert im.size == (120, 80)  # stored 80 wide x 120 high with Orientation 6 -> landscape
            assert im.info.get("icc_profile")
            exif = im.getexif()
            assert exif[274] == 1 and exif[271] == "rawdev" and exif[272] == "Synthetic"
            sub = exif.get_ifd(0x8769)
            assert float(sub[0x829A]) == pytest.approx(1 / 125) and sub[0x8827] == 200
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "o16.png", "--bits", "16")
    assert r.returncode == 0
    import zlib  # 16-bit PNG: IHDR bit depth 16
    data = (tmp_path / "o16.png").read_bytes()
    assert data[24] == 16 and zlib.crc32(data[12:29]) & 0xFFFFFFFF == int.from_bytes(data[29:33], "big")


def test_no_overwrite_without_flag(tmp_path, rotated_dng):
    out = tmp_path / "x.jpg"
    out.write_bytes(b"precious")
    r = run_cli("develop", rotated_dng, "-o", out)
    assert r.returncode == 1 and "exists" in r.stderr and out.read_bytes() == b"precious"
    r = run_cli("develop", rotated_dng, "-o", out, "--overwrite")
    assert r.returncode == 0 and out.read_bytes()[:2] == b"\xff\xd8"
    assert not [p for p in tmp_path.iterdir() if "rawdev-tmp" in p.name]


def _bad_inputs(tmp: Path, good: Path) -> dict[str, Path]:
    cases = {}
    (p := tmp / "empty.nef").write_bytes(b"")
    cases["empty"] = p
    data = good.read_bytes()
    (p := tmp / "truncated.dng").write_bytes(data[: len(data) // 3])
    cases["truncated"] = p
    (p := tmp / "random.cr2").write_bytes(np.random.default_rng(0).bytes(100_000))
    cases["random"] = p
    (p := tmp / "notes.arw").write_text("this is not a raw file\n" * 100)
    cases["text"] = p
    cases["missing"] = tmp / "does_not_exist.dng"
    return cases


def test_bad_inputs_one_line_nonzero_no_output(tmp_path, rotated_dng):
    for name, src in _bad_inputs(tmp_path, rotated_dng).items():
        out = tmp_path / f"{name}.jpg"
        r = rawdev("develop", src, "-o", out)
        assert r.returncode == 1, (name, r.returncode, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and str(src) in lines[0] and "Traceback" not in r.stderr, (name, r.stderr)
        assert not out.exists(), name
    assert not [p for p in tmp_path.iterdir() if "rawdev-tmp" in p.name]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder(tmp_path, rotated_dng):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    r = run_cli("develop", rotated_dng, "-o", ro / "x.jpg")
    assert r.returncode == 1 and "x.jpg" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unwritable_output_path(tmp_path, rotated_dng):
    # A path under a regular file cannot be created, even by root.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "sub" / "x.jpg"
    r = run_cli("develop", rotated_dng, "-o", out)
    assert r.returncode == 1 and str(out) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_usage_errors_exit_2(tmp_path, rotated_dng):
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "x.bmp")
    assert r.returncode == 2 and "x.bmp" in r.stderr
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "y.jpg", "--backend", "malvr")
    assert r.returncode == 2 and "malvar" in r.stderr  # suggests the near match
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "z.jpg", "--bits", "16")
    assert r.returncode == 2


@pytest.mark.parametrize("orient", [1, 3, 6, 8, 2, 5])
def test_orient_overrides_the_file_s_tag(tmp_path, rotated_dng, orient):
    """``--orient N`` turns the output by EXIF orientation N instead of the file's (6): the develop as
    stored (``--no-orient``) turned by N, and Orientation 1 in the output."""
    from rawdev.stages.orientation import apply_orientation

    r = run_cli("develop", rotated_dng, "-o", tmp_path / "stored.png", "--no-orient")
    assert r.returncode == 0, r.stderr
    stored = np.asarray(Image.open(tmp_path / "stored.png"))
    assert stored.shape == (120, 80, 3)
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "o.png", "--orient", orient)
    assert r.returncode == 0, r.stderr
    im = Image.open(tmp_path / "o.png")
    np.testing.assert_array_equal(np.asarray(im), apply_orientation(stored, orient))
    assert im.getexif()[274] == 1


def test_orient_usage_errors(tmp_path, rotated_dng):
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "o.png", "--orient", "9")
    assert r.returncode == 2 and "--orient 9" in r.stderr
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "o.png", "--orient", "3", "--no-orient")
    assert r.returncode == 2 and "--orient and --no-orient" in r.stderr
    assert not (tmp_path / "o.png").exists()


def test_float_tiff_keeps_values_above_white(tmp_path, rotated_dng):
    """``--bits 32``: float TIFF, the 16-bit render's values where they are below white, and the
    highlights and exposure beyond white kept instead of clipped."""
    import tifffile

    opts = ("--curve", "linear", "-H", "unclip", "-e", "1")
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "f.tif", "--bits", "32", *opts)
    assert r.returncode == 0, r.stderr
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "i.tif", *opts)
    assert r.returncode == 0, r.stderr
    f, i = tifffile.imread(tmp_path / "f.tif"), tifffile.imread(tmp_path / "i.tif")
    assert f.dtype == np.float32 and i.dtype == np.uint16 and f.shape == i.shape == (80, 120, 3)
    below = f < 0.999
    np.testing.assert_allclose(f[below], i[below] / 65535.0, atol=1 / 65535)
    assert f.max() > 1.5 and i.max() == 65535 and f.min() >= 0
    with tifffile.TiffFile(tmp_path / "f.tif") as t:
        tags = {tag.code: tag.value for tag in t.pages[0].tags}
    assert tags[274] == 1 and 34675 in tags  # Orientation 1, ICC profile
    # the sRGB curve is carried on above white
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "s.tif", "--bits", "32", "-H", "unclip", "-e", "1")
    assert r.returncode == 0, r.stderr
    s = tifffile.imread(tmp_path / "s.tif")
    np.testing.assert_allclose(s[below], srgb_curve(f[below]), atol=2e-5)
    assert s.max() > 1.1


def srgb_curve(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


@pytest.mark.parametrize("out", ["f.png", "f.jpg"])
def test_float_samples_only_to_tiff(tmp_path, rotated_dng, out):
    r = run_cli("develop", rotated_dng, "-o", tmp_path / out, "--bits", "32")
    assert r.returncode == 2 and "TIFF only" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / out).exists()
    r = run_cli("batch", rotated_dng, "-o", tmp_path / "b", "--bits", "32", "-f", out.split(".")[1])
    assert r.returncode == 2 and "TIFF only" in r.stderr


@pytest.mark.parametrize("space", ["display-p3", "prophoto"])
def test_float_tiff_in_a_wide_space_matches_its_16_bit_render_below_white(tmp_path, rotated_dng, space):
    import tifffile

    opts = ("--colorspace", space, "-H", "unclip", "-e", "1")
    for name, bits in (("f.tif", "32"), ("i.tif", "16")):
        r = run_cli("develop", rotated_dng, "-o", tmp_path / name, "--bits", bits, *opts)
        assert r.returncode == 0, r.stderr
    f, i = tifffile.imread(tmp_path / "f.tif"), tifffile.imread(tmp_path / "i.tif")
    below = f < 0.999
    np.testing.assert_allclose(f[below], i[below] / 65535.0, atol=2 / 65535)
    assert f.max() > 1.05


def test_webp_with_exif_icc_and_orientation(tmp_path, rotated_dng):
    out = tmp_path / "o.webp"
    r = run_cli("develop", rotated_dng, "-o", out)
    assert r.returncode == 0, r.stderr
    im = Image.open(out)
    assert im.format == "WEBP" and im.size == (120, 80) and im.info.get("icc_profile")
    exif = im.getexif()
    assert exif[274] == 1 and exif[272] == "Synthetic"
    assert float(exif.get_ifd(0x8769)[0x829A]) == pytest.approx(1 / 125)
    # the same picture as the JPEG, up to the two codecs' losses
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "o.png")
    ref = np.asarray(Image.open(tmp_path / "o.png").convert("RGB"), float)
    assert np.abs(np.asarray(im.convert("RGB"), float) - ref).mean() < 3
    r = run_cli("batch", rotated_dng, "-o", tmp_path / "b", "-f", "webp", "--quiet", "--jobs", "1")
    assert r.returncode == 0 and Image.open(tmp_path / "b" / "rot6.webp").format == "WEBP"


def test_webp_refuses_16_bits_and_over_wide_images(tmp_path):
    from rawdev.synthetic import demo_scene

    src = write_dng(tmp_path / "wide.dng", demo_scene(16390, 32), pattern="RGGB")
    r = run_cli("develop", src, "-o", tmp_path / "w.webp", "--bits", "16")
    assert r.returncode == 2 and "WebP is 8-bit" in r.stderr
    r = run_cli("develop", src, "-o", tmp_path / "w.webp")  # this file's failure (exit 1), not a usage error
    assert r.returncode == 1 and "at most 16383 pixels a side" in r.stderr
    assert list(tmp_path.glob("w.webp*")) == []


def test_standard_output(tmp_path, rotated_dng):
    """``-o -`` (dcraw -c): the image on standard output, in --format, everything else on stderr."""
    import io

    r = subprocess.run([sys.executable, "-m", "rawdev", "develop", str(rotated_dng), "-o", "-", "-f", "png"],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    im = Image.open(io.BytesIO(r.stdout))
    assert im.format == "PNG" and im.size == (120, 80)
    assert b"-> standard output (png)" in r.stderr
    r = rawdev("develop", rotated_dng, rotated_dng, "-o", "-")
    assert r.returncode == 2 and "give one input" in r.stderr


def test_an_internal_error_is_one_line_naming_the_file(tmp_path, rotated_dng, monkeypatch):
    """A fault of rawdev's own (here a ZeroDivisionError, as --size once raised on LibRaw-rendered
    files) is one line naming the file and exit 1, not a traceback; RAWDEV_DEBUG=1 lets it through."""
    import rawdev.pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(rawdev.pipeline, "develop_stream", broken)
    r = run_cli("develop", rotated_dng, "-o", tmp_path / "x.jpg")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert str(rotated_dng) in r.stderr and "internal error, ZeroDivisionError" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.jpg").exists()
    r = subprocess.run([sys.executable, "-c", "import sys, rawdev.pipeline as p; from rawdev.cli import main; "
                        "p.develop_stream = lambda *a, **k: 1 / 0; sys.argv[1:] = sys.argv[2:]; main()", "-",
                        "develop", str(rotated_dng), "-o", "-", "-f", "png"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "" and "internal error, ZeroDivisionError" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    monkeypatch.setenv("RAWDEV_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run_cli("develop", rotated_dng, "-o", tmp_path / "x.jpg")
