"""White balance from a preview embedded in the file (issue 14, point 3), end to end.

Synthetic DNGs store no as-shot white balance; their JPEG preview (IFD0, as DNG converters write
it; LibRaw's ``extract_thumb`` finds it) is the camera's own rendering of the scene with the balance
of the light it was lit by. Developing the file must reach the preview's mean chromaticity within
2 %, for several illuminants, every Bayer phase and four camera matrices. Files whose preview is
absent or useless fall back to grey-edge (docs/white_balance.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from rawdev.cameras import XYZ_TO_CAMERA, camera_from_srgb
from rawdev.io.preview import load_preview
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop_raw
from rawdev.synthetic import ILLUMINANT_XY, camera_rendering, illuminant_rgb, write_dng

PHASES = ("RGGB", "GRBG", "GBRG", "BGGR")
H, W = 128, 192  # raw frame; the preview is half of it on each side, as cameras' are smaller


def _mondrian(seed: int) -> np.ndarray:
    """Reflectances in [0.04, 0.85]: coloured rectangles on a grey ramp (linear sRGB)."""
    rng = np.random.default_rng(seed)
    img = np.empty((H, W, 3))
    img[:] = np.linspace(0.08, 0.6, W)[None, :, None]
    for _ in range(30):
        y, x = rng.integers(0, H - 12), rng.integers(0, W - 12)
        img[y:y + rng.integers(8, 32), x:x + rng.integers(8, 40)] = rng.uniform(0.04, 0.85, 3)
    return img


def _lit_scene(illuminant: str, camera: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The scene under ``illuminant`` (linear sRGB, scaled so the brightest camera value is 0.85 of
    white: nothing clips) and the camera-space gains that balance that light."""
    e = illuminant_rgb(ILLUMINANT_XY[illuminant])
    m = camera_from_srgb(camera)
    lit = _mondrian(seed) * e
    cam = lit @ m.T / (m @ np.ones(3)).max()
    lit *= 0.85 / cam.max()
    white = m @ e  # the camera's response to the light
    return lit, white[1] / white


def _linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def chroma_error(developed: np.ndarray, preview: np.ndarray) -> float:
    """Largest relative difference of mean R/G and B/G (linear light) between the developed image,
    block-averaged to the preview's grid, and the preview, over samples well exposed in both."""
    ph, pw = preview.shape[:2]
    ky, kx = developed.shape[0] // ph, developed.shape[1] // pw
    blocks = np.clip(developed[:ph * ky, :pw * kx], 0, 1).reshape(ph, ky, pw, kx, 3)
    dev = _linear(blocks).mean(axis=(1, 3))
    pv = _linear(preview / 255.0)
    # well exposed in both: no sample of a block clipped in the develop, none near 0 or 255 in the preview
    ok = ((preview.min(-1) > 3) & (preview.max(-1) < 245) & (blocks.min(axis=(1, 3, 4)) > 1e-3)
          & (blocks.max(axis=(1, 3, 4)) < 0.98))
    d, p = dev[ok].mean(0), pv[ok].mean(0)
    return float(np.abs((d[[0, 2]] / d[1]) / (p[[0, 2]] / p[1]) - 1).max())


#: Tungsten (the indoor case of issue 14) in the default run; shade and fluorescent in the slow run.
#: The tungsten GRBG case, with the third camera matrix of ``rawdev.cameras`` (large off-diagonal
#: terms, which amplify a gain error about 2.8x into R/G), failed at 3.4 % until the fit was mended:
#: its R gain was 1.3 % low (1.612 vs 1.633), about half from the camera thumbnail's colour means
#: sitting half a pixel off their cells' centres on the grey ramp, half from the JPEG preview's 4:2:0
#: chroma smeared across the edges of saturated patches. Both are mended in the method
#: (``camera_thumbnail``, ``preview_gains(subsampled=...)``; docs/white_balance.md): 0.78 %.
CASES = [pytest.param(ill, ph, marks=[pytest.mark.slow] if ill != "tungsten" else [])
         for ill in ("tungsten", "shade", "fluorescent") for ph in PHASES]


