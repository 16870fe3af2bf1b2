"""White balance fitted to an embedded preview (issue 14, point 3): the twelve synthetic cases of
tests/test_wb_embedded_preview.py (tungsten, shade, fluorescent x the four Bayer phases, one camera
matrix of rawdev.cameras per phase), made the same way, with a table per case:

- the light's balance (the gains the preview was rendered with) and the fitted gains of a default
  develop (``--wb camera``: the file stores none, so the preview fit), their largest relative
  difference and the develop's chromaticity error against the preview (the test's measure; the bar
  is 2 %);
- the peer in the same run: the develop with the light's own gains (what a perfect fit scores);
- where the fit can be asked to (``preview_samples``), the fit over *all* usable samples
  (``subsampled=False``) instead of the flat ones a 4:2:0 JPEG preview gets.

    python benchmarks/wb_preview_fit.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test's scenes, so the table is about the same files


def developed(raw, preview: np.ndarray, light: np.ndarray, gains: np.ndarray) -> str:
    """Table cells for a develop of ``raw`` with ``gains``: the gains, how far they are from the
    ``light``'s, and the develop's chromaticity error against ``preview``."""
    from test_wb_embedded_preview import chroma_error

    from rawdev.pipeline import PipelineConfig, develop_raw

    res = develop_raw(raw, PipelineConfig(output_bits=None, wb=tuple(gains)))
    return (f"{gains[0]:.3f}, {gains[2]:.3f} | {np.abs(gains / light - 1).max():.2%} | "
            f"{chroma_error(res.image, preview):.2%}")


def main() -> None:
    from test_wb_embedded_preview import H, PHASES, W, _lit_scene, chroma_error

    from rawdev.cameras import XYZ_TO_CAMERA
    from rawdev.io.raw import read_raw
    from rawdev.pipeline import PipelineConfig, develop_raw
    from rawdev.stages import white_balance as wb
    from rawdev.synthetic import camera_rendering, write_dng

    ablate = hasattr(wb, "preview_samples")
    print("| light | phase | light's R, B gains | fitted R, B | gains off | error | light's gains: error |"
          + (" all samples: R, B | gains off | error |" if ablate else ""))
    print("|---|---|---|---|---|---|---|" + ("---|---|---|" if ablate else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for ill in ("tungsten", "shade", "fluorescent"):
            for ph in PHASES:
                i = PHASES.index(ph)
                camera = np.asarray(XYZ_TO_CAMERA[i % len(XYZ_TO_CAMERA)])
                lit, gains = _lit_scene(ill, camera, seed=i)
                preview = camera_rendering(lit, camera, gains, size=(H // 2, W // 2), exposure=0.6)
                path = write_dng(Path(tmp) / f"{ill}_{ph}.dng", lit, pattern=ph, xyz_to_camera=camera,
                                 as_shot=False, preview=preview)
                raw = read_raw(path)
                light = gains / gains[1]
                res = develop_raw(raw, PipelineConfig(output_bits=None))
                fit = np.asarray(res.wb.gains) / res.wb.gains[1]
                line = (f"| {ill} | {ph} | {light[0]:.3f}, {light[2]:.3f} | {fit[0]:.3f}, {fit[2]:.3f} | "
                        f"{np.abs(fit / light - 1).max():.2%} | {chroma_error(res.image, preview):.2%} | "
                        f"{developed(raw, preview, light, light).split(' | ')[-1]} |")
                if ablate:
                    s = wb.preview_samples(raw)
                    every = wb.preview_gains(s.thumb, s.grid, raw.meta.rgb_cam, subsampled=False)
                    line += f" {developed(raw, preview, light, np.asarray(every.gains))} |"
                print(line, flush=True)


if __name__ == "__main__":
    main()
