"""Start-up of the ``rawdev`` command: wall time of the light commands, and of a classical develop up
to its first pixel work, each in a fresh process as a user runs it.

Rows (median of ``--repeat`` fresh processes, interleaved so load drift hits all alike):

* ``python -c pass``: the interpreter alone (the floor every command pays);
* ``python -c "import numpy, rawpy"``: the floor of a develop's first pixel work (the decoder loaded);
* ``python -c "import torch"``: what a command that needs torch pays on top of it;
* ``rawdev --help``, ``rawdev backends``, ``rawdev info FILE``, a usage error (unknown back-end);
* ``develop: first pixel work``: from just before the process is spawned to the moment LibRaw starts
  decoding the file (``read_raw`` is entered), in ``rawdev develop FILE`` with the default back-end;
* ``develop: whole``: the same develop to its exit (a JPEG, quality 92); beside it, how long the
  develop waited, once LibRaw had decoded the file, for the pipeline (and torch) being imported on
  the second thread: what a classical develop pays for torch that the decode does not hide.

Each row also says whether torch was imported by the end of the process.

    python benchmarks/bench_startup.py [--repeat 5] [--dng FILE] [--info FILE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The CLI run in a fresh interpreter; reports when read_raw was entered and whether torch got imported.
PROBE = r"""
import json, sys, time
args = json.loads(sys.argv[1])
first, decoded, ready = [], [], []
if args and args[0] == "develop":
    import rawdev.cli._startup as _st
    import rawdev.io.raw as _raw
    _read, _result = _raw.read_raw, _st.BackgroundImport.result
    def read_raw(*a, **k):
        first.append(time.time())
        out = _read(*a, **k)
        decoded.append(time.time())
        return out
    def result(self):
        out = _result(self)
        ready.append(time.time())
        return out
    _raw.read_raw, _st.BackgroundImport.result = read_raw, result
sys.argv = ["rawdev"] + args
from rawdev.cli import main
code = 0
try:
    main()
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
wait = ready[0] - decoded[0] if ready and decoded else None
sys.stderr.write("\nPROBE=" + json.dumps({"first": first[0] if first else None, "wait": wait,
                                          "torch": "torch" in sys.modules, "code": code}) + "\n")
"""


def timed(cmd: list[str]) -> dict:
    """Wall time of ``cmd`` from just before the spawn to its exit, and what the probe reported."""
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    t1 = time.time()
    rep = {}
    for line in out.stderr.splitlines():
        if line.startswith("PROBE="):
            rep = json.loads(line[len("PROBE="):])
    first = rep.get("first")
    return {"wall": t1 - t0, "first": None if first is None else first - t0, "wait": rep.get("wait"),
            "torch": rep.get("torch"), "code": rep.get("code", out.returncode)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dng", type=Path, help="a RAW file for info/develop (default: a 24 MP synthetic DNG)")
    ap.add_argument("--mp", type=float, default=24.0)
    ap.add_argument("--info", type=Path, nargs="*", default=[], help="more files to time `rawdev info` on")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = args.dng
        if src is None:
            src = tmp / "bench.dng"
            subprocess.run([py, str(Path(__file__).with_name("bench_develop.py")), "--make-dng", str(src),
                            "--mp", str(args.mp)], check=True)
        probe = lambda *a: [py, "-c", PROBE, json.dumps(list(a))]  # noqa: E731
        from rawdev.backends.registry import DEFAULT_BACKEND

        rows = {
            "python -c pass": [py, "-c", "pass"],
            "python -c 'import numpy, rawpy'": [py, "-c", "import numpy, rawpy"],
            "python -c 'import torch'": [py, "-c", "import torch"],
            "rawdev --help": probe("--help"),
            "rawdev backends": probe("backends"),
            f"rawdev info {src.name}": probe("info", str(src)),
            **{f"rawdev info {f.name}": probe("info", str(f)) for f in args.info},
            "rawdev develop -b nope (usage error)": probe("develop", str(src), "-b", "nope"),
            f"rawdev develop ({DEFAULT_BACKEND}, the default) to JPEG": probe(
                "develop", str(src), "-o", str(tmp / "out.jpg"), "--overwrite", "--quiet"),
            "rawdev develop -b malvar (torch) to JPEG": probe("develop", str(src), "-o", str(tmp / "out.jpg"),
                                                               "--overwrite", "--quiet", "-b", "malvar"),
        }
        res: dict[str, list[dict]] = {k: [] for k in rows}
        for _ in range(args.repeat):
            for name, cmd in rows.items():
                res[name].append(timed(cmd))
    print(f"\nStart-up, fresh processes, median of {args.repeat} ({os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f} at the end)\n")
    print("| command | wall time (s) | first pixel work at (s) | waits for torch after decoding (s) | torch imported |")
    print("|---|---|---|---|---|")
    for name, rs in res.items():
        wall = statistics.median(r["wall"] for r in rs)
        firsts = [r["first"] for r in rs if r["first"] is not None]
        first = f"{statistics.median(firsts):.2f}" if firsts else "-"
        waits = [r["wait"] for r in rs if r["wait"] is not None]
        wait = f"{statistics.median(waits):.2f}" if waits else "-"
        torch_ = {r["torch"] for r in rs}
        t = "-" if torch_ == {None} else ("yes" if True in torch_ else "no")
        print(f"| {name} | {wall:.2f} | {first} | {wait} | {t} |")


if __name__ == "__main__":
    main()
