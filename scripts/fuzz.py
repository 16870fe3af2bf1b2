#!/usr/bin/env python3
"""Seeded fuzzer of the installed ``rawdev`` command: mutated RAW files in, problems counted out.

Sources: every file in ``../shared/raw`` (real cameras; skipped with ``--no-real`` or when absent) and
DNGs generated here (Bayer RGGB/BGGR, a rotated one). Each mutant is one seeded mutation of one source:

* ``bitflip``: 1-64 random bits flipped;
* ``truncate``: the file cut at a random point;
* ``header``: 1-16 bytes overwritten with random values in the first 64 kB (headers, IFDs, tags), or
  one IFD entry's value set to a random or extreme number;
* ``duplicate``: a chunk of the file copied over another place (or inserted), and for tiled DNGs
  every tile offset pointed at the first tile (a decompression bomb).

The mutants go through ``rawdev batch`` in chunks (one worker start-up per chunk, ``--timeout`` and
``--max-memory`` set), and every ``--develop-every``-th one also through ``rawdev develop`` on its
own, each in a subprocess with a timeout. Counted as problems, each must be 0:

* ``tracebacks``: a Python traceback on stderr, or a file failed with an exception that is not a
  rawdev error (an ``IndexError`` is a bug, a ``CorruptFileError`` an answer);
* ``hangs``: a file stopped by the timeout, or a command past its own;
* ``crashes``: a worker or command killed by a signal, or an exit code other than 0/1;
* ``flat_exit_0``: an output written and reported developed whose every channel is one value;
* ``leftovers``: a temporary file, or an output for a file reported failed;
* ``inputs_changed``: a mutant whose bytes changed;
* ``chatter``: a stderr line that is not rawdev's own (``rawdev: ...``) or a multi-line error.

Usage::

    nice -n 10 python scripts/fuzz.py --count 2000 --seed 20261207 --jobs 2 --work /tmp/relfuzz --json /tmp/relfuzz/summary.json

Exit status: 0 when every problem count is 0, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_RAW = REPO.parent / "shared" / "raw"
PROBLEMS = ("tracebacks", "hangs", "crashes", "flat_exit_0", "leftovers", "inputs_changed", "chatter")
#: rawdev's own error classes (anything else reported for a file is an unexpected exception)
RAWDEV_ERRORS = {"RawdevError", "UsageError", "InputError", "UnsupportedFileError", "CorruptFileError",
                 "OutputError", "OutputExistsError", "BackendError", "UnknownBackendError", "WeightsError",
                 "WorkerCrash", "Timeout", "MemoryError"}
MUTATIONS = ("bitflip", "truncate", "header", "duplicate")


# ------------------------------------------------------------------------------------------ sources


def generated_sources(folder: Path) -> list[Path]:
    """Small DNGs made by rawdev's own writer: two Bayer phases, one rotated, one tiled scene."""
    sys.path.insert(0, str(REPO))
    from rawdev.synthetic import write_dng

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for name, kw in (("gen_rggb.dng", {}), ("gen_bggr.dng", {"pattern": "BGGR"}),
                     ("gen_rot6.dng", {"orientation": 6}), ("gen_noisy.dng", {"noise_sigma": 20.0})):
        p = folder / name
        if not p.exists():
            write_dng(p, rng.random((160, 240, 3)) * 0.7, **kw)
        out.append(p)
    return out


def real_sources() -> list[Path]:
    if not SHARED_RAW.is_dir():
        return []
    return sorted(p for p in SHARED_RAW.iterdir() if p.is_file() and p.suffix.lower() not in (".md", ".txt"))


# ---------------------------------------------------------------------------------------- mutations


def _ifd0_entries(d: bytes) -> tuple[str, list[int]]:
    """Byte order and the offsets of IFD0's 12-byte entries, for a classic TIFF (DNG, NEF, ...)."""
    if len(d) < 8 or d[:2] not in (b"II", b"MM"):
        return "<", []
    bo = "<" if d[:2] == b"II" else ">"
    off = struct.unpack_from(bo + "I", d, 4)[0]
    if off + 2 > len(d):
        return bo, []
    n = struct.unpack_from(bo + "H", d, off)[0]
    return bo, [off + 2 + 12 * i for i in range(n) if off + 2 + 12 * i + 12 <= len(d)]


