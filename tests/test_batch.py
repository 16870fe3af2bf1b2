"""Tests of rawdev.batch and ``rawdev batch``: input discovery, output planning, the isolated worker pool
(crash, hang, out of memory, thread caps), resume, JSON lines, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import run_cli

from rawdev.batch import (
    Job,
    default_threads,
    find_inputs,
    parse_memory,
    plan_jobs,
    remove_stale_temporaries,
    run_batch,
)
from rawdev.cli import app
from rawdev.errors import UsageError
from rawdev.pipeline import PipelineConfig
from rawdev.synthetic import write_dng

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the workers import this module by name for the fault-injection task
    sys.path.insert(0, str(HERE))
FAULTS = f"{Path(__file__).stem}:fault_task"


def make_dng(path: Path, h: int = 48, w: int = 64, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_dng(path, np.random.default_rng(seed).random((h, w, 3)) * 0.6)


def rawdev_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "rawdev", *args], capture_output=True, text=True, timeout=timeout, env=env)


def fault_task(task: dict) -> dict:
    """A task function for the workers that misbehaves on purpose, chosen by the file name."""
    from rawdev.batch import develop_task

    name = Path(task["src"]).name
    if name.startswith("crash"):
        import ctypes

        ctypes.string_at(0)  # SIGSEGV: a native crash, not an exception
    if name.startswith("hang"):
        time.sleep(3600)
    if name.startswith("oom"):
        hog = bytearray(64 << 30)  # 64 GiB: more than any --max-memory
        return {"status": "developed", "notices": [str(len(hog))]}
    if name.startswith("exit"):
        os._exit(3)
    if name.startswith("threads"):
        import torch

        env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        return {"status": "developed", "notices": [json.dumps({"env": env, "torch": torch.get_num_threads()})]}
    return develop_task(task)


# ---------------------------------------------------------------------------------------------- inputs


def test_find_inputs_recurses_case_insensitive_and_skips_hidden(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/x.DNG", "a/b/y.nef", "a/b/z.CR2", "a/notes.txt", "a/.hidden.dng", "a/b/._y.nef"):
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "a" / ".cache").mkdir()
    (tmp_path / "a" / ".cache" / "w.dng").write_bytes(b"x")
    pairs, errors = find_inputs([tmp_path / "a"])
    assert errors == []
    assert sorted(str(rel) for _, rel in pairs) == sorted(["x.DNG", os.path.join("b", "y.nef"), os.path.join("b", "z.CR2")])


def test_find_inputs_keeps_explicit_files_and_dedupes(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    d = tmp_path / "d"
    d.mkdir()
    (d / "p.dng").write_bytes(b"x")
    pairs, _ = find_inputs([f, d / "p.dng", d, f])
    assert [p.name for p, _ in pairs] == ["notes.txt", "p.dng"]  # named files are attempted; duplicates run once


def test_plan_jobs_mirrors_folders_and_refuses_collisions_and_inputs(tmp_path):
    out = tmp_path / "out"
    pairs = [(tmp_path / "in/a.dng", Path("a.dng")), (tmp_path / "in/a.NEF", Path("a.NEF")),
             (tmp_path / "in/s/b.dng", Path("s/b.dng"))]
    jobs, refused = plan_jobs(pairs, out, "jpg")
    assert [j.dst for j in jobs] == [out / "a.jpg", out / "s" / "b.jpg"]
    assert len(refused) == 1 and "same output" in refused[0].reason and refused[0].status == "failed"
    # an output that would be an input is refused
    src = tmp_path / "photo.jpg"
    src.write_bytes(b"not a raw")
    jobs, refused = plan_jobs([(src, Path("photo.jpg"))], tmp_path, "jpg")
    assert jobs == [] and "is an input" in refused[0].reason


def test_parse_memory_and_threads():
    assert parse_memory("2G") == 2 << 30
    assert parse_memory("1500M") == 1500 << 20
    assert parse_memory("512KiB") == 512 << 10
    assert parse_memory("none") is None and parse_memory("0") is None
    with pytest.raises(UsageError):
        parse_memory("lots")
    assert default_threads(1) >= 1 and default_threads(10_000) == 1


def test_remove_stale_temporaries(tmp_path):
    """Only temporaries of ``dst`` whose owner process is gone are removed: not a live process's,
    not another output's."""
    from rawdev.io.temporaries import temporary_prefix

    dst = tmp_path / "a[1].jpg"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that existed and is gone (reaped)
    stale = tmp_path / f"{temporary_prefix(dst, dead.pid)}abc123.rawdev-tmp"
    live = tmp_path / f"{temporary_prefix(dst, os.getppid())}abc123.rawdev-tmp"
    other = tmp_path / f"{temporary_prefix(tmp_path / 'b.jpg', dead.pid)}abc123.rawdev-tmp"
    for t in (stale, live, other):
        t.write_bytes(b"partial")
    assert remove_stale_temporaries(dst) == 1
    assert not stale.exists() and live.exists() and other.exists()


