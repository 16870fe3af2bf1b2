"""Benchmarks of the ``jdd`` back-end (Gharbi2016 demosaicnet): speed, memory, quality.

Usage (from the repository root, with the venv active)::

    python benchmarks/bench_jdd.py speed   [--mp 24] [--repeat 1] [--tile N]
    python benchmarks/bench_jdd.py memory  [--mps 12 24 48]
    python benchmarks/bench_jdd.py quality [--data ../shared/data] [--sets kodak24 mcmaster]

``speed`` times rawdev's ``jdd`` runner against the *reference* ``demosaicnet`` module forward on the
same synthetic mosaic, in the same process, alternating the two. The reference is demosaicnet 0.0.14's
own ``modules.py``, exec'd from the installed wheel with ``pkg_resources`` stubbed (the package cannot be
imported on setuptools >= 81), run as its demo script does: ``with torch.no_grad(): model(mosaic)`` on
the whole image, NCHW float32.

``memory`` runs the jdd runner on a 12/24/48 MP mosaic in fresh subprocesses and reports the peak
resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), which includes the input mosaic
(4 B/px) and the full-size output (12 B/px).

``quality`` is the standard demosaicking protocol: mosaic the 8-bit sRGB photo with each Bayer phase,
run jdd, clip and round to uint8, CPSNR over the three channels ignoring a 10-pixel border, averaged
over the set (mean of per-image PSNRs).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import resource
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rawdev.backends import registry  # noqa: E402
from rawdev.cfa import bayer_masks, mosaic as cfa_mosaic  # noqa: E402

PHASES = ("RGGB", "GRBG", "BGGR", "GBRG")


def reference_module():
    """demosaicnet 0.0.14's ``BayerDemosaick`` with its released weights, without importing the package."""
    dist = importlib.metadata.distribution("demosaicnet")
    src = Path(str(dist.locate_file("demosaicnet/modules.py"))).read_text()
    stub = types.ModuleType("pkg_resources")
    stub.resource_filename = lambda _name, rel: str(dist.locate_file("demosaicnet/" + rel))
    saved = sys.modules.get("pkg_resources")
    sys.modules["pkg_resources"] = stub
    try:
        ns: dict = {"__name__": "demosaicnet_reference_modules"}
        exec(compile(src, "demosaicnet/modules.py", "exec"), ns)
    finally:
        if saved is None:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = saved
    return ns["BayerDemosaick"](pretrained=True).eval()


def synthetic_mosaic(mp: float, seed: int = 0) -> torch.Tensor:
    """A (1, 1, H, W) RGGB mosaic of ``mp`` megapixels with a 3:2 aspect (e.g. 6000 x 4000 for 24 MP)."""
    w = int(round((mp * 1e6 * 1.5) ** 0.5 / 2)) * 2
    h = int(round(mp * 1e6 / w / 2)) * 2
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, h, w, generator=g)


def reference_forward(ref, m3: torch.Tensor, strips: int) -> tuple[float, int]:
    """Seconds and output pixels of the reference forward on ``m3``, whole or in horizontal strips.

    ``strips=1`` is one forward on the whole image (about 19 GB peak RSS at 24 MP). With more strips
    each strip is one reference forward on a band of rows overlapping by the 62 rows the valid convs
    consume, starting on even rows; together they produce exactly the whole-image output.
    """
    h = m3.shape[-2]
    out_h = h - 62
    bounds = [round(out_h * k / strips / 2) * 2 for k in range(strips + 1)]
    t0 = time.perf_counter()
    npx = 0
    with torch.no_grad():
        for a, b in zip(bounds[:-1], bounds[1:]):
            y = ref(m3[..., a : b + 62, :])
            npx += y.shape[-1] * y.shape[-2]
            del y
    return time.perf_counter() - t0, npx


