"""The developer streams: output bands (rows of the oriented picture) are made one at a time from
row or column bands of the mosaic, and TIFF/PNG writers take them as they come. Streamed output
must equal a whole-image render turned afterwards, for every orientation, phase and odd size."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tifffile
from PIL import Image

from rawdev.cameras import XYZ_TO_CAMERA
from rawdev.errors import UsageError
from rawdev.io.raw import read_raw
from rawdev.io.write import write_bands, write_image
from rawdev import pipeline
from rawdev.pipeline import PipelineConfig, develop_raw, develop_stream, develop_to_file
from rawdev.stages.orientation import apply_orientation
from rawdev.synthetic import demo_scene, write_dng
from rawdev.types import CellMap

from conftest import XTRANS



def _raw(tmp_path, h, w, pattern, orientation, name="s.dng"):
    scene = demo_scene(w, h) * 1.2  # a little above the clip point too
    if orientation in (5, 6, 7, 8):  # write_dng takes the scene in display orientation
        scene = np.ascontiguousarray(np.swapaxes(scene, 0, 1))
    path = write_dng(tmp_path / name, scene, pattern=pattern, orientation=orientation,
                     xyz_to_camera=XYZ_TO_CAMERA[3])
    raw = read_raw(path)
    assert raw.meta.orientation == orientation and raw.data.shape == (h, w)
    return raw


def _whole_then_turned(raw, cfg):
    img = develop_raw(raw, replace(cfg, band_rows=100_000, apply_orientation=False)).image
    return apply_orientation(img, raw.meta.orientation)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "BGGR", "GBRG"])
def test_streamed_bands_equal_whole_image_turned(tmp_path, monkeypatch, orientation, pattern):
    raw = _raw(tmp_path, 97, 83, pattern, orientation)  # odd sizes
    monkeypatch.setattr(pipeline, "_CLASSICAL_CHUNK", 30)  # bands of 48 (8 margins) made 30 at a time
    cfg = PipelineConfig(backend="malvar", output_bits=None, curve="linear", highlights="unclip", band_rows=8)
    st = develop_stream(raw, cfg)
    bands = list(st.bands)
    assert len(bands) >= 2  # really streamed
    assert all(b.shape[1:] == st.shape[1:] for b in bands)
    streamed = np.concatenate(bands)
    assert streamed.shape == st.shape
    np.testing.assert_allclose(streamed, _whole_then_turned(raw, cfg), rtol=0, atol=1e-6)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jdd_streamed_bands_equal_whole_image(tmp_path, orientation):
    # jdd bands are one runner tile high (here 64) and four long: 150 x 141 is 3 bands of 1 region
    raw = _raw(tmp_path, 150, 141, "GBRG", orientation)
    cfg = PipelineConfig(backend="jdd", device="cpu", output_bits=None, tile=64)
    st = develop_stream(raw, cfg)
    assert st.backend == "jdd"
    bands = list(st.bands)
    assert len(bands) == 3
    np.testing.assert_allclose(np.concatenate(bands), _whole_then_turned(raw, cfg), rtol=0, atol=1e-4)


@pytest.mark.parametrize("orientation", [1, 6])
def test_xtrans_column_bands(tmp_path, orientation):
    """X-Trans bands and regions start on whole 6x6 cells, the margins too, whatever the tile size.
    (The samples are a Bayer file's, relabelled: only the equality
    of streamed and whole renders is tested.)"""
    raw = _raw(tmp_path, 161, 151, "RGGB", orientation)
    h, w = raw.data.shape
    cfa = replace(raw.meta.cfa, kind="xtrans", cell=XTRANS)
    raw = replace(raw, meta=replace(raw.meta, cfa=cfa), colors=CellMap(XTRANS, (h, w)))
    cfg = PipelineConfig(backend="jdd", device="cpu", output_bits=None, tile=30)  # bands of 30, regions of 120
    st = develop_stream(raw, cfg)
    assert st.backend == "jdd"
    bands = list(st.bands)
    assert len(bands) == 6
    np.testing.assert_allclose(np.concatenate(bands), _whole_then_turned(raw, cfg), rtol=0, atol=1e-4)


@pytest.mark.parametrize("suffix", [".tif", ".png"])
@pytest.mark.parametrize("orientation", [1, 6])
def test_develop_to_file_writes_the_streamed_render(tmp_path, suffix, orientation):
    raw = _raw(tmp_path, 67, 53, "BGGR", orientation)
    out = tmp_path / f"o{suffix}"
    cfg = PipelineConfig(backend="malvar", output_bits=16, band_rows=8)
    res = develop_to_file(raw.meta.path, out, cfg)
    assert res.image is None and res.shape == ((53, 67, 3) if orientation == 6 else (67, 53, 3))
    ref = develop_raw(raw, replace(cfg, band_rows=100_000)).image
    got = tifffile.imread(out) if suffix == ".tif" else np.asarray(Image.open(out))
    if suffix == ".png":  # Pillow opens 16-bit RGB PNG as 8 bits: read the rows ourselves
        got = _png_rows(out, ref.shape)
    np.testing.assert_array_equal(got, ref)


def _png_rows(path, shape) -> np.ndarray:
    import struct
    import zlib

    data = path.read_bytes()[8:]
    idat = b""
    while data:
        n = struct.unpack(">I", data[:4])[0]
        kind, body = data[4:8], data[8 : 8 + n]
        if kind == b"IDAT":
            idat += body
        data = data[12 + n :]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(shape[0], -1)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].copy().view(">u2").reshape(shape).astype(np.uint16)


@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg"])
def test_write_bands_equals_write_image(tmp_path, suffix):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 23, 3), dtype=np.uint8)
    write_image(tmp_path / f"a{suffix}", img)
    write_bands(tmp_path / f"b{suffix}", img.shape, img.dtype, (img[y : y + 10] for y in range(0, 37, 10)))
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg"])
def test_a_broken_stream_leaves_no_file(tmp_path, suffix):
    img = np.zeros((30, 20, 3), np.uint16 if suffix != ".jpg" else np.uint8)

    def short():
        yield img[:10]

    def failing():
        yield img[:10]
        raise RuntimeError("developer failed half-way")

    with pytest.raises(UsageError, match="10 rows of the image's 30"):
        write_bands(tmp_path / f"s{suffix}", img.shape, img.dtype, short())
    with pytest.raises(RuntimeError, match="half-way"):
        write_bands(tmp_path / f"f{suffix}", img.shape, img.dtype, failing())
    with pytest.raises(UsageError, match="does not fit"):
        write_bands(tmp_path / f"w{suffix}", img.shape, img.dtype, iter([img[:, :5]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_process_returns_freed_memory(monkeypatch):
    """The CLI sets glibc's allocator (rawdev.memory.tune_allocator) before any work."""
    import platform
    import subprocess
    import sys

    import rawdev.memory
    from rawdev.cli import main

    calls = []
    monkeypatch.setattr(rawdev.memory, "tune_allocator", lambda: calls.append(1) or True)
    monkeypatch.setattr(sys, "argv", ["rawdev", "--version"])
    with pytest.raises(SystemExit):
        main()
    assert calls == [1]
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        code = "from rawdev.memory import tune_allocator as f; print(f())"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert r.stdout.strip() == "True"


def test_libraw_rendered_sensors_stream_with_their_own_size(tmp_path, monkeypatch):
    """Sensors LibRaw demosaics (4-colour CFAs, linear DNGs) carry no mosaic: the stream's shape is
    the render's, turned."""
    raw = _raw(tmp_path, 40, 30, "RGGB", 6)
    raw = replace(raw, data=np.zeros((0, 0), np.uint16), colors=None, black_map=None,
                  meta=replace(raw.meta, cfa=replace(raw.meta.cfa, kind="linear", cell=None)))
    render = np.random.default_rng(1).random((31, 17, 3), dtype=np.float32)
    monkeypatch.setattr(pipeline, "_develop_libraw", lambda *a, **k: render)
    st = develop_stream(raw, PipelineConfig(output_bits=None, band_rows=4))
    assert st.backend == "libraw-linear" and st.requested == PipelineConfig.backend and st.shape == (17, 31, 3)
    np.testing.assert_array_equal(st.collect().image, apply_orientation(render, 6))