# --------------------------------------------------------------------------------------- isolation


def test_pool_isolates_crash_hang_oom_and_exit(tmp_path):
    """A native crash, a hang past the timeout, memory exhaustion and a dying worker each fail alone;
    the good files around them are developed."""
    names = ["good1", "crash", "hang", "oom", "exit", "good2"]
    for n in names:
        make_dng(tmp_path / "in" / f"{n}.dng")
    jobs = [Job(tmp_path / "in" / f"{n}.dng", tmp_path / "out" / f"{n}.jpg") for n in names]
    t0 = time.monotonic()
    results = {r.src.stem: r for r in run_batch(jobs, PipelineConfig(), jobs=2, timeout=6, max_memory=1 << 30, fn_ref=FAULTS)}
    elapsed = time.monotonic() - t0
    assert results["good1"].status == results["good2"].status == "developed"
    assert (tmp_path / "out/good1.jpg").is_file() and (tmp_path / "out/good2.jpg").is_file()
    assert results["crash"].status == "failed" and "SIGSEGV" in results["crash"].reason
    assert results["hang"].status == "failed" and "timed out after 6 s" in results["hang"].reason
    assert results["oom"].status == "failed" and "out of memory" in results["oom"].reason
    assert results["exit"].status == "failed" and "exit code 3" in results["exit"].reason
    for n in ("crash", "hang", "oom", "exit"):
        assert not (tmp_path / "out" / f"{n}.jpg").exists()
    assert not list((tmp_path / "out").glob(".*rawdev-tmp"))
    assert elapsed < 120


def test_workers_cap_their_threads(tmp_path):
    make_dng(tmp_path / "threads.dng")
    job = Job(tmp_path / "threads.dng", tmp_path / "out" / "threads.jpg")
    (r,) = list(run_batch([job], PipelineConfig(), jobs=1, threads=1, fn_ref=FAULTS))
    got = json.loads(r.notices[0])
    assert got == {"env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, "torch": 1}


def test_real_memory_limit_fails_the_big_file_only(tmp_path):
    make_dng(tmp_path / "in" / "small.dng")
    make_dng(tmp_path / "in" / "big.dng", h=2000, w=3000, seed=1)
    # Measured beyond the start-up footprint: ~25 MB for the small file, ~140 MB for the 6 MP one.
    # One thread: each extra thread's malloc arena would map 64 MB more.
    p = rawdev_cli("batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-j", "1", "--threads", "1",
                   "--max-memory", "60M")
    assert p.returncode == 1, p.stderr
    assert "1 developed, 1 failed, 0 skipped" in p.stdout
    assert "big.dng: out of memory" in p.stderr and "Traceback" not in p.stderr
    assert (tmp_path / "out/small.jpg").is_file() and not (tmp_path / "out/big.jpg").exists()


# ----------------------------------------------------------------------------------------------- CLI


def test_batch_cli_mirrors_tree_reports_and_resumes(tmp_path):
    src = tmp_path / "card"
    make_dng(src / "a.dng", seed=1)
    make_dng(src / "day2" / "b.DNG", seed=2)
    make_dng(src / "day2" / "deep" / "c.dng", seed=3)
    (src / "day2" / "broken.nef").write_bytes(os.urandom(3000))
    out = tmp_path / "new" / "out"  # missing folders are created
    p = run_cli("batch", str(src), "-o", str(out), "-j", "2")
    assert p.returncode == 1, p.stderr
    assert "3 developed, 1 failed, 0 skipped" in p.stdout
    assert {q.relative_to(out).as_posix() for q in out.rglob("*.jpg")} == {"a.jpg", "day2/b.jpg", "day2/deep/c.jpg"}
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("rawdev: error")]
    assert len(err) == 1 and "broken.nef" in err[0] and "Traceback" not in p.stderr
    mtime = (out / "a.jpg").stat().st_mtime_ns
    # A re-run skips what is complete; JSON lines on stdout are clean.
    p = run_cli("batch", str(src), "-o", str(out), "-j", "2", "--json")
    assert p.returncode == 1
    rows = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert sorted(r["status"] for r in rows) == ["failed", "skipped", "skipped", "skipped"]
    bad = next(r for r in rows if r["status"] == "failed")
    assert bad["input"].endswith("broken.nef") and bad["output"] is None and bad["error"]
    assert "0 developed, 1 failed, 3 skipped" in p.stderr
    assert (out / "a.jpg").stat().st_mtime_ns == mtime
    # --overwrite redoes them; --no-skip-existing makes an existing output a failure
    r = CliRunner().invoke(app, ["batch", str(src / "a.dng"), "-o", str(out), "--overwrite", "--quiet"])
    assert r.exit_code == 0 and r.stdout == "" and (out / "a.jpg").stat().st_mtime_ns != mtime
    r = CliRunner().invoke(app, ["batch", str(src / "a.dng"), "-o", str(out), "--no-skip-existing"])
    assert r.exit_code == 1 and "output exists" in r.stderr


