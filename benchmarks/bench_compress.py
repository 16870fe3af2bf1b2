"""The Pareto table of jdd-noise's compression: teacher, jdd and every student variant, in one process.

For each variant: parameters, multiply-accumulates per output pixel, seconds per megapixel of its
runner (the back-end's own tiling and threads, on a ``--mp`` megapixel mosaic; median of ``--repeat``,
variants interleaved so load drift hits all alike) and, with ``--quality``, CPSNR on Kodak24 and
McMaster18 at sigma 0/5/10/15 by the protocol of :mod:`rawdev.evaluate.demosaic` (the one the model
cards quote). Variants:

* ``jdd-noise`` (the teacher) and ``jdd``: the registered back-ends;
* ``student``: a plain student file (``--student``, default ``weights/jdd_fast.safetensors``), and any
  other student files given with ``--extra NAME=FILE`` (e.g. the once-for-all sub-network of width 0.75);
* ``student int8``: the student's trunk in int8 with the calibrated ranges of ``--ranges``;
* ``student sparse P%``: magnitude sparsity (``--sparsity 0.5,0.75``) of the student's 3x3 layers.

    python benchmarks/bench_compress.py [--mp 4] [--repeat 3] [--quality] [--json out.json] [--plot out.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rawdev.backends import registry  # noqa: E402
from rawdev.backends.registry import BackendSpec  # noqa: E402

SIGMAS = (0, 5, 10, 15)


def jdd_macs(depth: int = 15, width: int = 64, noise: bool = True) -> float:
    """Multiply-accumulates per output pixel of Gharbi2016's Bayer network (borders ignored)."""
    half = 3 * 4 * 4 + (5 if noise else 4) * width * 9 + (depth - 2) * width * width * 9 + width * 2 * width * 9
    half += width * 12 + 12 * 4
    return half / 4 + 6 * width * 9 + width * 3