@pytest.mark.parametrize(("illuminant", "phase"), CASES)
def test_develop_matches_an_embedded_preview_rendered_with_the_right_balance(tmp_path, illuminant, phase):
    i = PHASES.index(phase)
    camera = np.asarray(XYZ_TO_CAMERA[i % len(XYZ_TO_CAMERA)])
    lit, gains = _lit_scene(illuminant, camera, seed=i)
    # mid-grey of the scene near 120 of 255 in the preview, as in a camera JPEG
    preview = camera_rendering(lit, camera, gains, size=(H // 2, W // 2), exposure=0.6)
    path = write_dng(tmp_path / f"{illuminant}_{phase}.dng", lit, pattern=phase, xyz_to_camera=camera,
                     as_shot=False, preview=preview)
    raw = read_raw(path)
    assert raw.meta.camera_wb is None  # the file stores no white balance
    assert raw.meta.cfa.bayer_pattern == phase
    stored, pixels = load_preview(path)
    assert pixels.shape == preview.shape  # LibRaw finds the JPEG
    assert stored.chroma_subsampled  # 4:2:0, as most cameras' previews: the fit keeps to flat regions
    res = develop_raw(raw, PipelineConfig(output_bits=None))
    assert res.wb.source == "preview" and "no as-shot white balance" in res.wb.notice
    assert chroma_error(res.image, preview) < 0.02
    g = np.asarray(res.wb.gains) / res.wb.gains[1]
    assert np.abs(g / (gains / gains[1]) - 1).max() < 0.02  # the gains are the light's balance


def _file_with_preview(tmp_path, preview, name="f.dng"):
    camera = np.asarray(XYZ_TO_CAMERA[1])
    lit, _ = _lit_scene("tungsten", camera, seed=7)
    return write_dng(tmp_path / name, lit, pattern="GBRG", xyz_to_camera=camera, as_shot=False, preview=preview)


@pytest.mark.parametrize("kind", ["absent", "tiny", "black", "flat grey", "grey-scale"])
def test_an_absent_or_useless_preview_falls_back_to_grey_edge(tmp_path, kind):
    camera = np.asarray(XYZ_TO_CAMERA[1])
    lit, gains = _lit_scene("tungsten", camera, seed=7)
    good = camera_rendering(lit, camera, gains, size=(H // 2, W // 2))
    preview = {"absent": None, "tiny": camera_rendering(lit, camera, gains, size=(2, 3)), "black": np.zeros_like(good), "flat grey": np.full_like(good, 128),
               "grey-scale": np.repeat(good.mean(-1, keepdims=True).astype(np.uint8), 3, -1)}[kind]
    path = _file_with_preview(tmp_path, preview)
    res = develop_raw(read_raw(path), PipelineConfig(output_bits=8))
    assert res.wb.source == "auto", (kind, res.wb)
    assert "no usable embedded preview" in res.wb.notice
    assert res.image.mean() > 10  # a picture, not a black frame


@pytest.mark.parametrize(("subsampling", "want"), [(0, False), (1, True), (2, True), (None, False)])
def test_a_preview_says_whether_its_chroma_is_subsampled(subsampling, want):
    """4:4:4 (0), 4:2:2 (1), 4:2:0 (2) JPEGs, read from the frame header; a bitmap (None) never is."""
    import io

    from PIL import Image

    from rawdev.io.preview import Preview

    pixels = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    if subsampling is None:
        p = Preview("bitmap", 24, 16, 1, bitmap=pixels)
    else:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=90, subsampling=subsampling)
        p = Preview("jpeg", 24, 16, 1, jpeg=buf.getvalue())
    assert p.chroma_subsampled is want
