"""Batch throughput of ``rawdev batch`` with 1 and 2 worker processes on a folder of DNGs (classical
back-end), measured in the same run, interleaved.

    python benchmarks/bench_batch.py                  # 24 DNGs of 2400 x 1600, jobs 1 and 2, 2 rounds
    python benchmarks/bench_batch.py --files 8 --size 1200x800 --rounds 1 --jobs 1,2 --backend malvar

The DNGs are rawdev's demo scene (write_demo_dng: a real camera matrix, 14 bit, read noise). Every
run is a fresh ``python -m rawdev batch DIR -o OUT --json -j N`` into an empty folder, so the wall time
includes starting Python, the workers and their imports. The steady-state rate is taken from the
arrival times of the per-file JSON lines (files 2..N over the time between the first and the last),
which leaves the start-up out. The machine's load average is printed before and after: other work on
the machine inflates the speed-up (a batch with more processes gets a bigger share of contended
cores), so quote figures from a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_folder(folder: Path, n: int, width: int, height: int) -> None:
    sys.path.insert(0, str(REPO))
    from rawdev.synthetic import write_demo_dng

    folder.mkdir(parents=True, exist_ok=True)
    first = write_demo_dng(folder / "img_000.dng", width, height)
    for i in range(1, n):
        shutil.copyfile(first, folder / f"img_{i:03d}.dng")


def run_once(folder: Path, out: Path, jobs: int, backend: str, threads: int | None) -> dict:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "rawdev", "batch", str(folder), "-o", str(out), "--json", "-j", str(jobs), "-b", backend]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    arrivals = []
    assert proc.stdout is not None
    for line in proc.stdout:
        arrivals.append(time.perf_counter() - t0)
        row = json.loads(line)
        if row["status"] != "developed":
            raise SystemExit(f"{row['input']}: {row['status']}: {row['reason']}")
    proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    n = len(arrivals)
    steady = (n - 1) / (arrivals[-1] - arrivals[0]) if n > 1 and arrivals[-1] > arrivals[0] else float("nan")
    return {"wall": wall, "files": n, "rate": n / wall, "steady": steady, "first": arrivals[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--size", default="2400x1600", help="WxH of each DNG")
    ap.add_argument("--jobs", default="1,2", help="worker counts to compare")
    ap.add_argument("--threads", type=int, default=None, help="threads per worker (default: cores // jobs)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backend", default="malvar")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    jobs_list = [int(j) for j in args.jobs.split(",")]
    work = args.dir or Path(tempfile.mkdtemp(prefix="rawdev-bench-"))
    try:
        folder = work / "dng"
        make_folder(folder, args.files, w, h)
        cores = len(os.sched_getaffinity(0))
        print(f"# {args.files} DNGs {w}x{h} (demo scene), back-end {args.backend}, {cores} cores, "
              f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        results: dict[int, list[dict]] = {j: [] for j in jobs_list}
        for r in range(args.rounds):
            for j in jobs_list:  # interleaved, so that drifting load hits every setting alike
                res = run_once(folder, work / f"out{j}", j, args.backend, args.threads)
                results[j].append(res)
                print(f"round {r + 1} jobs {j}: wall {res['wall']:.2f} s, {res['rate']:.2f} files/s, "
                      f"steady {res['steady']:.2f} files/s, first file after {res['first']:.2f} s", flush=True)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        base = jobs_list[0]
        b_wall = statistics.median(x["wall"] for x in results[base])
        b_steady = statistics.median(x["steady"] for x in results[base])
        print()
        print("| workers | wall time (median) | files/s | speed-up (wall) | steady files/s | speed-up (steady) |")
        print("|---|---|---|---|---|---|")
        for j in jobs_list:
            wall = statistics.median(x["wall"] for x in results[j])
            steady = statistics.median(x["steady"] for x in results[j])
            print(f"| {j} | {wall:.2f} s | {args.files / wall:.2f} | {b_wall / wall:.2f}x | {steady:.2f} | {steady / b_steady:.2f}x |")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
