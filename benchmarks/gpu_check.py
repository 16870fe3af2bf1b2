"""Every back-end on CUDA against the CPU, and a 24-megapixel develop per back-end on CUDA.

For each registered back-end that runs on a torch device:

* **agreement**: the same mosaic (a seeded random scene, sampled with the CFA, odd size, every
  back-end's own noise input) is run on the CPU in float32 and on CUDA in each compute dtype
  (float32, float16, bfloat16); the largest absolute difference of the outputs is reported
  (outputs are in [0, 1] units: sRGB-encoded or linear, as the back-end produces them);
* **speed**: a synthetic 24-megapixel DNG is decoded and developed (no file written) with the
  back-end on CUDA: one warm-up, then the median of 3, with the peak GPU memory torch allocated.

One table is printed; the whole check takes under 5 minutes on one H100. Without CUDA it says so
and exits 0. The comparison and timing functions take the two devices as arguments, so the test
suite runs them CPU against CPU on tiny inputs (tests/test_gpu_check.py).

    python benchmarks/gpu_check.py [--mp 24] [--repeat 3] [--size 515x771]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
NO_CUDA = "gpu_check: no CUDA device (torch.cuda.is_available() is False): nothing to check on this machine."
#: Noise inputs of the noise-aware back-ends: a sigma in the sRGB-encoded domain (jdd-noise), and
#: (shot, read) variance coefficients on the linear mosaic (the learned ISPs).
JDD_SIGMA = 0.02
ISP_NOISE = (2e-3, 2e-5)
#: camera RGB -> linear sRGB for the learned ISPs (a typical daylight matrix, rows summing to 1).
MATRIX = np.array([[1.70, -0.55, -0.15], [-0.20, 1.45, -0.25], [0.05, -0.50, 1.45]], dtype=np.float32)


@dataclass
class Row:
    """One back-end's line of the table."""

    backend: str
    max_diff: dict[str, float]  # compute dtype -> largest |test - reference|
    seconds: float | None = None  # median develop time
    peak_mb: float | None = None  # peak GPU memory allocated by torch during the develop
    note: str = ""


def device_backends() -> list[str]:
    """The registered back-ends that run on a torch device (demosaickers and learned ISPs)."""
    from rawdev.backends import registry

    return [s.name for s in registry.list_backends() if s.build is not None and s.input_domain.startswith("mosaic")]


