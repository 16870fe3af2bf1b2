"""The round trip of ``rawdev eval roundtrip`` with and without NoiseProfile, resumable, one table.

Runs the protocol of :mod:`rawdev.evaluate.roundtrip` (same DNGs: image ``i`` of a set in phase
``PHASES[i % 4]`` with camera ``i % 4``, same noise seeds, same scoring) for each photo both ways: the
DNG with its NoiseProfile tag and the same DNG without it (``--no-noise-profile``). Each score is
appended to a JSON-lines log as soon as it is measured, so a long CPU run can be stopped and resumed,
and the sets are visited image by image in turn (Kodak24 #0, McMaster #0, Kodak24 #1, ...) so a run
stopped early still covers every set equally. ``--table`` prints one markdown table: both protocols
for every back-end, with the number of images behind each cell.

    nice -n 5 python benchmarks/roundtrip_protocols.py ../shared/data/kodak24 ../shared/data/mcmaster \\
        --backends jdd,jdd-noise --log runs/rt.jsonl
    python benchmarks/roundtrip_protocols.py --table runs/rt.jsonl [--images 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _done(log: Path) -> set[tuple]:
    if not log.exists():
        return set()
    keys = set()
    for line in log.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            keys.add((r["set"], r["image"], r["noise"], r["profile"], r["backend"]))
    return keys


def run(folders: list[Path], backends: list[str], noises: list[str], log: Path, limit: int | None,
        device: str, profiles: list[bool]) -> None:
    from PIL import Image

    from rawdev.evaluate.demosaic import list_images
    from rawdev.evaluate.roundtrip import _score, make_roundtrip_dng
    from rawdev.io.raw import read_raw
    from rawdev.pipeline import PipelineConfig, develop_raw

    commit = _commit()
    done = _done(log)
    # lexicographic order within a set: image i's phase and camera depend on it (as in eval roundtrip)
    sets = [(Path(d).name, sorted(list_images(Path(d)))[:limit]) for d in folders]
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rawdev-rtp-") as tmp, log.open("a") as out:
        for i in range(max(len(files) for _, files in sets)):
            for set_name, files in sets:
                if i >= len(files):
                    continue
                f = files[i]
                photo = np.asarray(Image.open(f).convert("RGB"))
                h, w = photo.shape[0] // 2 * 2, photo.shape[1] // 2 * 2
                ref = photo[:h, :w].astype(np.float32) / 255.0
                for noise in noises:
                    for profile in profiles:
                        todo = [b for b in backends if (set_name, f.name, noise, profile, b) not in done]
                        if not todo:
                            continue
                        dng = make_roundtrip_dng(photo, i, Path(tmp) / f"{f.stem}_{noise}.dng", noise,
                                                 noise_profile=profile)
                        raw = read_raw(dng)
                        for b in todo:
                            t0 = time.perf_counter()
                            res = develop_raw(raw, PipelineConfig(backend=b, output_bits=None, device=device))
                            sec = time.perf_counter() - t0
                            p, s = _score(res.image, ref)
                            rec = {"set": set_name, "index": i, "image": f.name, "noise": noise,
                                   "profile": profile, "backend": b, "psnr": p, "ssim": s, "s": sec,
                                   "commit": commit}
                            out.write(json.dumps(rec) + "\n")
                            out.flush()
                            print(f"{set_name}/{f.name} {noise} {'profile' if profile else 'no-profile'} "
                                  f"{b}: {p:.2f} dB {s:.4f} {sec:.1f} s", flush=True)


def table(logs: list[Path], images: int | None, order: list[str] | None) -> str:
    """One markdown table: a row per (set, noise), a cell per back-end with ``profile / no profile``
    PSNR means over the images measured both ways (the count is given when it is not the full set)."""
    recs = [json.loads(line) for log in logs for line in log.read_text().splitlines() if line.strip()]
    if images is not None:
        recs = [r for r in recs if r["index"] < images]
    by = defaultdict(dict)  # (set, noise, backend) -> image -> {profile: psnr}
    for r in recs:
        by[(r["set"], r["noise"], r["backend"])].setdefault(r["image"], {})[r["profile"]] = r["psnr"]
    backends = order or sorted({k[2] for k in by})
    rows = sorted({(k[0], k[1]) for k in by}, key=lambda sn: (sn[0], ["clean", "noisy"].index(sn[1])
                                                               if sn[1] in ("clean", "noisy") else 9))
    lines = ["| data | noise | " + " | ".join(backends) + " |", "|---|---|" + "---|" * len(backends)]
    for set_name, noise in rows:
        cells = []
        for b in backends:
            both = [v for v in by.get((set_name, noise, b), {}).values() if True in v and False in v]
            if not both:
                cells.append("")
                continue
            p = np.mean([v[True] for v in both])
            q = np.mean([v[False] for v in both])
            cells.append(f"{p:.2f} / {q:.2f} ({len(both)})")
        lines.append(f"| {set_name} | {noise} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + bars(by)


def _paired(by: dict, key_a: tuple, key_b: tuple, prof_a: bool, prof_b: bool) -> tuple[float, int]:
    """Mean of a - b over the images both were measured on (PSNR, dB), and how many."""
    a, b = by.get(key_a, {}), by.get(key_b, {})
    common = [im for im in a if prof_a in a[im] and im in b and prof_b in b[im]]
    if not common:
        return float("nan"), 0
    return float(np.mean([a[im][prof_a] - b[im][prof_b] for im in common])), len(common)


def bars(by: dict) -> str:
    """The issue-14 bars on images measured both ways: jdd-noise against jdd without NoiseProfile
    (within 0.3 dB clean, >= 4 dB above noisy), and each back-end without against with profile
    (the learned ISPs within 0.5 dB; pairs that differ by under 0.005 dB are left out), and the
    learned ISPs against jdd-noise, their start."""
    out = ["| data | check | difference (dB) | images |", "|---|---|---|---|"]
    sets = sorted({k[0] for k in by})
    for s in sets:
        for noise in ("clean", "noisy"):
            d, n = _paired(by, (s, noise, "jdd-noise"), (s, noise, "jdd"), False, False)
            if n:
                out.append(f"| {s} | {noise}, no profile: jdd-noise - jdd | {d:+.2f} | {n} |")
        for b in sorted({k[2] for k in by if k[0] == s}):
            for noise in ("clean", "noisy"):
                d, n = _paired(by, (s, noise, b), (s, noise, b), False, True)
                if n and abs(d) >= 0.005:
                    out.append(f"| {s} | {noise}, {b}: no profile - profile | {d:+.2f} | {n} |")
        for b in ("pynet", "pynet-ca", "cameranet"):  # the learned ISPs against their start
            for noise in ("clean", "noisy"):
                d, n = _paired(by, (s, noise, b), (s, noise, "jdd-noise"), True, True)
                if n:
                    out.append(f"| {s} | {noise}, profile: {b} - jdd-noise | {d:+.2f} | {n} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="*", type=Path)
    ap.add_argument("--backends", default="bilinear,malvar,menon,malvar-srgb,menon-srgb,libraw,jdd,jdd-noise,jdd-fast")
    ap.add_argument("--noise", default="clean,noisy")
    ap.add_argument("--protocols", default="profile,no-profile", help="profile, no-profile or both")
    ap.add_argument("--log", type=Path, default=Path("runs/roundtrip_protocols.jsonl"))
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos of each folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--table", nargs="+", type=Path, metavar="LOG", help="print the table of these logs and exit")
    ap.add_argument("--images", type=int, default=None, help="table: only images with index below N")
    args = ap.parse_args(argv)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.table:
        print(table(args.table, args.images, None))
        return 0
    if not args.folders:
        ap.error("give the photo folders (or --table LOG)")
    profiles = [p.strip() == "profile" for p in args.protocols.split(",") if p.strip()]
    run(args.folders, names, [n.strip() for n in args.noise.split(",")], args.log, args.limit, args.device,
        profiles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