def _tile_bomb(d: bytearray) -> bool:
    """Point every tile (or strip) offset of IFD0 at the first one and claim 8x the size."""
    bo, entries = _ifd0_entries(d)
    tags = {struct.unpack_from(bo + "H", d, e)[0]: e for e in entries}
    for off_tag, cnt_tag in ((0x144, 0x145), (0x111, 0x117)):
        if off_tag in tags and cnt_tag in tags and 0x100 in tags and 0x101 in tags:
            e_off, e_cnt = tags[off_tag], tags[cnt_tag]
            n_old = struct.unpack_from(bo + "I", d, e_off + 4)[0]
            first = struct.unpack_from(bo + "I", d, e_off + 8)[0]
            count = struct.unpack_from(bo + "I", d, e_cnt + 8)[0]
            if n_old > 1:  # offsets stored elsewhere: read the first of each array
                if first + 4 > len(d) or count + 4 > len(d):
                    return False
                first = struct.unpack_from(bo + "I", d, first)[0]
                count = struct.unpack_from(bo + "I", d, count)[0]
            n = max(1, n_old) * 64
            for tag_e, value in ((e_off, first), (e_cnt, count)):
                at = len(d)
                d += struct.pack(f"{bo}{n}I", *([value] * n))
                struct.pack_into(bo + "HII", d, tag_e + 2, 4, n, at)
            for tag in (0x100, 0x101):
                typ = struct.unpack_from(bo + "H", d, tags[tag] + 2)[0]
                v = struct.unpack_from(bo + ("H" if typ == 3 else "I"), d, tags[tag] + 8)[0]
                struct.pack_into(bo + ("H" if typ == 3 else "I"), d, tags[tag] + 8, min(v * 8, 65535 if typ == 3 else v * 8))
            return True
    return False


