"""``rawdev batch`` on a Dask cluster (rawdev.cluster): a ``distributed.LocalCluster`` of 2 worker
processes gives the same results as the local pool; a killed worker, a native crash and a hang each
cost one file at most."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the workers import the fault-injection tasks by module name
    sys.path.insert(0, str(HERE))

from conftest import run_cli  # noqa: E402
from test_batch import FAULTS, make_dng  # noqa: E402

from rawdev.batch import Job, run_batch  # noqa: E402
from rawdev.cluster import pool_factory  # noqa: E402
from rawdev.pipeline import PipelineConfig  # noqa: E402

CLUSTER_FAULTS = f"{Path(__file__).stem}:cluster_fault_task"


def cluster_fault_task(task: dict) -> dict:
    """Fault injection for the cluster: ``slow*`` files take a second, ``killer*`` files kill the
    Dask worker that runs them (the develop process's parent); the rest as in test_batch."""
    from test_batch import fault_task

    name = Path(task["src"]).name
    if name.startswith("slow"):
        time.sleep(1.0)
    if name.startswith("killer"):
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)
    return fault_task(task)


@pytest.fixture(scope="module")
def client():
    # One task at a time per worker thread, so a dying worker takes only the file it runs; a file
    # whose worker dies twice fails (allowed-failures 1: two attempts).
    config = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(config):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                           dashboard_address=":0", silence_logs=50)
        c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _ready(client) -> None:
    client.wait_for_workers(2, timeout=60)


def _complete(path: Path) -> bool:
    with Image.open(path) as im:
        im.load()  # a truncated file raises here
    return True


def test_cluster_cli_matches_local_batch(tmp_path, client):
    _ready(client)
    src = tmp_path / "card"
    make_dng(src / "a.dng", seed=1)
    make_dng(src / "day2" / "b.DNG", seed=2)
    make_dng(src / "day2" / "deep" / "c.dng", seed=3)
    (src / "day2" / "broken.nef").write_bytes(os.urandom(3000))
    address = client.scheduler.address
    runs = {}
    for name, extra in (("local", ["-j", "2"]), ("cluster", ["--cluster", address])):
        out = tmp_path / name
        runs[name] = (run_cli("batch", str(src), "-o", str(out), "--json", *extra), out)
    for name, (p, _out) in runs.items():
        assert p.returncode == 1, (name, p.stderr)
        assert "3 developed, 1 failed, 0 skipped" in p.stderr, (name, p.stderr)
        err = [ln for ln in p.stderr.splitlines() if ln.startswith("rawdev: error")]
        assert len(err) == 1 and "broken.nef" in err[0] and "Traceback" not in p.stderr, (name, p.stderr)
    (lp, lout), (cp, cout) = runs["local"], runs["cluster"]
    assert [ln for ln in lp.stderr.splitlines() if ln.startswith("rawdev: error")] == \
        [ln for ln in cp.stderr.splitlines() if ln.startswith("rawdev: error")]

    def rows(p, out):
        return sorted((r["input"], r["status"], r["reason"], r["error"], r["backend"], r["width"], r["height"],
                       r["output"] and Path(r["output"]).relative_to(out).as_posix())
                      for r in map(json.loads, p.stdout.splitlines()))

    assert rows(lp, lout) == rows(cp, cout)
    names = {q.relative_to(lout).as_posix() for q in lout.rglob("*.jpg")}
    assert names == {q.relative_to(cout).as_posix() for q in cout.rglob("*.jpg")} == {"a.jpg", "day2/b.jpg", "day2/deep/c.jpg"}
    for n in names:
        assert np.array_equal(np.asarray(Image.open(lout / n)), np.asarray(Image.open(cout / n))), n
    assert not list(cout.rglob("*.rawdev-tmp"))


def test_cluster_crash_and_hang_fail_alone(tmp_path, client):
    _ready(client)
    names = ["good1", "crash", "hang", "good2"]
    for n in names:
        make_dng(tmp_path / "in" / f"{n}.dng")
    jobs = [Job(tmp_path / "in" / f"{n}.dng", tmp_path / "out" / f"{n}.jpg") for n in names]
    factory = pool_factory(client, PipelineConfig())
    results = {r.src.stem: r for r in run_batch(jobs, PipelineConfig(), timeout=4, fn_ref=FAULTS, pool_factory=factory)}
    assert results["good1"].status == results["good2"].status == "developed"
    assert _complete(tmp_path / "out/good1.jpg") and _complete(tmp_path / "out/good2.jpg")
    assert results["crash"].status == "failed" and "SIGSEGV" in results["crash"].reason
    assert results["hang"].status == "failed" and "timed out after 4 s" in results["hang"].reason
    assert not (tmp_path / "out/crash.jpg").exists() and not (tmp_path / "out/hang.jpg").exists()
    assert not list((tmp_path / "out").glob(".*rawdev-tmp"))
    assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2  # the Dask workers lived on


