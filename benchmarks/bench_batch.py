"""Batch throughput of ``rawdev batch`` with 1 and 2 worker processes on a folder of DNGs (classical
back-end), measured in the same run, interleaved.

    python benchmarks/bench_batch.py                  # 96 DNGs of 4000 x 3000; 1 worker x 1 thread, 1 worker
                                                      # (default threads: cores), 2 workers; 2 rounds
    python benchmarks/bench_batch.py --files 8 --size 1200x800 --rounds 1 --runs 1,2 --backend menon

``--runs`` lists the settings: ``J`` is ``-j J`` with the default threads per worker (cores // J),
``JxT`` is ``-j J --threads T``; speed-ups are relative to the first.

The DNGs are rawdev's demo scene (write_demo_dng: a real camera matrix, 14 bit, read noise), one file
hard-linked under N names (the page cache serves every setting alike). Every
run is a fresh ``python -m rawdev batch DIR -o OUT --json -j N`` into an empty folder, so the wall time
includes starting Python, the workers and their imports. The steady-state rate is taken from the
arrival times of the per-file JSON lines (files 2..N over the time between the first and the last),
which leaves the start-up out. Each run also prints how much CPU the rest of the machine used while
it ran (from /proc/stat, minus the batch's own CPU): other work inflates the speed-up (a batch with
more processes gets a bigger share of contended cores), so quote figures from runs where it is near 0.
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
        try:
            os.link(first, folder / f"img_{i:03d}.dng")
        except OSError:
            shutil.copyfile(first, folder / f"img_{i:03d}.dng")


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(folder: Path, out: Path, jobs: int, backend: str, threads: int | None) -> dict:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "rawdev", "batch", str(folder), "-o", str(out), "--json", "-j", str(jobs), "-b", backend]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    busy0, mine0 = _busy_cpu_s(), _children_cpu_s()
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
    cpu = _children_cpu_s() - mine0
    # CPU the rest of the machine used meanwhile, as a fraction of all cores: contention indicator.
    others = max(0.0, (_busy_cpu_s() - busy0) - cpu) / (wall * len(os.sched_getaffinity(0)))
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    n = len(arrivals)
    steady = (n - 1) / (arrivals[-1] - arrivals[0]) if n > 1 and arrivals[-1] > arrivals[0] else float("nan")
    return {"wall": wall, "files": n, "rate": n / wall, "steady": steady, "first": arrivals[0], "cpu": cpu, "others": others}


def _label(setting: tuple, cores: int) -> str:
    j, t = setting
    threads = t or max(1, cores // j)
    return f"-j {j}" + (f" --threads {t}" if t else "") + f" ({j} worker{'s' if j > 1 else ''} x {threads} thread{'s' if threads > 1 else ''})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=96)
    ap.add_argument("--size", default="4000x3000", help="WxH of each DNG")
    ap.add_argument("--runs", default="1x1,1,2", help="settings to compare: J (jobs, default threads) or JxT")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backend", default="malvar")
    ap.add_argument("--max-others", type=float, default=0.05,
                    help="the table uses runs during which other processes used at most this share of the cores "
                         "(if a setting has none, its least contended run, marked *)")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    settings = []
    for item in args.runs.split(","):
        j, _, t = item.partition("x")
        settings.append((int(j), int(t) if t else None))
    work = args.dir or Path(tempfile.mkdtemp(prefix="rawdev-bench-"))
    try:
        folder = work / "dng"
        make_folder(folder, args.files, w, h)
        cores = len(os.sched_getaffinity(0))
        print(f"# {args.files} DNGs {w}x{h} (demo scene), back-end {args.backend}, {cores} cores, "
              f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        results: dict[tuple, list[dict]] = {st: [] for st in settings}
        for r in range(args.rounds):
            for st in settings:  # interleaved, so that drifting load hits every setting alike
                j, t = st
                res = run_once(folder, work / "out", j, args.backend, t)
                results[st].append(res)
                print(f"round {r + 1} {_label(st, cores)}: wall {res['wall']:.2f} s, {res['rate']:.2f} files/s, "
                      f"steady {res['steady']:.2f} files/s, first file after {res['first']:.2f} s, "
                      f"batch CPU {res['cpu']:.1f} s, other processes {100 * res['others']:.0f} % of the cores", flush=True)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        base = settings[0]
        print()
        print("| setting | runs | wall time (median) | files/s | speed-up (wall) | steady files/s | speed-up (steady) | batch CPU | other processes |")
        print("|---|---|---|---|---|---|---|---|---|")
        for st in settings:
            quiet = [x for x in results[st] if x["others"] <= args.max_others]
            results[st] = quiet or [min(results[st], key=lambda x: x["others"])]
        b_wall = statistics.median(x["wall"] for x in results[base])
        b_steady = statistics.median(x["steady"] for x in results[base])
        for st in settings:
            rs = results[st]
            flag = "" if all(x["others"] <= args.max_others for x in rs) else " *"
            wall = statistics.median(x["wall"] for x in rs)
            steady = statistics.median(x["steady"] for x in rs)
            cpu = statistics.median(x["cpu"] for x in rs)
            others = max(x["others"] for x in rs)
            print(f"| {_label(st, cores)}{flag} | {len(rs)} | {wall:.2f} s | {args.files / wall:.2f} | {b_wall / wall:.2f}x | {steady:.2f} | "
                  f"{steady / b_steady:.2f}x | {cpu:.1f} s | {100 * others:.0f} % |")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
