"""Write the model card of a trained learned ISP from its run folder and an evaluation JSON.

    python scripts/isp_model_card.py cameranet --run-dir runs/v3/cameranet --history runs/cameranet \
        --eval runs/v3/roundtrip_all.json --machine "2-core CPU (this project's CI machine class)" \
        > weights/cameranet.md

``--history`` names the runs the weights were continued from (``rawdev train ... --init``), oldest
first: their stages are listed and counted too.

The figures come from the files; the prose around them is the same for the three ISPs (the recipe
is :mod:`rawdev.train.isp`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from roundtrip_table import psnr_ssim_table

FILES = {"pynet": "pynet.safetensors", "pynet-ca": "pynet_ca.safetensors", "cameranet": "cameranet.safetensors"}
REFS = {
    "pynet": "A. Ignatov, L. Van Gool, R. Timofte. Replacing Mobile Camera ISP with a Single Deep Learning Model. CVPR-W 2020.",
    "pynet-ca": "B.-H. Kim, J. Song, J. C. Ye, J. Baek. PyNET-CA: Enhanced PyNET with Channel Attention for End-to-End "
                "Mobile Image Signal Processing. ECCV-W (AIM) 2020.",
    "cameranet": "Z. Liang, J. Cai, Z. Cao, L. Zhang. CameraNet: A Two-Stage Framework for Effective Camera ISP Learning. "
                 "IEEE TIP 30, 2021.",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=sorted(FILES))
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True, help="JSON written by `rawdev eval roundtrip --json`")
    ap.add_argument("--machine", required=True)
    ap.add_argument("--command", default="")
    ap.add_argument("--history", type=Path, action="append", default=[],
                    help="run folder the weights were continued from (--init), oldest first; repeatable")
    ap.add_argument("--previous-card", type=Path,
                    help="the card of the weights this run continued from (--init), when their run folders are "
                         "gone: its stage rows are carried over and counted")
    args = ap.parse_args()
    weights = Path(__file__).resolve().parents[1] / "weights" / FILES[args.kind]
    summary = json.loads((args.run_dir / "summary.json").read_text())
    ev = json.loads(args.eval.read_text())
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    r = summary["recipe"]
    runs = [json.loads((d / "summary.json").read_text()) for d in args.history] + [summary]
    names = [str(d) for d in args.history] + [str(args.run_dir)]
    stages = [dict(st, run=name, base=run["recipe"].get("base", "bilinear"), batch=run["recipe"]["batch"])
              for name, run in zip(names, runs) for st in run["stages"]]
    if args.previous_card:
        stages = _card_stages(args.previous_card) + stages
    wall = sum(s["wall_s"] for s in stages)
    steps = sum(s["steps"] for s in stages)
    samples = sum(s["steps"] * s["batch"] for s in stages)
    out = []
    out.append(f"# `{args.kind}` weights: `weights/{FILES[args.kind]}`\n")
    out.append("| | |\n|---|---|")
    out.append(f"| architecture | {REFS[args.kind]} Reduced configuration, in rawdev's camera-independent frame "
               "(`rawdev/models/isp_frame.py`, docs/learned_isp.md) |")
    cfg = f"width {r['width']}, residual over the `{r.get('base', 'bilinear')}` demosaic"
    if args.kind != "cameranet":
        cfg += f", kernels `{r['kernels']}` (k x k branches as dilated 3x3), instance norm {'on' if r.get('instance_norm') else 'off'}"
        cfg += ", channel attention on, sub-pixel head" if args.kind == "pynet-ca" else ", no channel attention, up-sampling head"
    else:
        cfg += f", padding `{r['padding_mode']}`, Restore-Net + Enhance-Net (dilations 1, 2, 2, 4, 8, global FiLM)"
    out.append(f"| configuration | {cfg} |")
    out.append(f"| parameters | {summary['params']:,} |")
    out.append(f"| sha256 | `{sha}` |")
    out.append("| input | normalised, white-balanced mosaic (RGGB-aligned, packed) + 4 noise-std planes; the file's camera -> sRGB matrix as a fixed layer |")
    out.append("| output | display sRGB (neutral look: sRGB curve, no tone curve) |")
    out.append(f"| trained by | `{args.command or 'rawdev train ' + args.kind}` |")
    out.append(f"| machine | {args.machine} |")
    out.append(f"| steps | {steps:,} of {r['patch']} x {r['patch']} px patches ({samples:,} samples) in "
               f"{len({s['run'] for s in stages})} run(s); wall time {wall / 60:.0f} min |")
    out.append("| licence | MIT (this project) |\n")
    out.append("## Data and synthesis\n")
    out.append(f"{summary['train_photos']} training tiles from `../shared/train` (cbsd432, wikipedia_photos, "
               "imagecompression_info), packed by `scripts/make_devdata.py` into `.devdata/train_patches.npz` "
               "(as for `weights/jdd_noise.md`). Kodak24 and McMaster18 were never used. Per sample "
               "(`rawdev/train/isp.py`): random crop and symmetry, sRGB EOTF, random camera matrix (convex mix of "
               "four real cameras' XYZ -> camera matrices, Brooks et al. 2019), division by random white-balance "
               "gains (red U(1.9, 2.4), blue U(1.5, 1.9)), clip at 1, RGGB mosaic, Brooks et al.'s shot + read "
               f"noise on {round(100 * r['p_noise'])} % of samples, gains multiplied back and clipped at 1. Target: "
               "the photo. Loss: L1 on the display image"
               + (" (the joint stages since `runs/v4` add the Restore-Net's own L1, `rawdev.train.isp.isp_loss`)"
                  if args.kind == "cameranet" else "") + ".\n")
    out.append("## Stages\n")
    out.append("| run | base | stage | steps | batch | last logged loss (L1) | wall time (min) |\n"
               "|---|---|---|---|---|---|---|")
    for s in stages:
        if s.get("carried"):
            name, loss = s["name"], s["loss"]
        else:
            name = {1: "Restore-Net alone", 0: "joint"}[s["level"]] if args.kind == "cameranet" else f"level {s['level']}"
            loss = "" if s["last_loss"] is None else f"{s['last_loss']:.4f}"
        out.append(f"| `{s['run']}` | {s['base']} | {name} | {s['steps']} | {s['batch']} | {loss} | "
                   f"{s['wall_s'] / 60:.1f} |")
    out.append("")
    out.append("## Measured quality (`rawdev eval roundtrip`, docs/benchmarks.md)\n")
    out.append("PSNR (dB) / SSIM against the photo, mean over images, all four CFA phases and four camera "
               "matrices in turn:\n")
    out.extend(psnr_ssim_table(ev))
    print("\n".join(out))


def _card_stages(card: Path) -> list[dict]:
    """The rows of an earlier card's "Stages" table (run, base, stage, steps, batch, loss, minutes)."""
    rows, inside = [], False
    for line in card.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Stages"
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if inside and len(cells) == 7 and cells[0].startswith("`"):
            rows.append({"carried": True, "run": cells[0].strip("`"), "base": cells[1], "name": cells[2],
                         "steps": int(cells[3]), "batch": int(cells[4]), "loss": cells[5],
                         "wall_s": float(cells[6]) * 60})
    return rows


if __name__ == "__main__":
    main()