def sample_mosaic(height: int, width: int, pattern: str = "RGGB", seed: int = 0) -> torch.Tensor:
    """A ``(1, 1, H, W)`` mosaic in [0, 1]: smooth colour gradients, edges and fine noise, sampled
    with ``pattern`` (enough structure to exercise every branch of a demosaicker)."""
    from rawdev.cfa import mosaic

    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None, :]
    base = torch.stack([0.2 + 0.6 * x * y, 0.5 + 0.3 * torch.sin(9 * x + 4 * y), 0.3 + 0.5 * (1 - y) * x])
    edges = ((torch.arange(width)[None, :] // 7 + torch.arange(height)[:, None] // 5) % 2).float()
    img = (base * (0.7 + 0.3 * edges) + 0.03 * torch.rand(3, height, width, generator=g)).clamp(0, 1)
    return mosaic(img[None], pattern)


def run_backend(name: str, mosaic: torch.Tensor, pattern: str, device: str, dtype: torch.dtype) -> torch.Tensor:
    """Back-end ``name`` built for ``device``/``dtype`` on ``mosaic``; returns float32 on the CPU."""
    from rawdev.backends import registry

    spec = registry.get(name)
    run = spec.build(device=device, dtype=dtype)
    x = mosaic.to(device=device, dtype=dtype)
    kwargs: dict = {}
    if spec.output_domain == "srgb_display":  # an end-to-end ISP: noise coefficients and the matrix
        kwargs = {"noise": torch.tensor(ISP_NOISE), "matrix": MATRIX}
    elif spec.uses_noise:
        kwargs = {"noise": torch.tensor([JDD_SIGMA])}
    with torch.inference_mode():
        out = run(x, pattern, **kwargs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out.float().cpu()


def max_difference(name: str, ref_device: str, test_device: str, dtype: torch.dtype,
                   size: tuple[int, int] = (515, 771), pattern: str = "GRBG") -> float:
    """Largest ``|test - reference|`` of back-end ``name``: reference on ``ref_device`` in float32,
    test on ``test_device`` in ``dtype``, the same mosaic for both."""
    m = sample_mosaic(*size, pattern=pattern)
    ref = run_backend(name, m, pattern, ref_device, torch.float32)
    got = run_backend(name, m, pattern, test_device, dtype)
    if got.shape != ref.shape:
        raise AssertionError(f"{name}: {test_device} gave {tuple(got.shape)}, {ref_device} {tuple(ref.shape)}")
    return float((got - ref).abs().max())


def make_dng(path: Path, megapixels: float) -> Path:
    """A synthetic 3:2 DNG of about ``megapixels`` (the demo scene with sensor noise)."""
    from rawdev.synthetic import demo_scene, write_dng

    w = int(round((megapixels * 1e6 * 1.5) ** 0.5)) // 2 * 2
    h = int(round(w / 1.5)) // 2 * 2
    write_dng(path, demo_scene(w, h).astype(np.float32), pattern="RGGB", noise_sigma=2.0)
    return path


def time_develop(name: str, dng: Path, device: str, repeat: int = 3) -> tuple[float, float | None]:
    """Median seconds of decoding and developing ``dng`` with back-end ``name`` on ``device`` (after
    one warm-up run), and the peak GPU memory in MB torch allocated (None on the CPU)."""
    from rawdev.pipeline import PipelineConfig, develop

    cfg = PipelineConfig(backend=name, device=device)
    cuda = device.startswith("cuda")
    develop(dng, cfg)  # warm-up: weights loaded, kernels chosen, caches filled
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        develop(dng, cfg)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return statistics.median(times), peak


def check(ref_device: str, test_device: str, dtypes: list[str], size: tuple[int, int], dng: Path | None,
          repeat: int, backends: list[str] | None = None, budget_s: float = 280.0, log=print) -> list[Row]:
    """Agreement of every back-end (``test_device`` in each of ``dtypes`` against ``ref_device`` in
    float32) and, when ``dng`` is given, its develop time on ``test_device``. Timings stop (with a
    note) once ``budget_s`` seconds have passed, so the whole check stays within its time."""
    t_start = time.perf_counter()
    rows = []
    for name in backends or device_backends():
        row = Row(name, {})
        for dt in dtypes:
            try:
                row.max_diff[dt] = max_difference(name, ref_device, test_device, DTYPES[dt], size)
            except Exception as err:  # noqa: BLE001 - a failing back-end is a finding, reported in its row
                row.max_diff[dt] = float("nan")
                row.note += f"{dt}: {type(err).__name__}: {err}; "
        if dng is not None:
            if time.perf_counter() - t_start > budget_s:
                row.note += "develop not timed (time budget spent)"
            else:
                try:
                    row.seconds, row.peak_mb = time_develop(name, dng, test_device, repeat)
                except Exception as err:  # noqa: BLE001
                    row.note += f"develop: {type(err).__name__}: {err}"
        log(f"  {name}: done ({time.perf_counter() - t_start:.0f} s)")
        rows.append(row)
    return rows


def format_table(rows: list[Row], dtypes: list[str], megapixels: float, repeat: int) -> str:
    """The Markdown table of :func:`check`'s rows."""
    head = ["back-end"] + [f"max diff {d}" for d in dtypes] + [f"{megapixels:g} MP develop (s, median of {repeat})",
                                                              "peak GPU MB", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.backend] + [f"{r.max_diff.get(d, float('nan')):.2e}" for d in dtypes]
        cells += ["" if r.seconds is None else f"{r.seconds:.2f}", "" if r.peak_mb is None else f"{r.peak_mb:.0f}",
                  r.note.strip("; ")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=24.0, help="megapixels of the timed develop")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", default="515x771", help="HxW of the agreement mosaic")
    ap.add_argument("--budget", type=float, default=280.0, help="seconds after which timings are skipped")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    h, w = (int(v) for v in args.size.lower().split("x"))
    dtypes = list(DTYPES)
    print(f"gpu_check on {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        dng = make_dng(Path(tmp) / "check.dng", args.mp)
        rows = check("cpu", "cuda", dtypes, (h, w), dng, args.repeat, budget_s=args.budget)
    print()
    print(format_table(rows, dtypes, args.mp, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
