"""Lens corrections (lensfun): a synthetic DNG naming a camera and lens lensfun knows, whose grid chart
carries that lens's distortion, lateral CA and vignetting, comes out with straight lines and even
corners after ``--lens auto``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rawdev.pipeline import PipelineConfig, develop_to_file
from rawdev.stages.lens import correct_lens, find_lens
from rawdev.synthetic import write_dng

CAMERA = ("Canon", "Canon EOS 6D")
LENS = "Canon EF 24-105mm f/4L IS USM"
FOCAL, F_NUMBER = 24.0, 4.0
H, W, PITCH = 400, 600, 40


def grid_chart() -> np.ndarray:
    """Linear sRGB: grey 0.7 with dark lines (Gaussian profile, sigma 1.5 px) every PITCH pixels."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    d = np.minimum(np.abs((xx - PITCH / 2) % PITCH - PITCH / 2), np.abs((yy - PITCH / 2) % PITCH - PITCH / 2))
    return (0.7 - 0.65 * np.exp(-(d**2) / (2 * 1.5**2)))[..., None].repeat(3, axis=2).astype(np.float32)


@pytest.fixture(scope="module")
def lens_dng(tmp_path_factory) -> Path:
    import exiv2

    match, why = find_lens(*CAMERA, LENS, FOCAL, F_NUMBER)
    assert match is not None, why
    shot = correct_lens(grid_chart(), match, reverse=True)  # as the lens renders the chart
    path = write_dng(tmp_path_factory.mktemp("lens") / "grid.dng", shot, make=CAMERA[0], model=CAMERA[1])
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    ex = image.exifData()
    ex["Exif.Photo.LensModel"] = LENS
    ex["Exif.Photo.FocalLength"] = exiv2.URationalValue([(int(FOCAL), 1)])
    ex["Exif.Photo.FNumber"] = exiv2.URationalValue([(int(F_NUMBER), 1)])
    image.writeMetadata()
    return path


def _develop(dng: Path, out: Path, lens: str) -> tuple[np.ndarray, list[str]]:
    import tifffile

    notices: list[str] = []
    develop_to_file(dng, out, PipelineConfig(output_bits=16, curve="linear", lens=lens), on_notice=notices.append)
    return tifffile.imread(out).astype(np.float64) / 65535.0, notices


def line_residual(img: np.ndarray) -> float:
    """Largest RMS distance (px) of a vertical grid line's centre points from the straight line
    fitted through them; centres found per row to a fraction of a pixel (darkness centroid)."""
    lum = img.mean(axis=2)
    dark = np.clip(1.0 - lum / np.median(lum), 0.0, None)
    mid = dark[H // 2 + PITCH // 2]  # a row between horizontal lines
    starts = [x for x in range(3, W - 3) if mid[x] > 0.3 and mid[x] == mid[x - 3 : x + 4].max()]
    worst = 0.0
    for x0 in starts:
        pts = []
        x = float(x0)
        for y in range(H // 2 + PITCH // 2, 10, -1), range(H // 2 + PITCH // 2, H - 10):
            x = float(x0)
            for yy in y:
                if dark[yy].mean() > 0.25:  # on a horizontal line: no vertical position there
                    continue
                lo = max(0, int(round(x)) - 4)
                seg = dark[yy, lo : lo + 9]
                if seg.sum() < 0.5:
                    break
                x = lo + float((seg * np.arange(seg.size)).sum() / seg.sum())
                pts.append((yy, x))
        if len(pts) < H // 2:
            continue
        ys, xs = np.array(pts).T
        fit = np.polyval(np.polyfit(ys, xs, 1), ys)
        worst = max(worst, float(np.sqrt(np.mean((xs - fit) ** 2))))
    return worst


def corner_to_centre(img: np.ndarray) -> float:
    """Worst relative difference between a corner's background (median of 32 x 32) and the centre's."""
    lum = img.mean(axis=2)
    s = 32
    centre = np.median(lum[H // 2 - s // 2 : H // 2 + s // 2, W // 2 - s // 2 : W // 2 + s // 2])
    corners = [lum[:s, :s], lum[:s, -s:], lum[-s:, :s], lum[-s:, -s:]]
    return max(abs(float(np.median(c)) / centre - 1.0) for c in corners)


def test_lens_auto_straightens_and_evens(tmp_path, lens_dng):
    raw_img, notices = _develop(lens_dng, tmp_path / "off.tif", "off")
    assert line_residual(raw_img) > 1.0 and corner_to_centre(raw_img) > 0.2  # the chart is distorted
    img, notices = _develop(lens_dng, tmp_path / "auto.tif", "auto")
    assert any("lens corrected for Canon EF 24-105mm" in n for n in notices), notices
    assert line_residual(img) < 0.5
    assert corner_to_centre(img) < 0.02


def test_unknown_lens_is_a_notice(tmp_path, lens_dng):
    _, notices = _develop(lens_dng, tmp_path / "x.tif", "Nonexistent 13mm f/0.7 Dream")
    assert any("no lens correction" in n and "not in lensfun" in n for n in notices), notices
    _, notices = _develop(write_dng(tmp_path / "plain.dng", grid_chart()[:80, :120]), tmp_path / "y.tif", "auto")
    assert any("no lens correction" in n for n in notices), notices


if __name__ == "__main__":  # print the figures quoted in docs/lens.md
    import tempfile

    class _Factory:
        def mktemp(self, name):
            return Path(tempfile.mkdtemp(prefix=name))

    dng = lens_dng.__wrapped__(_Factory())
    tmp = Path(tempfile.mkdtemp())
    for mode in ("off", "auto"):
        img, _ = _develop(dng, tmp / f"{mode}.tif", mode)
        print(f"--lens {mode}: line residual {line_residual(img):.3f} px, corners vs centre {corner_to_centre(img):.2%}")