def test_cluster_worker_killed_mid_batch(tmp_path, client):
    """SIGKILL of a Dask worker while it develops: its file goes to another worker, no final path
    holds a partial file, every file ends developed or failed, and a re-run completes the rest."""
    _ready(client)
    names = [f"slow{i}" for i in range(6)]
    for i, n in enumerate(names):
        make_dng(tmp_path / "in" / f"{n}.dng", seed=i)
    jobs = [Job(tmp_path / "in" / f"{n}.dng", tmp_path / "out" / f"{n}.png") for n in names]
    pids = list(client.run(os.getpid).values())
    factory = pool_factory(client, PipelineConfig())
    results = []
    for r in run_batch(jobs, PipelineConfig(), timeout=60, fn_ref=CLUSTER_FAULTS, pool_factory=factory):
        results.append(r)
        if len(results) == 1:
            os.kill(pids[0], signal.SIGKILL)
    assert len(results) == len(names)
    # "skipped": completed by an attempt on the killed worker before Dask lost its result and ran it again
    assert all(r.status in ("developed", "failed", "skipped") for r in results), [(r.src.name, r.status, r.reason) for r in results]
    for p in (tmp_path / "out").glob("*.png"):
        assert _complete(p), p
    _ready(client)
    again = list(run_batch(jobs, PipelineConfig(), timeout=60, fn_ref=CLUSTER_FAULTS, pool_factory=pool_factory(client, PipelineConfig())))
    failed_before = {r.src for r in results if r.status == "failed"}
    assert {r.src for r in again if r.status == "developed"} == failed_before
    assert all(r.status == "skipped" for r in again if r.src not in failed_before)
    assert all(_complete(tmp_path / "out" / f"{n}.png") for n in names)
    assert not list((tmp_path / "out").glob(".*rawdev-tmp"))


def _busy_files() -> int:
    from rawdev import cluster

    with cluster._lock:
        return sum(len(pools) for pools in cluster._running.values())


def test_cluster_interrupt_stops_running_files(tmp_path, client):
    """What Ctrl-C does (the CLI closes the results on KeyboardInterrupt): tasks not started are
    cancelled, files being developed are stopped on the workers, nothing partial is left."""
    _ready(client)
    names = ["good", "hang1", "hang2", "hang3"]
    for n in names:
        make_dng(tmp_path / "in" / f"{n}.dng")
    jobs = [Job(tmp_path / "in" / f"{n}.dng", tmp_path / "out" / f"{n}.jpg") for n in names]
    results = run_batch(jobs, PipelineConfig(), timeout=600, fn_ref=FAULTS, pool_factory=pool_factory(client, PipelineConfig()))
    first = next(results)
    assert first.src.stem == "good" and first.status == "developed"
    t0 = time.monotonic()
    results.close()
    assert time.monotonic() - t0 < 30
    assert sum(client.run(_busy_files).values()) == 0  # no file is being developed any more
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.jpg"]


def test_cluster_python_entry_point(tmp_path, client):
    import rawdev.batch

    _ready(client)
    make_dng(tmp_path / "in" / "a.dng")
    (tmp_path / "in" / "bad.dng").write_bytes(b"")
    seen = []
    done = rawdev.batch.run([tmp_path / "in"], tmp_path / "out", client=client, fmt="png", on_result=seen.append)
    assert sorted(r.status for r in done.results) == ["developed", "failed"] and len(seen) == 2
    assert done.summary.line() == "1 developed, 1 failed, 0 skipped" and done.summary.exit_code == 1
    assert _complete(tmp_path / "out" / "a.png")
    again = rawdev.batch.run([tmp_path / "in"], tmp_path / "out", client=client, fmt="png")
    assert again.summary.line() == "0 developed, 1 failed, 1 skipped"


def test_cluster_cli_unreachable_scheduler_is_one_line(tmp_path):
    make_dng(tmp_path / "a.dng")
    p = run_cli("batch", str(tmp_path / "a.dng"), "-o", str(tmp_path / "out"), "--scheduler-file", str(tmp_path / "none.json"))
    assert p.returncode == 1 and "no scheduler file" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "out").exists()


