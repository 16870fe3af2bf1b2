"""Small commands, run in-process: ``rawdev backends`` and ``rawdev demo``."""

from __future__ import annotations

import fnmatch

from conftest import run_cli

from rawdev.backends import registry


def test_backends_pattern_and_no_match():
    r = run_cli("backends", "jdd*")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines() if line and not line[0].isspace()]
    assert names == [s.name for s in registry.list_backends() if fnmatch.fnmatch(s.name, "jdd*")]
    assert {"jdd", "jdd-noise"} <= set(names)
    r = run_cli("backends", "nosuch*")
    assert r.returncode == 2
    assert r.stderr.startswith("rawdev: error: no back-end matches 'nosuch*'") and "malvar" in r.stderr


def test_demo_develops_and_refuses_to_replace_its_outputs(tmp_path):
    import numpy as np
    from PIL import Image

    r = run_cli("demo", "--out-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    jpg = tmp_path / "rawdev-demo.jpg"
    im = Image.open(jpg)
    assert im.size == (1200, 800)
    # The demo's 18 % grey patch row (sRGB 122 in the chart) comes out neutral.
    a = np.asarray(im).astype(float)
    assert np.abs(a[..., 0].mean() - a[..., 1].mean()) < 20
    before = jpg.stat().st_mtime_ns
    r = run_cli("demo", "--out-dir", tmp_path)
    assert r.returncode != 0 and "rawdev-demo.dng" in r.stderr and "--overwrite" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert jpg.stat().st_mtime_ns == before
    r = run_cli("demo", "--out-dir", tmp_path, "--overwrite")
    assert r.returncode == 0, r.stderr


def test_bad_option_values_are_one_line_usage_errors():
    """Click's own usage errors (a value outside a choice or range, an unknown option or command)
    read like rawdev's: one line ``rawdev: error: ...`` on stderr, exit 2, no boxed panel."""
    for args, what in ((["develop", "x.dng", "--device", "tpu"], "--device"),
                       (["develop", "x.dng", "--nosuch"], "--nosuch"),
                       (["eval", "demosaic", ".", "--border", "-1"], "--border"),
                       (["nosuchcommand"], "nosuchcommand")):
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("rawdev: error: ") and what in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "╭" not in r.stderr, (args, r.stderr)


def test_flags_show_no_type_in_help():
    r = run_cli("develop", "--help")
    assert r.returncode == 0
    lines = [line for line in r.stdout.splitlines() if "--overwrite" in line or "--quiet" in line or "--help" in line]
    assert len(lines) == 3 and all("<bool>" not in line for line in lines), lines
    assert "<bool>" not in run_cli("--help").stdout + run_cli("eval", "roundtrip", "--help").stdout
    assert "<int>" in next(line for line in r.stdout.splitlines() if "--bits" in line)
