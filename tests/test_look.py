"""The camera's look fitted to the embedded preview: synthetic DNGs whose preview was rendered by a known
tone curve and colour transform, checked with CIEDE2000 (colour-science)."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

from rawdev.pipeline import PipelineConfig, develop_to_file
from rawdev.stages.look import Look, _resize
from rawdev.synthetic import demo_scene, write_dng  # noqa: F401

PREVIEW = (300, 200)


def camera_render(srgb: np.ndarray) -> np.ndarray:
    """A camera's rendering of display sRGB: an S-shaped tone curve, 30 % more saturation and a
    warm shift (the 'known curve and transform')."""
    k, p = 2.4, 0.45
    c = (np.tanh(k * (srgb - p)) - np.tanh(-k * p)) / (np.tanh(k * (1 - p)) - np.tanh(-k * p))
    lum = c.mean(axis=-1, keepdims=True)
    return np.clip((lum + 1.3 * (c - lum)) * np.array([1.03, 1.0, 0.96]), 0.0, 1.0)


def _srgb(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def write_with_preview(path: Path, scene: np.ndarray, quality: int = 90) -> tuple[Path, np.ndarray, np.ndarray]:
    """A DNG of ``scene`` whose embedded JPEG preview is the camera's rendering; returns the file,
    the uncompressed rendering and the JPEG preview's pixels (both 8-bit)."""
    import exiv2

    write_dng(path, scene)
    # As a camera makes it: rendered at full resolution, then reduced.
    clean = np.round(_resize(camera_render(_srgb(scene)), PREVIEW) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(clean).save(buf, "JPEG", quality=quality)
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    exiv2.ExifThumb(image.exifData()).setJpegThumbnail(buf.getvalue())
    image.writeMetadata()
    return path, clean, np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 between two display-sRGB images (uint8 or [0, 1] floats)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour

    def lab(x):
        x = x / 255.0 if x.dtype == np.uint8 else x
        return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(x))

    return float(np.mean(colour.delta_E(lab(a), lab(b), method="CIE 2000")))


def _developed_small(dng: Path, out: Path, look: str) -> np.ndarray:
    develop_to_file(dng, out, PipelineConfig(output_bits=16, look=look))
    import tifffile

    return _resize(tifffile.imread(out) / 65535.0, PREVIEW)


def scene(seed: int, w: int = 600, h: int = 400) -> np.ndarray:
    """Linear sRGB: 8 x 6 flat patches of random colours on a smooth colour gradient. No detail
    finer than the preview's pixels, so that the preview (rendered from the ideal scene) and the
    demosaicked render differ by the look only."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    img = np.stack([0.05 + 0.5 * xx, 0.05 + 0.4 * yy, 0.35 - 0.3 * xx], axis=-1)
    ph, pw = h // 6, w // 8
    for r in range(6):
        for c in range(8):
            if (r + c + seed) % 3:
                img[r * ph + 8 : (r + 1) * ph - 8, c * pw + 8 : (c + 1) * pw - 8] = rng.uniform(0.01, 0.85, 3) ** 1.5
    return img


def _scenes() -> list[np.ndarray]:
    return [scene(0), scene(1), scene(2)]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    d = tmp_path_factory.mktemp("look")
    return [write_with_preview(d / f"shot{i}.dng", s) for i, s in enumerate(_scenes())]


def test_camera_look_matches_the_preview(tmp_path, batch):
    dng, clean, jpeg = batch[0]
    neutral = _developed_small(dng, tmp_path / "n.tif", "neutral")
    camera = _developed_small(dng, tmp_path / "c.tif", "camera")
    before, after, after_jpeg = delta_e(neutral, clean), delta_e(camera, clean), delta_e(camera, jpeg)
    assert before > 5.0  # the look is a real change
    assert after < 2.0 and after_jpeg < 3.0, (before, after, after_jpeg)


def test_a_fitted_look_applies_to_a_batch(tmp_path, batch):
    look_file = tmp_path / "look.json"
    r = run_cli("look", "fit", batch[0][0], "-o", look_file)
    assert r.returncode == 0, r.stderr
    Look.load(look_file)
    for dng, clean, jpeg in batch[1:]:
        out = _developed_small(dng, tmp_path / f"{dng.stem}.tif", str(look_file))
        assert delta_e(out, clean) < 2.0 and delta_e(out, jpeg) < 3.0, (dng, delta_e(out, clean), delta_e(out, jpeg))


def test_no_or_tiny_preview_develops_neutral_with_notice(tmp_path):
    dng = write_dng(tmp_path / "plain.dng", demo_scene(120, 80))
    notices: list[str] = []
    develop_to_file(dng, tmp_path / "o.jpg", PipelineConfig(look="camera"), on_notice=notices.append)
    assert any("no camera look" in n and "neutral" in n for n in notices), notices
    r = run_cli("look", "fit", dng, "-o", tmp_path / "l.json")
    assert r.returncode == 1 and "preview" in r.stderr and not (tmp_path / "l.json").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = run_cli("develop", dng, "-o", tmp_path / "x.jpg", "--look", bad)
    assert r.returncode == 1 and "look file" in r.stderr and not (tmp_path / "x.jpg").exists()


if __name__ == "__main__":  # print the figures quoted in docs/look.md
    import tempfile

    d = Path(tempfile.mkdtemp())
    shots = [write_with_preview(d / f"shot{i}.dng", s) for i, s in enumerate(_scenes())]
    look_file = d / "look.json"
    subprocess.run([sys.executable, "-m", "rawdev", "look", "fit", shots[0][0], "-o", look_file], check=True)
    for i, (dng, clean, jpeg) in enumerate(shots):
        for look in ("neutral", "camera", str(look_file)):
            out = _developed_small(dng, d / f"o{i}.tif", look)
            (d / f"o{i}.tif").unlink()
            name = "look.json (fitted on shot0)" if look.endswith(".json") else look
            print(f"shot{i} {name:<28} vs uncompressed {delta_e(out, clean):5.2f}  vs JPEG {delta_e(out, jpeg):5.2f}")


def test_camera_look_with_orient_is_fitted_to_the_preview_turned_alike(batch):
    """``--orient`` turns the render; the preview the look is fitted to must be turned with it."""
    from rawdev.pipeline import develop
    from rawdev.stages.orientation import apply_orientation

    dng = batch[0][0]
    upright = develop(dng, output_bits=None, look="camera").image
    turned = develop(dng, output_bits=None, look="camera", orientation=6).image
    np.testing.assert_allclose(turned, apply_orientation(upright, 6), atol=2e-3)
