"""``rawdev compress``: distil ``jdd-noise`` into fast students and cut sub-networks out of them.

    rawdev compress distill --data .devdata/train_patches.npz --run-dir runs/jdd_fast \\
        --widths 48x7 --ofa 0.5,0.75,1 --steps 3000          # once-for-all (GAN Compression)
    rawdev compress distill ... --slim 0.01                  # learned gates + L1 (GAN Slimming)
    rawdev compress distill ... --resume                     # continue the checkpoint exactly
    rawdev compress distill ... --base menon --init runs/jdd_fast   # correct Menon, start from a run
    rawdev compress export --run-dir runs/jdd_fast --width 0.75 --out weights/jdd_fast.safetensors
    rawdev compress export --run-dir runs/jdd_slim --prune 0.05 --out weights/jdd_slim.safetensors
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..backends.registry import STUDENT_BASES

from ._options import (DEFAULT_DEVICE, BaseOpt, BatchOpt, CheckpointEveryOpt, ClipOpt, ColourAugOpt, DataOpt, DeviceOpt, HeteroOpt, InitOpt, LogEveryOpt,
                       LossOpt, LrOpt, PatchOpt, PCleanOpt, ResumeOpt, RunDirOpt, SeedOpt, SigmaMaxOpt, StepsOpt,
                       ThreadsOpt, TimeLimitOpt, ValEveryOpt, WarmupOpt, WeightsOutOpt, handle_errors)

__all__ = ["app", "parse_widths"]

app = typer.Typer(
    help="Compress learned back-ends: distil jdd-noise into small students, export sub-networks.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Compress learned back-ends: distil jdd-noise into small students, export sub-networks."""


def parse_widths(text: str) -> tuple[int, ...]:
    """``"48x7"`` -> seven layers of 48; ``"32,32,48"`` -> those widths.

    Raises:
        UsageError: not of either form, or a width below 1.
    """
    from ..errors import UsageError

    try:
        if "x" in text:
            w, d = text.lower().split("x")
            widths = (int(w),) * int(d)
        else:
            widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--widths must look like 48x7 or 32,32,48; got {text!r}") from None
    if not widths or min(widths) < 1:
        raise UsageError(f"--widths needs at least one layer of width >= 1; got {text!r}")
    return widths


