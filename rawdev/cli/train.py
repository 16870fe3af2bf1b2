"""``rawdev train``: train the learned back-ends.

Mounted by the main CLI as ``app.add_typer(train.app, name="train")``; also runnable on its own as
``python -m rawdev.cli.train jdd ...`` (a training machine needs neither rawpy nor the rest of the CLI).

    rawdev train jdd --data ../shared/train/cbsd432 --data ../shared/train/wikipedia_photos \\
        --out weights/jdd_noise.safetensors --steps 20000 --batch 16 --patch 128 --lr 1e-4 \\
        --device auto --run-dir runs/jdd_noise --seed 0
    rawdev train jdd ... --resume          # continue runs/jdd_noise/checkpoint.pt exactly
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from ..backends.registry import WeightsSpec, get, list_backends
from ..backends.specs import ISP_FILES, ISP_STUDENTS, JDD_NOISE
from ._options import (DEFAULT_DEVICE, BatchOpt, CheckpointEveryOpt, ClipOpt, ColourAugOpt, DataOpt, DeviceOpt, HeteroOpt, BaseOpt, InitOpt,
                       IspInstanceNormOpt, IspKernelsOpt, IspPNoiseOpt, IspStageStepsOpt, IspTeacherOpt, IspWidthOpt, LogEveryOpt, LossOpt,
                       LrOpt, PatchOpt, PCleanOpt, ResumeOpt, RunDirOpt, SeedOpt, SigmaMaxOpt, StepsOpt, ThreadsOpt,
                       TimeLimitOpt, ValEveryOpt, WarmupOpt, WeightsOutOpt, handle_errors)

__all__ = ["app", "TrainProgress", "IspTraining", "ISP_TRAINING", "NOISE_AWARE", "trained_into"]


def trained_into(weights: WeightsSpec) -> str:
    """The back-end that runs on ``weights``: the one a training command makes (names come from the
    registry, never from this module)."""
    return next(s.name for s in list_backends() if weights in s.weights.values())


#: What ``rawdev train jdd`` makes, and the teacher ``rawdev compress`` distils.
NOISE_AWARE = trained_into(JDD_NOISE)


@dataclass(frozen=True)
class IspTraining:
    """A learned ISP's training defaults: first-level width, Adam's learning rate, betas and eps."""

    width: int
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    base: str | None = None  # None: the recipe's (train.isp.ISPRecipe)
    teacher: str | None = None  # an ISP back-end to distil (train.isp.ISPRecipe.teacher); None: the photo


#: By the paper each ISP back-end reproduces (its spec's ``reference``).
ISP_TRAINING = {
    "Ignatov2020": IspTraining(width=8, lr=1e-4),
    "Kim2020": IspTraining(width=8, lr=1e-4),
    # CameraNet's official optimiser (learned_backends.md 4.4); its eps damps the updates of the
    # near-zero-initialised up-sampling convolutions.
    "Liang2019": IspTraining(width=16, lr=2e-4, betas=(0.5, 0.999), eps=1e-4),
}
#: Compressed students (specs.ISP_STUDENTS), by back-end name: half the teacher's width over a cheaper
#: start, the teacher's learning rate, plain Adam. CameraNet's damped optimiser (eps 1e-4) barely moved
#: the student: its Restore-Net's L1 to the teacher fell 1.6 % in 1,000 steps (2026-12-07).
ISP_STUDENT_TRAINING = {
    name: IspTraining(width=ISP_TRAINING[get(teacher).reference].width // 2, lr=ISP_TRAINING[get(teacher).reference].lr,
                      base=base, teacher=teacher)
    for name, (teacher, base) in ISP_STUDENTS.items()
}

app = typer.Typer(
    help="Train learned back-ends (fine-tune from packaged weights on synthetic data).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Train learned back-ends (fine-tune from packaged weights on synthetic data)."""