def _params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def _register(name: str, runner) -> None:
    """An ad-hoc spec (this process only) so the evaluation protocol can run ``runner`` by name."""
    if name in registry._REGISTRY:
        return
    registry.register(BackendSpec(name=name, kind="learned", description=name, input_domain="mosaic_srgb_wb",
                                  uses_noise=True, build=lambda **_: runner))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=4.0, help="megapixels of the timed mosaic")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--student", type=Path, default=ROOT / "weights" / "jdd_fast.safetensors")
    ap.add_argument("--ranges", type=Path, default=ROOT / "weights" / "jdd_fast_int8.safetensors")
    ap.add_argument("--extra", action="append", default=[], help="NAME=FILE: another plain student file")
    ap.add_argument("--sparsity", default="0.5,0.75")
    ap.add_argument("--skip", default="", help="comma-separated variants not to run (e.g. jdd)")
    ap.add_argument("--quality", action="store_true", help="also score Kodak24/McMaster18 (../shared/data)")
    ap.add_argument("--sigmas", default="0,5,10,15", help="noise levels (0-255) of the quality runs")
    ap.add_argument("--sets", default="kodak24,mcmaster", help="folders under --data to score")
    ap.add_argument("--quality-skip", default="", help="comma-separated variants not to score (slow teachers)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path, help="quality (Kodak24 sigma 10) against seconds per megapixel, PNG")
    args = ap.parse_args()

    from safetensors.torch import load_file

    from rawdev.backends.learned import student_runner
    from rawdev.models.li2020 import macs_per_pixel
    from rawdev.models.quantise import Int8Student, magnitude_sparsify, sparsity
    from rawdev.train.compress import read_student

    dev = torch.device("cpu")

    def runner_of(net):
        return student_runner(net, device=dev, tile=512, batch=1)

    skip = set(filter(None, args.skip.split(",")))
    variants: dict[str, dict] = {}
    for name in ("jdd-noise", "jdd"):
        if name in skip:
            continue
        run = registry.get(name).build(device="cpu")
        variants[name] = {"run": run, "params": _params(run.core.bayer_net), "macs": jdd_macs(noise=name == "jdd-noise")}
    student, _ = read_student(args.student)
    student.eval()
    files = {"student": student}
    for item in args.extra:
        label, path = item.split("=", 1)
        files[label], _ = read_student(path)
    for label, net in files.items():
        variants[label] = {"run": runner_of(net.eval()), "params": _params(net),
                           "macs": macs_per_pixel(net.widths, net.post_width, base_input=net.base_input)}
    if args.ranges.is_file() and "int8" not in skip:
        q = Int8Student(student, load_file(str(args.ranges)))
        variants["student int8"] = {"run": runner_of(q), "params": _params(student),
                                    "macs": macs_per_pixel(student.widths, student.post_width, base_input=student.base_input)}
    for amount in filter(None, args.sparsity.split(",")):
        sp = magnitude_sparsify(student, float(amount))
        variants[f"student sparse {float(amount):.0%}"] = {
            "run": runner_of(sp), "params": _params(sp), "nonzero": 1 - sparsity(sp),
            "macs": macs_per_pixel(student.widths, student.post_width, base_input=student.base_input)}

    # Speed: one mosaic, every variant in turn, repeated.
    side = int((args.mp * 1e6) ** 0.5) // 2 * 2
    g = torch.Generator().manual_seed(0)
    mosaic = torch.rand(1, 1, side, side * 3 // 2 // 2 * 2, generator=g) * 0.8
    mp = mosaic.shape[-1] * mosaic.shape[-2] / 1e6
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeat):
        for name, v in variants.items():
            t0 = time.perf_counter()
            v["run"](mosaic, "RGGB", noise=torch.tensor([5 / 255]))
            times[name].append((time.perf_counter() - t0) / mp)
    for name, v in variants.items():
        v["s_per_mp"] = statistics.median(times[name])

    if args.quality:
        from rawdev.evaluate.demosaic import evaluate_demosaic

        qskip = set(filter(None, args.quality_skip.split(",")))
        for name, v in variants.items():
            if name in qskip:
                continue
            key = name if name in ("jdd", "jdd-noise") else f"bench:{name}"
            if key.startswith("bench:"):
                _register(key, v["run"])
            for ds in filter(None, args.sets.split(",")):
                folder = ds
                for s in (int(x) for x in args.sigmas.split(",")):
                    ev = evaluate_demosaic(args.data / folder, key, pattern="RGGB", border=10, noise_sigma=float(s),
                                           seed=0, device="cpu")
                    v[f"{ds}_s{s}"] = round(ev.mean_cpsnr, 2)
                    print(f"{name} {ds} sigma {s}: {ev.mean_cpsnr:.2f} dB", file=sys.stderr)

    ref = variants.get("jdd", {}).get("s_per_mp")
    cols = ["params", "MAC/px", "s/MP", "x jdd"] + ([f"{d} σ{s}" for d in ("Kodak", "McM") for s in SIGMAS]
                                                   if args.quality else [])
    print(f"\nin-process speed on a {mp:.1f} MP mosaic, CPU, {torch.get_num_threads()} threads, median of "
          f"{args.repeat}\n")
    print("| variant | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, v in variants.items():
        cells = [f"{v['params']:,}" + (f" ({v['nonzero']:.0%} non-zero)" if "nonzero" in v else ""),
                 f"{v['macs']:,.0f}", f"{v['s_per_mp']:.3f}", f"{ref / v['s_per_mp']:.1f}" if ref else "-"]
        if args.quality:
            cells += [f"{v[f'{d}_s{s}']:.2f}" if f"{d}_s{s}" in v else "-" for d in ("kodak24", "mcmaster")
                      for s in SIGMAS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    out = {k: {kk: vv for kk, vv in v.items() if kk != "run"} for k, v in variants.items()}
    if args.json:
        args.json.write_text(json.dumps({"mp": mp, "repeat": args.repeat, "variants": out}, indent=1))
    if args.plot and args.quality:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for name, v in out.items():
            if "kodak24_s10" not in v:
                continue
            ax.scatter(v["s_per_mp"], v["kodak24_s10"])
            ax.annotate(name, (v["s_per_mp"], v["kodak24_s10"]), fontsize=8, xytext=(4, 2),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("seconds per megapixel (CPU, in process, log scale)")
        ax.set_ylabel("Kodak24 CPSNR at sigma 10 (dB)")
        ax.set_title("jdd-noise and its compressed students")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
