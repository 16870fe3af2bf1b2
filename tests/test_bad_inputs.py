"""A corpus of bad inputs through ``rawdev develop`` and ``rawdev batch``: each gives one error line
naming the file and the reason, no traceback, no output file; ``batch`` goes on, exits 1 and counts
right. (anchor_tools.md 3.6: other converters exit 0, write black files, or segfault here.)"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rawdev.cli import app
from rawdev.synthetic import write_dng

REPO = Path(__file__).resolve().parents[1]


def _patch_dimensions(data: bytes, width: int, height: int) -> bytes:
    """Rewrite ImageWidth/ImageLength (and the tile size) in the first IFD of a little-endian TIFF."""
    d = bytearray(data)
    assert d[:2] == b"II"
    off = struct.unpack_from("<I", d, 4)[0]
    for i in range(struct.unpack_from("<H", d, off)[0]):
        e = off + 2 + 12 * i
        tag, typ, _cnt = struct.unpack_from("<HHI", d, e)
        value = {256: width, 257: height, 322: width, 323: height}.get(tag)
        if value is not None:
            if typ == 3:
                struct.pack_into("<HH", d, e + 8, value, 0)
            else:
                struct.pack_into("<I", d, e + 8, value)
    return bytes(d)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(folder of bad files, {file name: expected words in the reason}, a good DNG elsewhere)."""
    root = tmp_path_factory.mktemp("bad")
    good = write_dng(root / "good.dng", np.random.default_rng(0).random((48, 64, 3)) * 0.6)
    data = good.read_bytes()
    d = root / "corpus"
    d.mkdir()
    cases: dict[str, str] = {}

    def add(name: str, content: bytes, expect: str) -> None:
        (d / name).write_bytes(content)
        cases[name] = expect

    add("empty.dng", b"", "empty file")
    for n in (8, 300, len(data) // 2, len(data) - 100):
        add(f"truncated_{n}.dng", data[:n], "truncated")
    rng = np.random.default_rng(1)
    add("random.cr2", rng.bytes(100_000), "not a RAW format")
    add("noise.NEF", rng.bytes(4096), "not a RAW format")
    add("notes.arw", b"This is a text file, not a photograph.\n" * 50, "not a RAW format")
    from PIL import Image

    import io

    buf = io.BytesIO()
    Image.fromarray((rng.random((32, 48, 3)) * 255).astype(np.uint8)).save(buf, "JPEG")
    add("photo.jpg.orf", buf.getvalue(), "not a RAW format")  # an unsupported format (a JPEG)
    add("huge.dng", _patch_dimensions(data, 60000, 60000), "implausible size")
    return d, cases, good


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("rawdev: error")]


def test_develop_each_bad_input(corpus, tmp_path):
    folder, cases, _ = corpus
    runner = CliRunner()
    for name, expect in cases.items():
        out = tmp_path / f"{name}.jpg"
        r = runner.invoke(app, ["develop", str(folder / name), "-o", str(out)])
        assert r.exit_code == 1, (name, r.output)
        assert isinstance(r.exception, SystemExit), (name, r.exception)  # no traceback
        lines = _error_lines(r.output)
        assert len(lines) == 1 and name in lines[0] and expect in lines[0], (name, r.output)
        assert not out.exists() and not list(tmp_path.glob(".*rawdev-tmp")), name


def test_develop_directory_named_like_a_file(tmp_path):
    d = tmp_path / "IMG_0001.CR2"
    d.mkdir()
    r = CliRunner().invoke(app, ["develop", str(d), "-o", str(tmp_path / "x.jpg")])
    assert r.exit_code == 1 and "is a directory" in r.output and str(d) in r.output
    assert not (tmp_path / "x.jpg").exists()


def _deny(monkeypatch, path: Path) -> None:
    # Root reads any file whatever its mode (these tests run as root), so the permission check is mocked.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == path else real_access(p, mode, *a, **k))


def test_unreadable_file_is_an_input_error_naming_it(corpus, tmp_path, monkeypatch):
    from rawdev.batch import develop_task
    from rawdev.errors import InputError
    from rawdev.pipeline import PipelineConfig

    _, _, good = corpus
    _deny(monkeypatch, good)
    dst = tmp_path / "x.jpg"
    with pytest.raises(InputError, match="permission denied") as info:
        develop_task({"src": str(good), "dst": str(dst), "cfg": PipelineConfig(), "quality": 92, "overwrite": False})
    assert info.value.path == good and not dst.exists()
    # The batch command line hands such a file to a worker (a per-file failure), never a usage error.
    from rawdev.cli.batch import batch_command
    import inspect

    assert "readable=False" in inspect.getsource(batch_command).split("out_dir")[0]


def test_develop_cli_unreadable_file_exit_1(corpus, tmp_path, monkeypatch):
    _, _, good = corpus
    _deny(monkeypatch, good)
    r = CliRunner().invoke(app, ["develop", str(good), "-o", str(tmp_path / "x.jpg")])
    assert r.exit_code == 1 and "permission denied" in r.output and str(good) in r.output
    assert not (tmp_path / "x.jpg").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_batch_unreadable_file_for_real(corpus, tmp_path):
    _, _, good = corpus
    f = tmp_path / "locked.dng"
    f.write_bytes(good.read_bytes())
    f.chmod(0)
    p = subprocess.run([sys.executable, "-m", "rawdev", "batch", str(f), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert p.returncode == 1 and "permission denied" in p.stderr


def test_batch_goes_on_through_the_corpus(corpus, tmp_path):
    folder, cases, good = corpus
    (folder / "IMG_0002.DNG").mkdir(exist_ok=True)  # a folder named like a file is walked, not developed
    out = tmp_path / "out"
    p = subprocess.run(
        [sys.executable, "-m", "rawdev", "batch", str(folder), str(good), "-o", str(out), "-j", "2", "--timeout", "60"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300,
    )
    assert p.returncode == 1, p.stderr
    assert f"1 developed, {len(cases)} failed, 0 skipped" in p.stdout
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    lines = _error_lines(p.stderr)
    assert len(lines) == len(cases)
    for name, expect in cases.items():
        (line,) = [ln for ln in lines if f"/{name}: " in ln]
        assert expect in line
    # LibRaw's own chatter ("Unexpected end of file") stays out of the output streams.
    assert all(ln.startswith(("rawdev: error", "rawdev: note")) for ln in p.stderr.splitlines() if ln.strip())
    assert [q.name for q in out.rglob("*") if q.is_file()] == ["good.jpg"]
