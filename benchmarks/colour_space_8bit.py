"""How close can ANY 8-bit encoding in a wide output space come to the 8-bit sRGB output?

For sRGB 8-bit colours (levels 2-253 in every channel, so in gamut and unclipped), this finds the
8-bit code of each wide space whose exact decoding (the space's transfer function, the 3x3 matrix
back to linear sRGB, the sRGB curve; what a colour-managed reader with an exact CMM does) lands
nearest the sRGB code, searching every code within ``--reach`` steps of the exact wide-space value in
each channel. It prints, per space, the distance rawdev's rounding to the nearest code gives and the
best any encoder could give, as the largest channel difference in sRGB levels:

* if the best is above 1.5 levels for some colour, no 8-bit file in that space can bring that colour
  back within 1 level (a reader rounds to the nearest level);
* at 16 bits the same search is not needed: the step is 257 times finer.

Why: one code step of a wider space spans more than one sRGB step where a colour has a channel near
zero, because the back-conversion mixes a large channel's rounding error into the small channel,
where the sRGB curve's linear toe (slope 12.92) magnifies it.

    python benchmarks/colour_space_8bit.py [--samples 200000] [--reach 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from rawdev.stages.output_space import NAMES, get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200_000, help="random sRGB colours (levels 2-253)")
    ap.add_argument("--reach", type=int, default=2, help="codes searched either side, per channel")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    srgb = get_space("srgb")
    ref = np.random.default_rng(args.seed).integers(2, 254, size=(args.samples, 3)).astype(np.float64)
    linear = srgb.decode(ref / 255.0)
    print(f"{args.samples} random in-gamut sRGB colours; codes within {args.reach} steps searched\n")
    print(f"{'space':<12} {'nearest: max':>12} {'p99.9':>7} {'>1.5':>7}   {'best: max':>9} {'p99.9':>7} {'>1.5':>7}")
    for name in NAMES:
        if name == "srgb":
            continue
        space = get_space(name)
        to_wide = space.matrix_from_srgb()
        to_srgb = np.linalg.inv(to_wide)

        def back(codes: np.ndarray, space=space, to_srgb=to_srgb) -> np.ndarray:
            return srgb.encode(space.decode(codes / 255.0) @ to_srgb.T) * 255.0

        wide = space.encode(linear @ to_wide.T) * 255.0
        nearest = np.abs(back(np.round(wide)) - ref).max(axis=1)
        best = np.full(len(ref), np.inf)
        steps = range(-args.reach, args.reach + 1)
        for step in itertools.product(steps, steps, steps):
            codes = np.clip(np.round(wide) + np.asarray(step, dtype=np.float64), 0.0, 255.0)
            best = np.minimum(best, np.abs(back(codes) - ref).max(axis=1))
        print(f"{name:<12} {nearest.max():>12.2f} {np.quantile(nearest, 0.999):>7.2f} "
              f"{(nearest > 1.5).mean():>7.2%}   {best.max():>9.2f} {np.quantile(best, 0.999):>7.2f} "
              f"{(best > 1.5).mean():>7.2%}")


if __name__ == "__main__":
    main()