class TrainProgress:
    """Callbacks for :func:`rawdev.train.loop.train` that draw a rich progress bar on stderr.

    When stderr is not a terminal (logs, remote runs) it prints one line per log record instead.
    """

    def __init__(self, label: str = "training") -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.label = label
        self.live = self.console.is_terminal
        self.progress = None
        self.task = None

    def __enter__(self) -> "TrainProgress":
        if self.live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                                     TimeRemainingColumn(), console=self.console)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def on_start(self, step: int, total: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task(self.label, total=total, completed=step, loss="-")
        else:
            self.console.print(f"{self.label}: steps {step} -> {total}")

    def on_step(self, step: int, loss: float | None) -> None:
        if self.progress is not None and self.task is not None:
            fields = {"loss": f"{loss:.3e}"} if loss is not None else {}
            self.progress.update(self.task, completed=step, **fields)

    def on_record(self, record: dict) -> None:
        if "val" in record:
            vals = "  ".join(f"{k} {v:.3f}" for k, v in record["val"].items())
            self.console.print(f"step {record['step']}: val {vals}")
        elif not self.live:
            self.console.print(f"step {record['step']} loss {record['loss']:.4e} lr {record['lr']:.2e} "
                               f"{record['samples_per_s']:.0f} samples/s {record['elapsed_s']:.0f} s")

    def callbacks(self) -> dict:
        return {"on_start": self.on_start, "on_step": self.on_step, "on_record": self.on_record}


@app.command()
@handle_errors
def jdd(
    data: DataOpt,
    out: WeightsOutOpt = Path("weights") / JDD_NOISE.file,
    steps: StepsOpt = 20000,
    batch: BatchOpt = 16,
    patch: PatchOpt = 128,
    lr: LrOpt = 1e-4,
    schedule: Annotated[str, typer.Option("--schedule", help="constant or cosine (decay to 1% of --lr).")] = "cosine",
    warmup: WarmupOpt = 0,
    loss: LossOpt = "l2",
    target: Annotated[str, typer.Option("--target", help="teacher (noise-free network on the clean mosaic), gt (clean photo) or teacher-clean.")] = "teacher",
    sigma_max: SigmaMaxOpt = 20.0,
    p_clean: PCleanOpt = 0.2,
    colour_aug: ColourAugOpt = 0.0,
    hetero: HeteroOpt = 0.0,
    clip: ClipOpt = 0.5,
    init: Annotated[str, typer.Option("--init", help="'pretrained' (demosaicnet's bayer.pth), a .pth/.safetensors file, or 'none'.")] = "pretrained",
    device: DeviceOpt = DEFAULT_DEVICE,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA.")] = False,
    resume: ResumeOpt = False,
    run_dir: RunDirOpt = Path("runs/jdd_noise"),
    seed: SeedOpt = 0,
    checkpoint_every: CheckpointEveryOpt = 1000,
    log_every: LogEveryOpt = 50,
    val_every: ValEveryOpt = 0,
    time_limit: TimeLimitOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Fine-tune demosaicnet into the noise-aware jdd-noise back-end."""
    from ..train.jdd import JDDRecipe, train_jdd
    from ..train.loop import TrainConfig

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = TrainConfig(steps=steps, lr=lr, seed=seed, device=device, amp=amp, run_dir=run_dir, resume=resume,
                      checkpoint_every=checkpoint_every, log_every=log_every, val_every=val_every,
                      time_limit_s=time_limit, schedule=schedule, warmup_steps=warmup, threads=threads)
    recipe = JDDRecipe(patch=patch, batch=batch, sigma_max=sigma_max / 255, p_clean=p_clean,
                       hetero_prob=hetero, clip_prob=clip, loss=loss, target=target,
                       colour_aug=colour_aug)
    with TrainProgress(NOISE_AWARE) as prog:
        result = train_jdd(data, out, cfg, recipe, init=None if init == "none" else init, **prog.callbacks())
    state = "done" if result.completed else "stopped at the time limit (continue with --resume)"
    typer.echo(f"{state}: step {result.step}/{steps} on {result.device} in {result.elapsed_s:.0f} s; "
               f"weights -> {out}", err=True)


def parse_stage_steps(items: list[str] | None) -> dict[int, int]:
    """``--stage-steps LEVEL=STEPS ...`` as ``{level: steps}`` (empty: the recipe's default stages).

    Raises:
        typer.BadParameter: an item not of that form (exit 2).
    """
    steps: dict[int, int] = {}
    for item in items or []:
        try:
            lv, n = item.split("=")
            steps[int(lv)] = int(n)
        except ValueError:
            raise typer.BadParameter(f"--stage-steps wants LEVEL=STEPS, got {item!r}") from None
    return steps


def _train_isp(data: list[Path], out: Path, cfg, recipe, init: Path | None) -> None:
    """Train ``recipe.kind`` with the run settings ``cfg`` (a :class:`~rawdev.train.loop.TrainConfig`)."""
    from ..train.isp import train_isp

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with TrainProgress(recipe.kind) as prog:
        result = train_isp(data, out, cfg, recipe, init=init, **prog.callbacks())
    state = "done" if result.completed else "stopped (time limit): continue with --resume"
    typer.echo(f"{state}: {recipe.kind} on {result.device}; weights -> {out if result.completed else '(not written)'}",
               err=True)


def _isp_command(kind: str, defaults: IspTraining):
    def command(
        data: DataOpt,
        out: WeightsOutOpt = Path("weights") / ISP_FILES[kind],
        stage_steps: IspStageStepsOpt = None,
        width: IspWidthOpt = defaults.width,
        kernels: IspKernelsOpt = "dilated",
        patch: PatchOpt = 128,
        batch: BatchOpt = 8,
        p_noise: IspPNoiseOpt = 0.7,
        lr: LrOpt = defaults.lr,
        device: DeviceOpt = DEFAULT_DEVICE,
        resume: ResumeOpt = False,
        run_dir: RunDirOpt = Path("runs") / kind,
        seed: SeedOpt = 0,
        checkpoint_every: CheckpointEveryOpt = 200,
        log_every: LogEveryOpt = 50,
        time_limit: TimeLimitOpt = None,
        threads: ThreadsOpt = None,
        init: InitOpt = None,
        instance_norm: IspInstanceNormOpt = False,
        base: BaseOpt = defaults.base,
        teacher: IspTeacherOpt = defaults.teacher,
    ) -> None:
        from ..train.isp import DEFAULT_STAGE_STEPS, ISPRecipe
        from ..train.loop import TrainConfig

        cfg = TrainConfig(steps=1, lr=lr, seed=seed, device=device, run_dir=run_dir, resume=resume,
                          checkpoint_every=checkpoint_every, log_every=log_every, time_limit_s=time_limit,
                          schedule="cosine", threads=threads, betas=defaults.betas, eps=defaults.eps)
        recipe = ISPRecipe(kind=kind, width=width, kernels=kernels, patch=patch, batch=batch, p_noise=p_noise,
                           stage_steps=parse_stage_steps(stage_steps) or dict(DEFAULT_STAGE_STEPS[kind]),
                           instance_norm=instance_norm, teacher=teacher or None,
                           **({"base": base} if base is not None else {}))
        _train_isp(data, out, cfg, recipe, init)

    command.__doc__ = f"Train the {kind} learned ISP on unprocessed photos (see rawdev.train.isp)."
    return handle_errors(command)


for _kind in ISP_FILES:
    app.command(_kind)(_isp_command(_kind, ISP_STUDENT_TRAINING.get(_kind) or ISP_TRAINING[get(_kind).reference]))


def main() -> None:
    app(prog_name="rawdev train")


if __name__ == "__main__":
    sys.exit(main())
