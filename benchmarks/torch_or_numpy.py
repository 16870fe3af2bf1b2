"""Does a classical develop gain from leaving torch out? The import it would save against the pixel
work numpy would then do, in the same run.

Rows (median of ``--repeat``):

* ``import torch`` in a fresh interpreter (what a torch-free classical develop would save, before the
  overlap with LibRaw's decode that ``bench_startup.py`` measures);
* Malvar 2004 demosaicking of a ``--mp`` megapixel RGGB mosaic, in process, with the shipped stage
  (``rawdev.stages.demosaic.malvar2004``: one packed 4 -> 12 channel 3x3 convolution, in row bands, on
  torch's threads);
* the same with torch on one thread (numpy's elementwise work runs on one);
* the same stencils in numpy: the packed weight's non-zero taps (the ones the shipped stage sums on a
  GPU) as shifted slices of the four sub-lattices, accumulated in float32, with the same mirrored
  border; checked equal to the shipped stage's output to float32 rounding.

Malvar is the heaviest stage of the default develop (the white-balance estimate and the orientation
are numpy already; scaling, colour and tone are one multiply-add, one matrix product and one curve per
sample).

    python benchmarks/torch_or_numpy.py [--mp 24] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def numpy_malvar(mosaic: np.ndarray, taps: tuple) -> np.ndarray:
    """``(H, W)`` float32 RGGB mosaic (H, W even) -> ``(3, H, W)``: every output plane of the packed
    stencil weight as a sum of its taps over the mirrored sub-lattices."""
    h, w = mosaic.shape
    hc, wc = h // 2, w // 2
    xp = np.pad(mosaic, 2, mode="reflect")  # mirrored without edge repeat, as the shipped stage
    packed = [np.ascontiguousarray(xp[py::2, px::2]) for py in (0, 1) for px in (0, 1)]
    out = np.empty((3, hc, 2, wc, 2), np.float32)
    tmp = np.empty((hc, wc), np.float32)
    for o, out_taps in enumerate(taps):
        c, dy, dx = o // 4, (o % 4) // 2, o % 2
        acc = np.zeros((hc, wc), np.float32)
        for ch, ky, kx, v in out_taps:
            np.multiply(packed[ch][ky:ky + hc, kx:kx + wc], np.float32(v), out=tmp)
            acc += tmp
        out[c, :, dy, :, dx] = acc
    return out.reshape(3, h, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    imports = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        t1 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        imports.append((t1 - t0) - (time.perf_counter() - t1))

    import torch

    from rawdev.stages.demosaic.bilinear import _weight_taps
    from rawdev.stages.demosaic.malvar2004 import _malvar_weight, demosaic_malvar2004

    w = int(round(np.sqrt(args.mp * 1e6 * 1.5))) // 2 * 2
    h = int(round(args.mp * 1e6 / w)) // 2 * 2
    mosaic = np.random.default_rng(0).random((h, w), dtype=np.float32)
    taps = _weight_taps(_malvar_weight("RGGB").contiguous().numpy().tobytes())
    threads = torch.get_num_threads()
    t_torch, t_one, t_numpy = [], [], []
    for _ in range(args.repeat):
        with torch.inference_mode():
            t0 = time.perf_counter()
            a = demosaic_malvar2004(torch.from_numpy(mosaic)[None, None], "RGGB")[0]
            t_torch.append(time.perf_counter() - t0)
            torch.set_num_threads(1)
            t0 = time.perf_counter()
            demosaic_malvar2004(torch.from_numpy(mosaic)[None, None], "RGGB")
            t_one.append(time.perf_counter() - t0)
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        b = numpy_malvar(mosaic, taps)
        t_numpy.append(time.perf_counter() - t0)
    diff = float(np.abs(a.numpy() - b).max())
    mt, mn, mi = statistics.median(t_torch), statistics.median(t_numpy), statistics.median(imports)
    print(f"\n{h} x {w} mosaic ({h * w / 1e6:.1f} MP), median of {args.repeat}; {os.cpu_count()} CPUs, torch threads "
          f"{threads}, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| work | seconds | x torch Malvar |")
    print("|---|---|---|")
    print(f"| import torch (fresh interpreter, less `python -c pass`) | {mi:.2f} | {mi / mt:.2f} |")
    print(f"| Malvar 2004, shipped stage (torch, {threads} threads) | {mt:.2f} | 1.00 |")
    m1 = statistics.median(t_one)
    print(f"| Malvar 2004, shipped stage (torch, 1 thread) | {m1:.2f} | {m1 / mt:.2f} |")
    print(f"| Malvar 2004, same taps in numpy | {mn:.2f} | {mn / mt:.2f} |")
    print(f"\nnumpy - torch Malvar: {mn - mt:+.2f} s; largest output difference {diff:.2e}")


if __name__ == "__main__":
    main()
