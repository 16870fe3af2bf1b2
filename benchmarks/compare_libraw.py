"""Agreement with LibRaw on real camera files: rawdev's render against rawpy's postprocess under the
same white balance, matrix and sRGB curve, with the same demosaic (bilinear = LibRaw LINEAR) and with
each one's default (rawdev Malvar against LibRaw AHD).

    python benchmarks/compare_libraw.py [FILES...]   (default: ../shared/raw/*)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rawpy

from rawdev.errors import RawdevError
from rawdev.pipeline import develop


def libraw(path: Path, gains, algorithm: str) -> np.ndarray:
    with rawpy.imread(str(path)) as raw:
        out = raw.postprocess(user_wb=[gains[0], gains[1], gains[2], gains[1]], gamma=(2.4, 12.92),
                              no_auto_bright=True, output_bps=16, output_color=rawpy.ColorSpace.sRGB,
                              demosaic_algorithm=getattr(rawpy.DemosaicAlgorithm, algorithm))
    return out.astype(np.float64) / 65535


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = (a - b)[10:-10, 10:-10] * 255
    return 10 * np.log10(255**2 / max(np.mean(d**2), 1e-12)), float(np.abs(d.reshape(-1, 3).mean(axis=0)).max())


def main() -> None:
    files = [Path(p) for p in sys.argv[1:]] or sorted(
        p for p in (Path(__file__).resolve().parents[2] / "shared" / "raw").glob("*") if p.suffix.lower() != ".md")
    print("| file | CFA | rawdev path | PSNR vs LibRaw, same demosaic (dB) | PSNR rawdev Malvar vs LibRaw AHD (dB) | mean colour difference (8-bit levels, worst channel) | notices |")
    print("|---|---|---|---|---|---|---|")
    for f in files:
        try:
            lin = develop(f, backend="bilinear", output_bits=None)
            mal = develop(f, backend="malvar", output_bits=None)
        except RawdevError as e:
            print(f"| {f.name} | | error | | | | {e.reason} |")
            continue
        cfa = f"{lin.raw.meta.cfa.kind} {lin.raw.meta.cfa.bayer_pattern or lin.raw.meta.cfa.color_desc}"
        if lin.backend == "libraw-ahd":
            ref = libraw(f, mal.wb.gains, "AHD")
            p2, mc = compare(mal.image, ref)
            print(f"| {f.name} | {cfa} | LibRaw AHD (notice) | - | {p2:.2f} | {mc:.2f} | {'; '.join(mal.notices)} |")
            continue
        p1, _ = compare(lin.image, libraw(f, lin.wb.gains, "LINEAR"))
        p2, mc = compare(mal.image, libraw(f, mal.wb.gains, "AHD"))
        print(f"| {f.name} | {cfa} | rawdev | {p1:.2f} | {p2:.2f} | {mc:.2f} | {'; '.join(mal.notices)} |")


if __name__ == "__main__":
    main()
