"""Build ``.devdata/``: the training pack that travels to a GPU machine (which has no shared folder).

Writes (the folder is git-ignored; name it in the device tool's ``carry``):

* ``.devdata/train_patches.npz``: equal-sized 160x240 uint8 tiles, WebP-lossless, with a train/val split
  (:func:`rawdev.train.data.write_pack`);
* ``.devdata/bayer.pth``: a copy of demosaicnet's packaged noise-free weights (the GPU machine lacks the
  package), the starting point of ``jdd-noise``.

Tiles (landscape, 160 rows x 240 columns; a portrait source is transposed first, a symmetry the training
sampler applies at random anyway):

* ``cbsd432/``: every photo, box-downscaled by 2 (481x321 -> 240x160, removing the JPEG 4:2:0 chroma);
* ``wikipedia_photos/`` and ``imagecompression_info/``: a grid of non-overlapping tiles per photo; the
  kept ones are the "hardest" for demosaicking (largest bilinear-demosaic error, after Gharbi2016's
  hard-patch mining) plus random others, until the byte budget is met.

A few whole photos of each folder (chosen by the seed) go to the ``val`` split only.
Kodak24, McMaster and CBSD68 are never read: they are the held-out test sets.

    python scripts/make_devdata.py --train ../shared/train --budget-mib 42
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rawdev.train.data import encode_tile, find_photos, load_photo, write_pack  # noqa: E402
from rawdev.train.jdd import locate_pretrained  # noqa: E402

TILE_H, TILE_W = 160, 240


def _landscape(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2) if x.shape[1] > x.shape[2] else x


def _bilinear_error(tiles: torch.Tensor) -> torch.Tensor:
    """Per-tile MSE of a bilinear demosaic of the RGGB mosaic (a hardness score)."""
    x = tiles.float() / 255
    n, _, h, w = x.shape
    m = torch.zeros(3, h, w)
    m[0, 0::2, 0::2] = 1
    m[1, 0::2, 1::2] = 1
    m[1, 1::2, 0::2] = 1
    m[2, 1::2, 1::2] = 1
    k_rb = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float32) / 4
    k_g = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=torch.float32) / 4
    k = torch.stack([k_rb, k_g, k_rb])[:, None]
    y = F.conv2d(F.pad(x * m, (1, 1, 1, 1), mode="reflect"), k, groups=3)
    return (y - x)[..., 2:-2, 2:-2].square().flatten(1).mean(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "train")
    ap.add_argument("--out", type=Path, default=ROOT / ".devdata")
    ap.add_argument("--budget-mib", type=float, default=42.0, help="size limit of the npz")
    ap.add_argument("--hard-fraction", type=float, default=0.6, help="share of grid tiles kept by hardness")
    ap.add_argument("--val-photos", type=int, default=3, help="whole photos per folder held out for validation")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    budget = int(args.budget_mib * 2**20)

    tiles: list[np.ndarray] = []
    sources: list[str] = []
    splits: list[str] = []
    blobs: list[bytes] = []
    used = 0

    def add(t: torch.Tensor, source: str, split: str) -> None:
        nonlocal used
        arr = np.ascontiguousarray(t.permute(1, 2, 0).numpy())
        blob = encode_tile(arr)
        tiles.append(arr)
        blobs.append(blob)
        sources.append(source)
        splits.append(split)
        used += len(blob) + 16

    # 1. CBSD432: every photo, downscaled by 2 on loading (load_photo's JPEG rule).
    bsd = find_photos(args.train / "cbsd432")
    val_bsd = set(rng.choice(len(bsd), size=min(8 * args.val_photos, len(bsd)), replace=False).tolist())
    for i, f in enumerate(bsd):
        t = _landscape(load_photo(f))[:, :TILE_H, :TILE_W]
        if t.shape[1:] == (TILE_H, TILE_W):
            add(t, "cbsd432", "val" if i in val_bsd else "train")
    print(f"cbsd432: {len(tiles)} tiles, {used / 2**20:.1f} MiB", flush=True)

    # 2. Large photos: grid tiles, hardest first, then random, within the remaining budget.
    candidates: list[tuple[float, torch.Tensor, str, str]] = []
    for folder in ("wikipedia_photos", "imagecompression_info"):
        files = find_photos(args.train / folder)
        val_idx = set(rng.choice(len(files), size=min(args.val_photos, len(files) - 1), replace=False).tolist()) \
            if len(files) > 1 else set()
        for i, f in enumerate(files):
            x = _landscape(load_photo(f))
            gh, gw = x.shape[1] // TILE_H, x.shape[2] // TILE_W
            grid = torch.stack([x[:, r * TILE_H:(r + 1) * TILE_H, c * TILE_W:(c + 1) * TILE_W]
                                for r in range(gh) for c in range(gw)])
            if i in val_idx:  # a few tiles of a held-out photo for validation
                for j in rng.choice(len(grid), size=min(4, len(grid)), replace=False):
                    add(grid[j], folder, "val")
                continue
            err = _bilinear_error(grid)
            for j in range(len(grid)):
                candidates.append((float(err[j]), grid[j], folder, f.name))
    order = np.argsort([-c[0] for c in candidates])
    n_hard = int(args.hard_fraction * len(order))
    hard, rest = list(order[:n_hard]), list(order[n_hard:])
    rng.shuffle(hard)
    rng.shuffle(rest)
    # Interleave: 3 hard for every 2 random, so any budget cut keeps the same mix.
    picks: list[int] = []
    while hard or rest:
        for _ in range(3):
            if hard:
                picks.append(hard.pop())
        for _ in range(2):
            if rest:
                picks.append(rest.pop())
    n_big = 0
    for j in picks:
        if used >= budget:
            break
        add(candidates[j][1], candidates[j][2], "train")
        n_big += 1
    print(f"large photos: {n_big} of {len(candidates)} grid tiles kept", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    size = write_pack(args.out / "train_patches.npz", tiles, sources, splits, encoded=blobs)
    n_val = splits.count("val")
    print(f"{args.out / 'train_patches.npz'}: {len(tiles)} tiles ({len(tiles) - n_val} train, {n_val} val), "
          f"{size / 2**20:.1f} MiB", flush=True)
    for s in sorted(set(sources)):
        k = [i for i in range(len(tiles)) if sources[i] == s]
        print(f"  {s}: {sum(splits[i] == 'train' for i in k)} train, {sum(splits[i] == 'val' for i in k)} val")
    shutil.copyfile(locate_pretrained(), args.out / "bayer.pth")
    print(f"{args.out / 'bayer.pth'}: copied from {locate_pretrained()}")


if __name__ == "__main__":
    main()
