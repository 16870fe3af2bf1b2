"""The registered ``libraw`` back-end: LibRaw's own pipeline, reached like every other back-end."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy
import tifffile
from conftest import run_cli
from PIL import Image

from rawdev.backends import registry


def _rawpy(path, bits: int) -> np.ndarray:
    with rawpy.imread(str(path)) as raw:
        return raw.postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True, output_bps=bits,
                               output_color=rawpy.ColorSpace.sRGB, demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD)


def test_registered_and_listed():
    spec = registry.get(registry.LIBRAW)
    assert spec.input_domain == "raw_file" and registry.LIBRAW in {s.name for s in registry.list_backends()}
    r = run_cli("backends")
    assert r.returncode == 0 and registry.LIBRAW in r.stdout


@pytest.mark.parametrize("bits,suffix,tol", [(8, "png", 1), (16, "tif", 2)])
def test_develop_equals_rawpy_postprocess(demo_dng, tmp_path, bits, suffix, tol):
    """``rawdev develop --backend libraw`` is rawpy's ``postprocess`` with the same settings (camera
    white balance, sRGB, the sRGB curve, no auto-brightening, AHD); the codes differ by rounding only
    (LibRaw applies its curve to 16-bit linear values, rawdev to floats)."""
    out = tmp_path / f"o.{suffix}"
    r = run_cli("develop", demo_dng, "-o", out, "--backend", registry.LIBRAW, "--bits", bits)
    assert r.returncode == 0, r.stderr
    got = tifffile.imread(out) if suffix == "tif" else np.asarray(Image.open(out))
    want = _rawpy(demo_dng, bits)
    assert got.shape == want.shape and got.dtype == want.dtype
    d = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert d.max() <= tol and d.mean() < 0.5


def test_compare_and_roundtrip_use_the_back_end(demo_dng):
    """The reference of ``compare`` and of ``eval roundtrip`` is this back-end, through the pipeline."""
    from rawdev.compare import _develop
    from rawdev.pipeline import PipelineConfig

    img, used, _, _ = _develop(demo_dng, PipelineConfig(output_bits=8), registry.LIBRAW)
    assert used == registry.LIBRAW
    d = np.abs(img.astype(np.int64) - _rawpy(demo_dng, 8).astype(np.int64))
    assert d.max() <= 1
