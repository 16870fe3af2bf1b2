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
from pathlib import Path
from typing import List, Optional

import typer

from ._options import handle_errors

__all__ = ["app", "TrainProgress"]

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
    data: List[Path] = typer.Option(..., "--data", help="Photo folder, photo file or .npz patch pack; repeat for more."),
    out: Path = typer.Option(Path("weights/jdd_noise.safetensors"), "--out", help="Safetensors file to write."),
    steps: int = typer.Option(20000, "--steps", help="Total optimisation steps (a resumed run counts from its start)."),
    batch: int = typer.Option(16, "--batch", help="Patches per step."),
    patch: int = typer.Option(128, "--patch", help="Patch side in pixels (even, >= 64); output is patch - 62."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate."),
    schedule: str = typer.Option("cosine", "--schedule", help="constant or cosine (decay to 1% of --lr)."),
    warmup: int = typer.Option(0, "--warmup", help="Linear warm-up steps."),
    loss: str = typer.Option("l2", "--loss", help="l2 (Gharbi2016) or l1."),
    target: str = typer.Option("teacher", "--target",
                               help="teacher (noise-free network on the clean mosaic), gt (clean photo) or teacher-clean."),
    sigma_max: float = typer.Option(20.0, "--sigma-max", help="Largest noise std, on the 0-255 scale."),
    p_clean: float = typer.Option(0.2, "--p-clean", help="Fraction of noise-free samples."),
    colour_aug: float = typer.Option(0.0, "--colour-aug", help="Fraction of samples with random channel order and saturation gain."),
    hetero: float = typer.Option(0.0, "--hetero", help="Fraction of samples with shot+read noise instead of Gaussian."),
    clip: float = typer.Option(0.5, "--clip", help="Fraction of samples whose noisy mosaic is clipped to [0, 1]."),
    init: str = typer.Option("pretrained", "--init", help="'pretrained' (demosaicnet's bayer.pth), a .pth/.safetensors file, or 'none'."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    amp: bool = typer.Option(False, "--amp/--no-amp", help="bf16 autocast on CUDA."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN_DIR/checkpoint.pt."),
    run_dir: Path = typer.Option(Path("runs/jdd_noise"), "--run-dir", help="Checkpoint and log.jsonl folder."),
    seed: int = typer.Option(0, "--seed"),
    checkpoint_every: int = typer.Option(1000, "--checkpoint-every"),
    log_every: int = typer.Option(50, "--log-every"),
    val_every: int = typer.Option(0, "--val-every", help="Validate every N steps (0: start and end only)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop cleanly after this many seconds."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
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
    with TrainProgress("jdd-noise") as prog:
        result = train_jdd(data, out, cfg, recipe, init=None if init == "none" else init, **prog.callbacks())
    state = "done" if result.completed else "stopped at the time limit (continue with --resume)"
    typer.echo(f"{state}: step {result.step}/{steps} on {result.device} in {result.elapsed_s:.0f} s; "
               f"weights -> {out}", err=True)


def _train_isp(kind: str, data, out, stage_steps, width, kernels, patch, batch, p_noise, lr, device, resume,
               run_dir, seed, checkpoint_every, log_every, time_limit, threads, init=None,
               instance_norm=False, base="menon") -> None:
    from ..train.isp import DEFAULT_STAGE_STEPS, ISPRecipe, train_isp
    from ..train.loop import TrainConfig

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    steps = dict(DEFAULT_STAGE_STEPS[kind]) if not stage_steps else {}
    for item in stage_steps or []:
        try:
            lv, n = item.split("=")
            steps[int(lv)] = int(n)
        except ValueError:
            raise typer.BadParameter(f"--stage-steps wants LEVEL=STEPS, got {item!r}") from None
    cfg = TrainConfig(steps=1, lr=lr, seed=seed, device=device, run_dir=run_dir, resume=resume,
                      checkpoint_every=checkpoint_every, log_every=log_every, time_limit_s=time_limit,
                      schedule="cosine", threads=threads,
                      # CameraNet's official optimiser (learned_backends.md 4.4); its eps damps the
                      # updates of the near-zero-initialised up-sampling convolutions.
                      betas=(0.5, 0.999) if kind == "cameranet" else (0.9, 0.999),
                      eps=1e-4 if kind == "cameranet" else 1e-8)
    recipe = ISPRecipe(kind=kind, width=width, kernels=kernels, patch=patch, batch=batch, p_noise=p_noise,
                       stage_steps=steps, instance_norm=instance_norm, base=base)
    with TrainProgress(kind) as prog:
        result = train_isp(data, out, cfg, recipe, init=init, **prog.callbacks())
    state = "done" if result.completed else "stopped (time limit): continue with --resume"
    typer.echo(f"{state}: {kind} on {result.device}; weights -> {out if result.completed else '(not written)'}",
               err=True)


def _isp_command(kind: str, default_width: int, default_out: str):
    def command(
        data: List[Path] = typer.Option(..., "--data", help="Photo folder, photo file or .npz patch pack; repeat for more."),
        out: Path = typer.Option(Path(default_out), "--out", help="Safetensors file to write."),
        stage_steps: Optional[List[str]] = typer.Option(None, "--stage-steps",
                                                        help="LEVEL=STEPS, repeatable; when given, only these stages run (PyNET levels 5..0; CameraNet 1 = Restore alone, 0 = joint)."),
        width: int = typer.Option(default_width, "--width", help="First-level width (papers: 32)."),
        kernels: str = typer.Option("dilated", "--kernels", help="PyNET: full (3/5/7/9), dilated (3x3 dilated) or cap5."),
        patch: int = typer.Option(128, "--patch", help="Patch side in pixels (multiple of 32)."),
        batch: int = typer.Option(8, "--batch", help="Patches per step."),
        p_noise: float = typer.Option(0.7, "--p-noise", help="Fraction of samples with shot+read noise."),
        lr: float = typer.Option(1e-4 if kind != "cameranet" else 2e-4, "--lr", help="Adam learning rate (cosine decay per stage)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        resume: bool = typer.Option(False, "--resume", help="Continue from RUN_DIR."),
        run_dir: Path = typer.Option(Path(f"runs/{kind}"), "--run-dir", help="Per-stage checkpoints and logs."),
        seed: int = typer.Option(0, "--seed"),
        checkpoint_every: int = typer.Option(200, "--checkpoint-every"),
        log_every: int = typer.Option(50, "--log-every"),
        time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop cleanly after this many seconds."),
        threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
        init: Optional[Path] = typer.Option(None, "--init", help="Start from these weights (a file this command wrote)."),
        instance_norm: bool = typer.Option(False, "--instance-norm/--no-instance-norm",
                                           help="PyNET(-CA): the papers' instance normalisation (statistics shared across tiles at inference)."),
        base: str = typer.Option("menon", "--base", help="Fixed demosaic the network refines: jdd-noise, menon-srgb, menon or bilinear (see rawdev.models.isp_frame)."),
    ) -> None:
        _train_isp(kind, data, out, stage_steps, width, kernels, patch, batch, p_noise, lr, device, resume,
                   run_dir, seed, checkpoint_every, log_every, time_limit, threads, init, instance_norm, base)

    command.__doc__ = f"Train the {kind} learned ISP on unprocessed photos (see rawdev.train.isp)."
    return handle_errors(command)


app.command("pynet")(_isp_command("pynet", 8, "weights/pynet.safetensors"))
app.command("pynet-ca")(_isp_command("pynet-ca", 8, "weights/pynet_ca.safetensors"))
app.command("cameranet")(_isp_command("cameranet", 16, "weights/cameranet.safetensors"))


def main() -> None:
    app(prog_name="rawdev train")


if __name__ == "__main__":
    sys.exit(main())