def test_cluster_file_that_kills_its_workers_fails_after_bounded_attempts(tmp_path, client):
    _ready(client)
    for n in ("killer", "good"):
        make_dng(tmp_path / "in" / f"{n}.dng")
    jobs = [Job(tmp_path / "in" / f"{n}.dng", tmp_path / "out" / f"{n}.jpg") for n in ("killer", "good")]
    results = {r.src.stem: r for r in run_batch(jobs, PipelineConfig(), timeout=60, fn_ref=CLUSTER_FAULTS,
                                                  pool_factory=pool_factory(client, PipelineConfig()))}
    # "skipped": developed by an attempt on a worker that the killer file then killed before the
    # result was collected (Dask runs such a task again; the output is complete)
    assert results["good"].status in ("developed", "skipped"), results["good"].reason
    assert _complete(tmp_path / "out/good.jpg")
    assert results["killer"].status == "failed" and "worker died" in results["killer"].reason
    assert "2 times" in results["killer"].reason and results["killer"].error == "WorkerCrash"
    assert not (tmp_path / "out/killer.jpg").exists()


def test_kept_runners_are_built_once():
    from rawdev import pipeline
    from rawdev.backends import registry
    import torch

    spec = registry.get("jdd")
    pipeline.keep_runners()
    try:
        first = pipeline._runner(spec, torch.device("cpu"), 256)
        assert pipeline._runner(spec, torch.device("cpu"), 256) is first  # weights read once
        assert pipeline._runner(spec, torch.device("cpu"), 128) is not first
    finally:
        pipeline.keep_runners(False)
    assert pipeline._runner(spec, torch.device("cpu"), 256) is not first


class _FakeClient:
    """Just what gpu_resources reads: the scheduler's list of workers and their resources."""

    def __init__(self, *resources: dict) -> None:
        self.workers = {f"tcp://10.0.0.{i}:4000": {"nthreads": 1, "resources": r} for i, r in enumerate(resources)}

    def scheduler_info(self, n_workers: int = 5) -> dict:
        return {"workers": self.workers}


def test_gpu_resource_for_learned_backends_only():
    from rawdev.cluster import gpu_resources
    from rawdev.errors import UsageError

    gpu = _FakeClient({}, {"GPU": 1})
    cpu_only = _FakeClient({}, {})
    assert gpu_resources(gpu, PipelineConfig(backend="jdd")) == {"GPU": 1}
    assert gpu_resources(gpu, PipelineConfig(backend="jdd", device="cpu")) is None
    assert gpu_resources(gpu, PipelineConfig(backend="malvar")) is None  # classical: any worker
    assert gpu_resources(gpu, None) is None  # --preview
    assert gpu_resources(cpu_only, PipelineConfig(backend="jdd")) is None  # auto: the CPUs then
    with pytest.raises(UsageError, match="no worker of the cluster offers a GPU"):
        gpu_resources(cpu_only, PipelineConfig(backend="jdd", device="cuda"))


def test_tasks_carry_absolute_paths(tmp_path, monkeypatch):
    from rawdev.cluster import _for_workers
    from rawdev.config import PipelineConfig as Config

    monkeypatch.chdir(tmp_path)
    task = _for_workers({"src": "in/a.dng", "dst": "out/a.jpg", "cfg": Config(look="looks/d1.json"), "quality": 92})
    assert task["src"] == str(tmp_path / "in/a.dng") and task["dst"] == str(tmp_path / "out/a.jpg")
    assert task["cfg"].look == str(tmp_path / "looks/d1.json") and task["quality"] == 92
    assert _for_workers({"src": "a", "dst": "b", "cfg": Config(look="camera")})["cfg"].look == "camera"
    assert _for_workers({"src": "a", "dst": "b", "cfg": None})["cfg"] is None  # --preview


def test_abort_while_the_pool_is_being_made_stops_the_file(monkeypatch, tmp_path):
    """The interrupt reaches a worker after the task's first check and before its pool is registered
    (making a pool starts a process, so the window is wide under load): the task must see the abort
    instead of developing the file to the end. Found by test_cluster_interrupt_stops_running_files
    failing under load, whose next test then waited 598 s for the hang to time out."""
    from rawdev import cluster

    ran = []

    class Pool:
        def run(self, tasks):
            ran.extend(tasks)
            return iter([(0, {"status": "developed", "reason": "", "error": None})])

    batch_id = "rawdev-test-abort-race"

    def pool_for(opts):
        assert cluster._abort_batch(batch_id, wait_s=0) == 0  # nothing registered yet to stop
        return Pool()

    monkeypatch.setattr(cluster, "_pool_for", pool_for)
    monkeypatch.setattr(cluster, "_drop_pool", lambda: None)
    try:
        got = cluster.develop_on_worker({"dst": str(tmp_path / "x.jpg")}, None, batch_id)
    finally:
        cluster._aborted.discard(batch_id)
    assert got["status"] == "not-processed" and not ran
    assert batch_id not in cluster._running
