"""Small commands, run in-process: ``rawdev backends`` and ``rawdev demo``."""

from __future__ import annotations

from conftest import run_cli


def test_backends_pattern_and_no_match():
    r = run_cli("backends", "jdd*")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines() if line and not line[0].isspace()]
    assert names == ["jdd", "jdd-noise"]
    r = run_cli("backends", "nosuch*")
    assert r.returncode == 2
    assert r.stderr.startswith("rawdev: error: no back-end matches 'nosuch*'") and "malvar" in r.stderr


def test_demo_refuses_to_replace_its_outputs(tmp_path):
    r = run_cli("demo", "--out-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    jpg = tmp_path / "rawdev-demo.jpg"
    before = jpg.stat().st_mtime_ns
    r = run_cli("demo", "--out-dir", tmp_path)
    assert r.returncode != 0 and "rawdev-demo.dng" in r.stderr and "--overwrite" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert jpg.stat().st_mtime_ns == before
    r = run_cli("demo", "--out-dir", tmp_path, "--overwrite")
    assert r.returncode == 0, r.stderr
