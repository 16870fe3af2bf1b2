"""Batch throughput of ``rawdev batch`` with 1 and 2 worker processes on a folder of DNGs (classical
back-end), measured in the same run, interleaved.

    python benchmarks/bench_batch.py                  # 96 DNGs of 4000 x 3000; 1 worker x 1 thread, 1 worker
                                                      # (default threads: cores), 2 workers; 2 rounds
    python benchmarks/bench_batch.py --files 8 --size 1200x800 --rounds 1 --runs 1,2 --backend menon

``--runs`` lists the settings: ``J`` is ``-j J`` with the default threads per worker (cores // J),
``JxT`` is ``-j J --threads T``, ``cN`` is ``--cluster ADDRESS`` on a Dask ``LocalCluster`` of N
worker processes of one thread each (needs ``rawdev[cluster]``); speed-ups are relative to the first.
The cluster is started once, before the first round, as a real one would be running already; its
workers keep their develop processes (and back-ends) from one batch to the next, which only the wall
time sees: compare the steady rates for the engine's overhead per file. A line after the table gives
each cluster setting's throughput against the local pool with as many workers, when both ran::

    python benchmarks/bench_batch.py --files 24 --size 2000x1500 --runs 2,c2 --rounds 3

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


def _cluster_cpu_s() -> float:
    """CPU seconds used so far by this process's live descendants (the LocalCluster's scheduler
    threads are in this process; its workers and their develop processes are children)."""
    import psutil

    total = 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def start_cluster(workers: int):
    """A Dask LocalCluster of ``workers`` processes with one thread each, and its address."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0", silence_logs=50)
    return cluster, cluster.scheduler_address


def run_once(folder: Path, out: Path, jobs: int, backend: str, threads: int | None, cluster: str | None = None) -> dict:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "rawdev", "batch", str(folder), "-o", str(out), "--json", "-b", backend]
    cmd += ["--cluster", cluster] if cluster else ["-j", str(jobs)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    busy0, mine0 = _busy_cpu_s(), _children_cpu_s()
    cluster0 = _cluster_cpu_s() if cluster else 0.0
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
    cpu = _children_cpu_s() - mine0 + (_cluster_cpu_s() - cluster0 if cluster else 0.0)
    # CPU the rest of the machine used meanwhile, as a fraction of all cores: contention indicator.
    others = max(0.0, (_busy_cpu_s() - busy0) - cpu) / (wall * len(os.sched_getaffinity(0)))
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    n = len(arrivals)
    steady = (n - 1) / (arrivals[-1] - arrivals[0]) if n > 1 and arrivals[-1] > arrivals[0] else float("nan")
    return {"wall": wall, "files": n, "rate": n / wall, "steady": steady, "first": arrivals[0], "cpu": cpu, "others": others}


def _label(setting: tuple, cores: int) -> str:
    j, t = setting
    if isinstance(j, str):
        n = int(j[1:])
        return f"--cluster (Dask LocalCluster, {n} worker{'s' if n > 1 else ''} x 1 thread)"
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
        if item.startswith("c"):
            settings.append((item, None))
            continue
        j, _, t = item.partition("x")
        settings.append((int(j), int(t) if t else None))
    work = args.dir or Path(tempfile.mkdtemp(prefix="rawdev-bench-"))
    clusters: dict[str, tuple] = {}
    try:
        for j, _t in settings:
            if isinstance(j, str):
                clusters[j] = start_cluster(int(j[1:]))
        folder = work / "dng"
        make_folder(folder, args.files, w, h)
        cores = len(os.sched_getaffinity(0))
        print(f"# {args.files} DNGs {w}x{h} (demo scene), back-end {args.backend}, {cores} cores, "
              f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        results: dict[tuple, list[dict]] = {st: [] for st in settings}
        for r in range(args.rounds):
            for st in settings:  # interleaved, so that drifting load hits every setting alike
                j, t = st
                res = run_once(folder, work / "out", 0 if isinstance(j, str) else j, args.backend, t,
                               clusters[j][1] if isinstance(j, str) else None)
                results[st].append(res)
                print(f"round {r + 1} {_label(st, cores)}: wall {res['wall']:.2f} s, {res['rate']:.2f} files/s, "
                      f"steady {res['steady']:.2f} files/s, first file after {res['first']:.2f} s, "
                      f"batch CPU {res['cpu']:.1f} s, other processes {100 * res['others']:.0f} % of the cores", flush=True)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        base = settings[0]
        print()
        print("| setting | runs | wall time (median) | files/s | speed-up (wall) | steady files/s | speed-up (steady) | batch CPU | other processes |")
        print("|---|---|---|---|---|---|---|---|---|")
        every_round = {st: list(rs) for st, rs in results.items()}
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
        for st in settings:
            j, _t = st
            peer = (int(j[1:]), None) if isinstance(j, str) else None
            if peer in every_round:  # every round: the two ran back to back under the same load
                cs, ps = every_round[st], every_round[peer]
                c_steady = statistics.median(x["steady"] for x in cs)
                p_steady = statistics.median(x["steady"] for x in ps)
                c_wall = statistics.median(x["wall"] for x in cs)
                p_wall = statistics.median(x["wall"] for x in ps)
                print(f"\ncluster vs local pool, {peer[0]} workers each, medians of {len(cs)} rounds: throughput "
                      f"{c_steady / p_steady:.2f}x steady ({c_steady:.2f} vs {p_steady:.2f} files/s), {p_wall / c_wall:.2f}x wall; "
                      "per round (steady): " + ", ".join(f"{c['steady'] / p['steady']:.2f}x" for c, p in zip(cs, ps)))
    finally:
        for cluster, _address in clusters.values():
            cluster.close()
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