def cmd_speed(args) -> None:
    torch.set_num_threads(args.threads or torch.get_num_threads())
    x = synthetic_mosaic(args.mp)
    h, w = x.shape[-2:]
    run = registry.get("jdd").build(device="cpu", tile=args.tile, workers=args.workers)
    ref = reference_module()
    # Reference input: the same mosaic as a zero-filled 3-channel GRBG mosaic (crop of 1 column makes
    # the RGGB mosaic GRBG; keep the width even by cropping one more at the end).
    m3 = (x * bayer_masks("RGGB", h, w))[..., :, 1 : w - 1].contiguous()
    rows = []
    print(f"input {w}x{h} = {h * w / 1e6:.1f} MP, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"rawdev tile {run.tile}, workers {run._workers()}, reference strips {args.ref_strips}", flush=True)
    for rep in range(args.repeat):
        if not args.skip_ref:
            t_ref, out_ref = reference_forward(ref, m3, args.ref_strips)
            rows.append(("reference demosaicnet forward", t_ref, out_ref))
            print(f"  rep {rep}: reference {t_ref:.1f} s", flush=True)
        t0 = time.perf_counter()
        z = run(x, "RGGB")
        t_ours = time.perf_counter() - t0
        rows.append(("rawdev jdd (tiled, channels_last)", t_ours, z.shape[-1] * z.shape[-2]))
        del z
        print(f"  rep {rep}: rawdev {t_ours:.1f} s", flush=True)
    print()
    print("| run | seconds | output MP | output MP/s | input MP/s |")
    print("|---|---|---|---|---|")
    best = {}
    for name, t, npx in rows:
        print(f"| {name} | {t:.1f} | {npx / 1e6:.2f} | {npx / 1e6 / t:.3f} | {h * w / 1e6 / t:.3f} |")
        best[name] = min(best.get(name, 1e9), t)
    if len(best) == 2:
        t_ref, t_ours = best["reference demosaicnet forward"], best["rawdev jdd (tiled, channels_last)"]
        print(f"\nratio (best reference time / best rawdev time, same input): {t_ref / t_ours:.2f}x")


def _mem_child(mp: float, tile: int | None) -> None:
    x = synthetic_mosaic(mp)
    run = registry.get("jdd").build(device="cpu", tile=tile)
    t0 = time.perf_counter()
    y = run(x, "RGGB")
    dt = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"mp": x.numel() / 1e6, "shape": list(y.shape), "seconds": dt, "maxrss_mb": rss_mb}))


def cmd_memory(args) -> None:
    print("| input MP | size | seconds | peak RSS (MB) | of which input + output (MB) |")
    print("|---|---|---|---|---|")
    for mp in args.mps:
        cmd = [sys.executable, __file__, "_mem", str(mp)] + ([] if args.tile is None else ["--tile", str(args.tile)])
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        d = json.loads(res.stdout.strip().splitlines()[-1])
        io_mb = d["mp"] * 16  # 4 B/px input + 12 B/px output
        print(f"| {d['mp']:.1f} | {d['shape'][3]}x{d['shape'][2]} | {d['seconds']:.1f} | {d['maxrss_mb']:.0f} | {io_mb:.0f} |",
              flush=True)


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.array(Image.open(path).convert("RGB"))


def cpsnr(a: np.ndarray, b: np.ndarray, border: int = 10) -> float:
    """CPSNR (dB) of two uint8 (H, W, 3) images over all three channels, ignoring ``border`` pixels."""
    a = a[border:-border, border:-border].astype(np.float64)
    b = b[border:-border, border:-border].astype(np.float64)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def demosaic_uint8(run, img: np.ndarray, phase: str) -> np.ndarray:
    x = torch.from_numpy(img.copy()).permute(2, 0, 1).float()[None] / 255.0
    y = run(cfa_mosaic(x, phase), phase)[0]
    return (y.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def cmd_quality(args) -> None:
    data = Path(args.data)
    run = registry.get("jdd").build(device="cpu")
    print("| set | images | " + " | ".join(PHASES) + " | spread |")
    print("|---|---|" + "---|" * len(PHASES) + "---|")
    for name in args.sets:
        files = sorted(p for p in (data / name).iterdir() if p.suffix.lower() in (".png", ".tif", ".tiff", ".bmp"))
        per = {ph: [] for ph in PHASES}
        for f in files:
            img = _load_rgb(f)
            for ph in PHASES:
                per[ph].append(cpsnr(demosaic_uint8(run, img, ph), img))
            if args.verbose:
                print(f"  {name}/{f.name}: " + " ".join(f"{ph} {per[ph][-1]:.2f}" for ph in PHASES), flush=True)
        means = [float(np.mean(per[ph])) for ph in PHASES]
        print(f"| {name} | {len(files)} | " + " | ".join(f"{m:.2f}" for m in means)
              + f" | {max(means) - min(means):.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--mp", type=float, default=24.0)
    sp.add_argument("--repeat", type=int, default=1)
    sp.add_argument("--tile", type=int, default=None)
    sp.add_argument("--threads", type=int, default=None)
    sp.add_argument("--skip-ref", action="store_true")
    sp.add_argument("--ref-strips", type=int, default=4,
                    help="run the reference in this many row strips (1 = whole image, ~19 GB at 24 MP)")
    sp.add_argument("--workers", type=int, default=None)
    mp = sub.add_parser("memory")
    mp.add_argument("--mps", type=float, nargs="+", default=[12.0, 24.0, 48.0])
    mp.add_argument("--tile", type=int, default=None)
    mc = sub.add_parser("_mem")
    mc.add_argument("mp", type=float)
    mc.add_argument("--tile", type=int, default=None)
    q = sub.add_parser("quality")
    q.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    q.add_argument("--sets", nargs="+", default=["kodak24", "mcmaster"])
    q.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.cmd == "speed":
        cmd_speed(args)
    elif args.cmd == "memory":
        cmd_memory(args)
    elif args.cmd == "_mem":
        _mem_child(args.mp, args.tile)
    else:
        cmd_quality(args)


if __name__ == "__main__":
    main()