@app.command()
@handle_errors
def distill(
    data: DataOpt,
    run_dir: RunDirOpt = Path("runs/jdd_fast"),
    widths: Annotated[str, typer.Option("--widths", help="Student 3x3 layer widths: 48x7 or 32,32,48,...")] = "48x7",
    post_width: Annotated[int, typer.Option("--post-width", help="Channels of the full-resolution 3x3 layer.")] = 16,
    base: BaseOpt = None,
    base_input: Annotated[bool, typer.Option("--base-input", help="The post layer also sees the base image.")] = False,
    init: InitOpt = None,
    ofa: Annotated[str, typer.Option("--ofa", help="Once-for-all width multipliers, e.g. 0.5,0.75,1 (GAN Compression).")] = "",
    slim: Annotated[float, typer.Option("--slim", help="L1 weight on learned channel gates (GAN Slimming); 0: none.")] = 0.0,
    steps: StepsOpt = 3000,
    batch: BatchOpt = 8,
    patch: PatchOpt = 128,
    lr: LrOpt = 1e-3,
    warmup: WarmupOpt = 100,
    loss: LossOpt = "l2",
    sigma_max: SigmaMaxOpt = 20.0,
    p_clean: PCleanOpt = 0.2,
    colour_aug: ColourAugOpt = 0.0,
    hetero: HeteroOpt = 0.0,
    clip: ClipOpt = 0.5,
    device: DeviceOpt = DEFAULT_DEVICE,
    resume: ResumeOpt = False,
    seed: SeedOpt = 0,
    checkpoint_every: CheckpointEveryOpt = 100,
    log_every: LogEveryOpt = 20,
    val_every: ValEveryOpt = 500,
    time_limit: TimeLimitOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Distil jdd-noise into a student (progress bar on a terminal, loss log in RUN_DIR/log.jsonl)."""
    from ..train.compress import CompressRecipe, train_student
    from ..train.loop import TrainConfig
    from .train import NOISE_AWARE, TrainProgress

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ofa_widths = tuple(float(v) for v in ofa.split(",") if v.strip()) if ofa else ()
    cfg = TrainConfig(steps=steps, lr=lr, seed=seed, device=device, run_dir=run_dir, resume=resume,
                      checkpoint_every=checkpoint_every, log_every=log_every, val_every=val_every,
                      time_limit_s=time_limit, schedule="cosine", warmup_steps=warmup, threads=threads)
    recipe = CompressRecipe(widths=parse_widths(widths), post_width=post_width, base=base or STUDENT_BASES[0], base_input=base_input, ofa_widths=ofa_widths,
                            slim_l1=slim, patch=patch, batch=batch, sigma_max=sigma_max / 255, p_clean=p_clean,
                            hetero_prob=hetero, clip_prob=clip, loss=loss, colour_aug=colour_aug)
    with TrainProgress(f"distil {NOISE_AWARE}") as prog:
        result, _ = train_student(data, cfg, recipe, init_from=init, **prog.callbacks())
    state = "done" if result.completed else "stopped at the time limit (continue with --resume)"
    typer.echo(f"{state}: step {result.step}/{steps} on {result.device} in {result.elapsed_s:.0f} s; "
               f"checkpoint -> {run_dir}; cut a student with `rawdev compress export`", err=True)


@app.command()
@handle_errors
def export(
    run_dir: RunDirOpt,
    out: WeightsOutOpt,
    width: Annotated[float, typer.Option("--width", help="Once-for-all width multiplier of the sub-network.")] = 1.0,
    prune: Annotated[Optional[float], typer.Option("--prune", help="GAN Slimming: drop channels with |gate| below this.")] = None,
) -> None:
    """Cut a plain student (one width, or the pruned channels) out of a run's checkpoint."""
    from ..models.li2020 import macs_per_pixel
    from ..train.compress import export_student, student_from_checkpoint

    net, recipe = student_from_checkpoint(run_dir)
    if prune is not None:
        student = net.prune(prune)  # the gates decide each layer's width
    else:
        student = net.subnet(width)
    from .train import NOISE_AWARE

    meta = {"teacher": NOISE_AWARE, "run_dir": str(run_dir), "steps": recipe["step"], "recipe": recipe,
            "width": width, "prune": prune}
    export_student(student, out, meta)
    n = sum(p.numel() for p in student.parameters())
    typer.echo(f"wrote {out}: widths {list(student.widths)}, {n:,} parameters, "
               f"{macs_per_pixel(student.widths, student.post_width, base_input=student.base_input):,.0f} MAC/pixel", err=True)


@app.command()
@handle_errors
def int8(
    student: Annotated[Path, typer.Option("--student", help="A plain student written by `rawdev compress export`.")],
    data: DataOpt,
    out: WeightsOutOpt,
    batches: Annotated[int, typer.Option("--batches", help="Calibration batches.")] = 16,
    batch: BatchOpt = 8,
    patch: PatchOpt = 128,
    sigma_max: SigmaMaxOpt = 20.0,
    seed: SeedOpt = 0,
) -> None:
    """Calibrate int8 activation ranges of a student's trunk (min/max over synthetic noisy mosaics)."""
    import json

    import torch
    from safetensors.torch import save_file

    from ..cfa import bayer_masks, mosaic
    from ..models.quantise import calibrate_ranges
    from ..train.compress import read_student
    from ..train.data import load_sources
    from ..train.jdd import NATIVE_PATTERN
    from ..train.synthesis import add_gaussian_noise, sample_sigmas

    net, meta = read_student(student)
    net.eval()
    pool = load_sources(list(data), split="train")
    g = torch.Generator().manual_seed(seed)
    masks = bayer_masks(NATIVE_PATTERN, patch, patch)

    def draws():
        for _ in range(batches):
            rgb = pool.sample(batch, patch, generator=g)
            sigma = sample_sigmas(batch, sigma_max=sigma_max / 255, p_zero=0.2, generator=g)
            noisy = add_gaussian_noise(mosaic(rgb, NATIVE_PATTERN), sigma, generator=g).clamp(0, 1)
            yield noisy * masks, sigma

    ranges = calibrate_ranges(net, draws())
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {"student": student.name, "data": [str(p) for p in data], "batches": batches, "batch": batch,
            "patch": patch, "sigma_max_255": sigma_max, "seed": seed, "observer": "MinMax (x86 default qconfig)"}
    save_file({k: v.contiguous() for k, v in ranges.items()}, str(out),
              metadata={"format": "rawdev int8 activation ranges", "calibration": json.dumps(info)})
    typer.echo(f"wrote {out}: {len(ranges) // 2} activation ranges from {batches * batch} patches", err=True)
