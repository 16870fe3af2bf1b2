"""``kill -9`` of a running batch: no partial file at any final output path, no orphaned workers, and a
re-run completes the rest without redoing what is complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rawdev.synthetic import write_dng

REPO = Path(__file__).resolve().parents[1]
N_FILES = 10


def _session_members(sid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6 of stat: the session id
            pids.append(int(d.name))
    return pids


def _complete(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return im.size == (800, 600)
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_9_mid_batch_then_resume(tmp_path):
    rng = np.random.default_rng(7)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(N_FILES):
        write_dng(src / f"f{i:02d}.dng", rng.random((600, 800, 3)) * 0.6)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # PNG outputs (zlib) take a while to write: a fair chance of killing during a write.
    cmd = [sys.executable, "-m", "rawdev", "batch", str(src), "-o", str(out), "-f", "png", "-j", "2", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = list(out.glob("*.png")) if out.exists() else []
        if len(done) >= 2 or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be killed; make the test files bigger"
    os.kill(proc.pid, signal.SIGKILL)  # the supervisor only: its workers must not outlive it
    proc.communicate(timeout=30)
    t0 = time.monotonic()
    while _session_members(proc.pid) and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert _session_members(proc.pid) == [], "workers outlived the killed batch"

    finals = sorted(out.glob("*.png"))
    assert 0 < len(finals) < N_FILES
    for f in finals:
        assert _complete(f), f"partial file at a final path: {f}"

    # The re-run finishes the rest, skips what is complete, and cleans up temporaries.
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(ln) for ln in p.stdout.splitlines()]
    skipped = {Path(r["output"]).name for r in rows if r["status"] == "skipped"}
    developed = {Path(r["output"]).name for r in rows if r["status"] == "developed"}
    assert skipped == {f.name for f in finals}
    assert len(skipped) + len(developed) == N_FILES
    assert all(_complete(out / f"f{i:02d}.png") for i in range(N_FILES))
    assert not list(out.glob(".*rawdev-tmp")), "temporary files of the killed run are removed"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_cleanly_with_exit_130(tmp_path):
    rng = np.random.default_rng(8)
    src = tmp_path / "in"
    src.mkdir()
    # enough work that the batch cannot finish between the first output and the signal (0.4 s a
    # file on 2 cores: 8 files once finished inside that window in a loaded full-suite run)
    for i in range(24):
        write_dng(src / f"g{i}.dng", rng.random((600, 800, 3)) * 0.6)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rawdev", "batch", str(src), "-o", str(out), "-f", "png", "-j", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), start_new_session=True,
                            # a terminal's Ctrl-C reaches a program whose SIGINT is not ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not (out.exists() and list(out.glob("*.png"))):
        time.sleep(0.05)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets SIGINT
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "(interrupted)" in stdout and "Traceback" not in stderr
    assert not list(out.glob(".*rawdev-tmp"))
    assert all(_complete(f) for f in out.glob("*.png"))
    t0 = time.monotonic()
    while _session_members(proc.pid) and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert _session_members(proc.pid) == []
