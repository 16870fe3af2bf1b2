"""Fuzzing ``rawdev batch`` with mutated copies of RAW files (seeded, bounded in count and time).

Whatever the mutation (bit flips, overwritten ranges, truncation, deleted ranges, header fields set
to random values), the batch must finish (no hang), exit 0 or 1 (never killed by a signal, never a
usage error), report every file, and leave at every output path either nothing or a complete image.
The default run takes a few dozen mutants; ``-m slow`` runs a few hundred.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rawdev.synthetic import write_dng

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL = ["kodak_dc50.kdc", "blackmagic_pocket_cinema_camera.dng", "nikon_d1.nef"]


def _tiff_entries(data: bytes) -> list[int]:
    """Byte offsets of the value fields of IFD0's entries, for a classic TIFF (DNG, NEF); else []."""
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return []
    bo = "<" if data[:2] == b"II" else ">"
    off = struct.unpack_from(bo + "I", data, 4)[0]
    if off + 2 > len(data):
        return []
    n = struct.unpack_from(bo + "H", data, off)[0]
    return [off + 2 + 12 * i + 8 for i in range(n) if off + 2 + 12 * i + 12 <= len(data)]


def mutate(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One seeded mutation of ``data`` and a description of it."""
    d = bytearray(data)
    kind = rng.choice(["bitflip", "overwrite", "truncate", "delete", "header"])
    n = len(d)
    if kind == "bitflip":
        k = int(rng.integers(1, 64))
        for pos in rng.integers(0, n, size=k):
            d[int(pos)] ^= 1 << int(rng.integers(0, 8))
        return bytes(d), f"{k} bit flips"
    if kind == "overwrite":
        start = int(rng.integers(0, min(n, 4096))) if rng.random() < 0.5 else int(rng.integers(0, n))
        length = int(rng.integers(1, 2048))
        d[start : start + length] = rng.bytes(min(length, n - start))
        return bytes(d), f"overwrite {length} bytes at {start}"
    if kind == "truncate":
        cut = int(rng.integers(1, n))
        return bytes(d[:cut]), f"truncate at {cut}"
    if kind == "delete":
        start = int(rng.integers(0, n))
        length = int(rng.integers(1, 4096))
        del d[start : start + length]
        return bytes(d), f"delete {length} bytes at {start}"
    entries = _tiff_entries(data)
    if not entries:
        return mutate(data, rng)
    k = int(rng.integers(1, 4))
    for _ in range(k):
        pos = entries[int(rng.integers(0, len(entries)))]
        value = int(rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, int(rng.integers(0, 1 << 32)), 60000]))
        struct.pack_into("<I" if data[:2] == b"II" else ">I", d, pos, value & 0xFFFFFFFF)
    return bytes(d), f"{k} header fields randomised"


def _sources(tmp: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    src = [write_dng(tmp / "synthetic.dng", rng.random((96, 128, 3)) * 0.7)]
    src += [SHARED / "raw" / n for n in REAL if (SHARED / "raw" / n).is_file()]
    return src


def _run_fuzz(tmp_path: Path, count: int, seed: int, time_limit: float) -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # a mutated header can legitimately give a huge (garbage) image
    rng = np.random.default_rng(seed)
    sources = _sources(tmp_path)
    corpus = tmp_path / "mutants"
    corpus.mkdir()
    made: dict[str, str] = {}
    for i in range(count):
        src = sources[i % len(sources)]
        data, how = mutate(src.read_bytes(), rng)
        name = f"m{i:04d}_{src.stem}{src.suffix}"
        (corpus / name).write_bytes(data)
        made[name] = how
    before = {p.name: p.read_bytes() for p in corpus.iterdir()}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rawdev", "batch", str(corpus), "-o", str(out), "--json", "-j", "2",
           "--timeout", "30", "--max-memory", "3G"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=time_limit, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"batch did not finish {count} mutants within {time_limit} s")
    assert p.returncode in (0, 1), f"exit {p.returncode}\n{p.stderr[-3000:]}"
    assert "Traceback" not in p.stderr
    rows = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert sorted(Path(r["input"]).name for r in rows) == sorted(made), "every file is reported once"
    for r in rows:
        name = Path(r["input"]).name
        assert r["status"] in ("developed", "failed"), (name, made[name], r)
        if r["status"] == "failed":
            assert r["reason"] and "\n" not in r["reason"], (name, r)
            continue
        with Image.open(r["output"]) as im:  # a complete, decodable image of the reported size
            im.load()
            assert im.size == (r["width"], r["height"]), (name, made[name])
    outputs = {q for q in out.rglob("*") if q.is_file()} if out.exists() else set()
    assert outputs == {Path(r["output"]) for r in rows if r["status"] == "developed"}, "no stray or partial files"
    assert {p.name: p.read_bytes() for p in corpus.iterdir()} == before, "inputs are never written"


def test_mutant_fuzz_quick(tmp_path):
    _run_fuzz(tmp_path, count=24, seed=1234, time_limit=240)


@pytest.mark.slow
def test_mutant_fuzz_long(tmp_path):
    _run_fuzz(tmp_path, count=300, seed=98765, time_limit=1800)
