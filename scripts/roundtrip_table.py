"""Markdown tables of `rawdev eval roundtrip --json` results (docs/benchmarks.md, model cards).

    python scripts/roundtrip_table.py runs/v4/roundtrip_a.json runs/v4/roundtrip_b.json \
        [--reference libraw] [--base menon-srgb]

Several JSON files are merged (the protocol is deterministic per image, so runs of different
back-ends share it). Prints the PSNR / SSIM table, then each back-end's margin over the reference
(LibRaw's AHD by default) and, with ``--base``, over the learned ISPs' classical start.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _axes(ev: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """Back-ends and (dataset, noise) rows of merged results, in first-seen order."""
    methods: list[str] = []
    rows: list[tuple[str, str]] = []
    for k in ev:
        d, n, m = k.split("|")
        if m not in methods:
            methods.append(m)
        if (d, n) not in rows:
            rows.append((d, n))
    return methods, rows


def psnr_ssim_table(ev: dict) -> list[str]:
    """The markdown lines of the PSNR / SSIM table (a row per dataset and noise, a column per back-end)."""
    methods, rows = _axes(ev)
    lines = ["| data | noise | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for d, n in rows:
        cells = [f"{e['mean_psnr']:.2f} / {e['mean_ssim']:.4f}" if (e := ev.get(f"{d}|{n}|{m}")) else ""
                 for m in methods]
        lines.append(f"| {d} | {n} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("json", nargs="+", type=Path)
    ap.add_argument("--reference", default="libraw")
    ap.add_argument("--base", default=None, help="also print margins over this back-end")
    args = ap.parse_args()
    ev: dict = {}
    for p in args.json:
        ev.update(json.loads(p.read_text()))
    print("\n".join(psnr_ssim_table(ev)))
    methods, rows = _axes(ev)
    for ref in [args.reference] + ([args.base] if args.base else []):
        print(f"\nPSNR margin over `{ref}` (dB):\n")
        print("| back-end | " + " | ".join(f"{d} {n}" for d, n in rows) + " |")
        print("|---|" + "---|" * len(rows))
        for m in methods:
            if m == ref:
                continue
            cells = []
            for d, n in rows:
                a, b = ev.get(f"{d}|{n}|{m}"), ev.get(f"{d}|{n}|{ref}")
                cells.append("" if a is None or b is None else f"{a['mean_psnr'] - b['mean_psnr']:+.2f}")
            print(f"| {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