def mutate(data: bytes, rng: np.random.Generator, kind: str) -> tuple[bytes, str]:
    """One seeded mutation of ``data`` of ``kind``, and a description of it."""
    d = bytearray(data)
    n = len(d)
    if kind == "bitflip":
        k = int(rng.integers(1, 65))
        for pos in rng.integers(0, n, size=k):
            d[int(pos)] ^= 1 << int(rng.integers(0, 8))
        return bytes(d), f"{k} bit flips"
    if kind == "truncate":
        cut = int(rng.integers(0, n))
        return bytes(d[:cut]), f"truncated at {cut} of {n}"
    if kind == "header":
        bo, entries = _ifd0_entries(d)
        if entries and rng.random() < 0.5:
            e = entries[int(rng.integers(0, len(entries)))]
            tag = struct.unpack_from(bo + "H", d, e)[0]
            value = int(rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, int(rng.integers(0, 1 << 32))]))
            field = int(rng.choice([4, 8]))  # the count or the value/offset
            struct.pack_into(bo + "I", d, e + field, value)
            return bytes(d), f"IFD0 tag 0x{tag:04x} {'count' if field == 4 else 'value'} = {value}"
        k = int(rng.integers(1, 17))
        at = int(rng.integers(0, max(1, min(n - k, 65536))))
        d[at : at + k] = rng.integers(0, 256, size=k, dtype=np.uint8).tobytes()
        return bytes(d), f"{k} bytes overwritten at {at}"
    # duplicate
    if rng.random() < 0.25 and _tile_bomb(d):
        return bytes(d), "every tile offset at the first tile, size x8"
    length = int(rng.integers(1, max(2, min(n // 4, 1 << 16))))
    a = int(rng.integers(0, max(1, n - length)))
    b = int(rng.integers(0, max(1, n - length)))
    chunk = bytes(d[a : a + length])
    if rng.random() < 0.5:
        d[b : b + length] = chunk
        return bytes(d), f"{length} bytes from {a} copied over {b}"
    d[b:b] = chunk
    return bytes(d), f"{length} bytes from {a} inserted at {b}"


# ---------------------------------------------------------------------------------------- checking


def flat_image(path: Path) -> bool | None:
    """Whether every channel of the image at ``path`` holds one value (None: unreadable)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
    except Exception:  # noqa: BLE001
        return None
    flat = a.reshape(-1, 3)
    return bool(np.array_equal(flat.min(axis=0), flat.max(axis=0)))


_SUMMARY = re.compile(r"^\d+ developed, \d+ failed, \d+ skipped")  # batch's last line (stderr with --json)


def _stderr_problems(stderr: str) -> tuple[int, int]:
    """(tracebacks, chatter lines) in a command's stderr."""
    tb = int("Traceback (most recent call last)" in stderr)
    chatter = sum(1 for ln in stderr.splitlines()
                  if ln.strip() and not ln.startswith("rawdev: ") and not _SUMMARY.match(ln))
    return tb, chatter


def run_batch_chunk(cmd: list[str], files: list[Path], out: Path, timeout_s: float, env: dict) -> dict:
    """``rawdev batch`` over ``files`` into ``out``; per-file rows and the problems found."""
    out.mkdir(parents=True, exist_ok=True)
    inputs = out.parent / (out.name + "-in")
    inputs.mkdir(exist_ok=True)
    for f in files:  # a folder of links, so the batch sees exactly this chunk
        link = inputs / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    args = [*cmd, "batch", str(inputs), "-o", str(out), "-j", "1", "--threads", "1", "--timeout", str(timeout_s),
            "--max-memory", "3G", "--json", "--quiet"]
    res = {"rows": [], "problems": {k: 0 for k in PROBLEMS}, "examples": []}
    t_all = timeout_s * len(files) + 120
    try:
        p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=t_all)
    except subprocess.TimeoutExpired:
        res["problems"]["hangs"] += 1
        res["examples"].append({"problem": "hangs", "what": f"batch over {len(files)} files past {t_all:.0f} s"})
        return res
    tb, chatter = _stderr_problems(p.stderr)
    res["problems"]["tracebacks"] += tb
    res["problems"]["chatter"] += chatter
    if chatter or tb:
        res["examples"].append({"problem": "chatter/traceback", "what": p.stderr[-800:]})
    if p.returncode not in (0, 1):
        res["problems"]["crashes"] += 1
        res["examples"].append({"problem": "crashes", "what": f"batch exit {p.returncode}: {p.stderr[-300:]}"})
    for line in p.stdout.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            res["problems"]["chatter"] += 1
            continue
        res["rows"].append(row)
        name = Path(row["input"]).name
        err = row.get("error")
        if row["status"] == "failed":
            if err == "Timeout":
                res["problems"]["hangs"] += 1
                res["examples"].append({"problem": "hangs", "file": name, "what": row["reason"]})
            elif err == "WorkerCrash":
                res["problems"]["crashes"] += 1
                res["examples"].append({"problem": "crashes", "file": name, "what": row["reason"]})
            elif err not in RAWDEV_ERRORS:
                res["problems"]["tracebacks"] += 1
                res["examples"].append({"problem": "tracebacks", "file": name, "what": f"{err}: {row['reason']}"})
            stem = Path(name).stem
            if list(out.glob(f"{stem}.*")):
                res["problems"]["leftovers"] += 1
                res["examples"].append({"problem": "leftovers", "file": name, "what": "output of a failed file"})
        elif row["status"] == "developed":
            flat = flat_image(Path(row["output"]))
            if flat is None or flat:
                res["problems"]["flat_exit_0"] += 1
                res["examples"].append({"problem": "flat_exit_0", "file": name,
                                        "what": "unreadable output" if flat is None else "flat output"})
    tmps = list(out.rglob("*.rawdev-tmp"))
    res["problems"]["leftovers"] += len(tmps)
    if tmps:
        res["examples"].append({"problem": "leftovers", "what": [t.name for t in tmps][:5]})
    return res


def run_develop_one(cmd: list[str], f: Path, out: Path, timeout_s: float, env: dict) -> dict:
    """``rawdev develop f -o out/<stem>.jpg``; the problems found."""
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{f.stem}.jpg"
    res = {"problems": {k: 0 for k in PROBLEMS}, "examples": [], "rc": None}
    try:
        p = subprocess.run([*cmd, "develop", str(f), "-o", str(dst), "--quiet"], capture_output=True, text=True,
                           env=env, timeout=timeout_s + 60)
    except subprocess.TimeoutExpired:
        res["problems"]["hangs"] += 1
        res["examples"].append({"problem": "hangs", "file": f.name, "what": "develop past its timeout"})
        return res
    res["rc"] = p.returncode
    tb, chatter = _stderr_problems(p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    if p.returncode == 1 and len(lines) != 1:
        chatter += 1
    res["problems"]["tracebacks"] += tb
    res["problems"]["chatter"] += chatter
    if tb or chatter:
        res["examples"].append({"problem": "chatter/traceback", "file": f.name, "what": p.stderr[-600:]})
    if p.returncode not in (0, 1):
        res["problems"]["crashes"] += 1
        res["examples"].append({"problem": "crashes", "file": f.name, "what": f"exit {p.returncode}"})
    if p.returncode == 0:
        flat = flat_image(dst)
        if flat is None or flat:
            res["problems"]["flat_exit_0"] += 1
            res["examples"].append({"problem": "flat_exit_0", "file": f.name, "what": "develop"})
    elif dst.exists():
        res["problems"]["leftovers"] += 1
    tmps = list(out.glob(f".{dst.name}.*.rawdev-tmp"))
    res["problems"]["leftovers"] += len(tmps)
    return res


def _reason_kind(reason: str) -> str:
    """A failure reason without its file-specific details (numbers, sizes, LibRaw's own words)."""
    text = reason.split(" [LibRaw:")[0]
    text = re.sub(r"\(.*?\)", "", text)
    text = re.sub(r"\d[\d.x,]*", "N", text)
    return " ".join(text.split(":")[0].split())[:80]


# -------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200, help="mutants to make and run")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--jobs", type=int, default=2, help="commands run at once")
    ap.add_argument("--chunk", type=int, default=50, help="mutants per `rawdev batch` run")
    ap.add_argument("--develop-every", type=int, default=25, help="every N-th mutant also runs through `rawdev develop`")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds one file may take")
    ap.add_argument("--work", type=Path, default=Path("/tmp/rawdev-fuzz"))
    ap.add_argument("--json", type=Path, default=None, help="write the summary here")
    ap.add_argument("--no-real", action="store_true", help="generated DNGs only (not ../shared/raw)")
    ap.add_argument("--rawdev", default=None, help="the command to run (default: this Python's `-m rawdev`)")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    work = args.work
    if work.exists():
        shutil.rmtree(work)
    (work / "mutants").mkdir(parents=True)
    sources = ([] if args.no_real else real_sources()) + generated_sources(work / "sources")
    cmd = args.rawdev.split() if args.rawdev else [sys.executable, "-m", "rawdev"]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    mutants: list[dict] = []
    blobs = {s: s.read_bytes() for s in sources}
    for i in range(args.count):
        rng = np.random.default_rng([args.seed, i])
        src = sources[i % len(sources)]
        kind = MUTATIONS[(i // len(sources)) % len(MUTATIONS)]
        data, what = mutate(blobs[src], rng, kind)
        f = work / "mutants" / f"m{i:05d}{src.suffix.lower()}"
        f.write_bytes(data)
        mutants.append({"file": f, "source": src.name, "mutation": kind, "what": what,
                        "sha256": hashlib.sha256(data).hexdigest()})

    problems = {k: 0 for k in PROBLEMS}
    examples: list[dict] = []
    statuses: dict[str, int] = {}
    chunks = [mutants[i : i + args.chunk] for i in range(0, len(mutants), args.chunk)]
    develop_sample = mutants[:: max(1, args.develop_every)]

    def batch_job(k_chunk):
        k, chunk = k_chunk
        return run_batch_chunk(cmd, [m["file"] for m in chunk], work / "out" / f"chunk{k:03d}", args.timeout, env)

    def develop_job(m):
        return run_develop_one(cmd, m["file"], work / "out-develop", args.timeout, env)

    by_file = {m["file"].name: m for m in mutants}
    per_mutation: dict[str, dict[str, int]] = {k: {} for k in MUTATIONS}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        batch_results = list(pool.map(batch_job, enumerate(chunks)))
        develop_results = list(pool.map(develop_job, develop_sample))
    for r in batch_results + develop_results:
        for k, v in r["problems"].items():
            problems[k] += v
        for e in r["examples"]:
            if "file" in e and e["file"] in by_file:
                m = by_file[e["file"]]
                e = {**e, "source": m["source"], "mutation": m["what"]}
            examples.append(e)
    reasons: dict[str, int] = {}
    for r in batch_results:
        for row in r["rows"]:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
            if row["status"] == "failed":
                key = _reason_kind(row.get("reason") or "")
                reasons[key] = reasons.get(key, 0) + 1
            m = by_file.get(Path(row["input"]).name)
            if m is not None:
                pm = per_mutation[m["mutation"]]
                pm[row["status"]] = pm.get(row["status"], 0) + 1
    reported = sum(statuses.values())
    if reported != len(mutants):
        problems["crashes"] += len(mutants) - reported
        examples.append({"problem": "crashes", "what": f"batch reported {reported} of {len(mutants)} files"})
    for m in mutants:
        if hashlib.sha256(m["file"].read_bytes()).hexdigest() != m["sha256"]:
            problems["inputs_changed"] += 1
    develop_rc: dict[str, int] = {}
    for r in develop_results:
        develop_rc[str(r["rc"])] = develop_rc.get(str(r["rc"]), 0) + 1

    summary = {
        "command": " ".join(["python", "scripts/fuzz.py", *(argv if argv is not None else sys.argv[1:])]),
        "seed": args.seed,
        "mutants": len(mutants),
        "sources": [s.name for s in sources],
        "batch_statuses": statuses,
        "per_mutation": per_mutation,
        "failure_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "develop_runs": len(develop_results),
        "develop_exit_codes": develop_rc,
        **problems,
        "problems_total": sum(problems.values()),
        "examples": examples[:50],
        "seconds": round(time.monotonic() - t0, 1),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{len(mutants)} mutants of {len(sources)} sources in {summary['seconds']} s: "
          + ", ".join(f"{k} {v}" for k, v in statuses.items()))
    print("problems: " + ", ".join(f"{k} {problems[k]}" for k in PROBLEMS))
    for e in examples[:10]:
        print(f"  {e}")
    return 0 if summary["problems_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