def test_batch_cli_fail_fast(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "0bad.dng").write_bytes(b"")
    for i in range(3):
        make_dng(tmp_path / "in" / f"{i + 1}good.dng", seed=i)
    p = run_cli("batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-j", "1", "--fail-fast")
    assert p.returncode == 1
    summary = p.stdout.strip().splitlines()[-1]
    assert "1 failed" in summary and "not processed" in summary
    assert not list((tmp_path / "out").rglob("*.rawdev-tmp")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize("args, message", [
    (["--backend", "malvr"], "did you mean malvar"),
    (["--bits", "16"], "JPEG is 8-bit"),
    (["--bits", "12", "-f", "png"], "--bits must be 8, 16 or 32"),
    (["--max-memory", "lots"], "--max-memory"),
])
def test_batch_usage_errors_exit_2(tmp_path, args, message):
    make_dng(tmp_path / "a.dng")
    r = CliRunner().invoke(app, ["batch", str(tmp_path / "a.dng"), "-o", str(tmp_path / "out"), *args])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not (tmp_path / "out").exists()


def test_batch_output_must_be_a_folder(tmp_path):
    make_dng(tmp_path / "a.dng")
    (tmp_path / "file").write_text("x")
    r = CliRunner().invoke(app, ["batch", str(tmp_path / "a.dng"), "-o", str(tmp_path / "file")])
    assert r.exit_code == 2 and "must be a folder" in r.output


@pytest.mark.skipif(not (SHARED / "raw" / "canon_eos_6d_acr_lossy_linear.dng").is_file(), reason="needs ../shared/raw")
def test_batch_preview_extracts_embedded_jpeg(tmp_path):
    from PIL import Image

    make_dng(tmp_path / "nothumb.dng")  # pidng writes no preview
    p = run_cli("batch", str(SHARED / "raw" / "canon_eos_6d_acr_lossy_linear.dng"), str(SHARED / "raw" / "nikon_d1.nef"),
                   str(tmp_path / "nothumb.dng"), "-o", str(tmp_path / "out"), "--preview", "-j", "1")
    assert p.returncode == 1
    assert "2 developed, 1 failed" in p.stdout and "no embedded preview" in p.stderr
    with Image.open(tmp_path / "out" / "canon_eos_6d_acr_lossy_linear.jpg") as im:
        assert im.size == (1024, 683)
    with Image.open(tmp_path / "out" / "nikon_d1.jpg") as im:  # a bitmap preview, encoded to JPEG
        assert im.size == (160, 120)
