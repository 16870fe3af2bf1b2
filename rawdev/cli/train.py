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
from typing import Annotated, List, Optional

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
    data: Annotated[List[Path], typer.Option("--data", help="Photo folder, photo file or .npz patch pack; repeat for more.")],
    out: Annotated[Path, typer.Option("--out", help="Safetensors file to write.")] = Path("weights/jdd_noise.safetensors"),
    steps: Annotated[int, typer.Option("--steps", help="Total optimisation steps (a resumed run counts from its start).")] = 20000,
    batch: Annotated[int, typer.Option("--batch", help="Patches per step.")] = 16,
    patch: Annotated[int, typer.Option("--patch", help="Patch side in pixels (even, >= 64); output is patch - 62.")] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-4,
    schedule: Annotated[str, typer.Option("--schedule", help="constant or cosine (decay to 1% of --lr).")] = "cosine",
    warmup: Annotated[int, typer.Option("--warmup", help="Linear warm-up steps.")] = 0,
    loss: Annotated[str, typer.Option("--loss", help="l2 (Gharbi2016) or l1.")] = "l2",
    target: Annotated[str, typer.Option("--target", help="teacher (noise-free network on the clean mosaic), gt (clean photo) or teacher-clean.")] = "teacher",
    sigma_max: Annotated[float, typer.Option("--sigma-max", help="Largest noise std, on the 0-255 scale.")] = 20.0,
    p_clean: Annotated[float, typer.Option("--p-clean", help="Fraction of noise-free samples.")] = 0.2,
    colour_aug: Annotated[float, typer.Option("--colour-aug", help="Fraction of samples with random channel order and saturation gain.")] = 0.0,
    hetero: Annotated[float, typer.Option("--hetero", help="Fraction of samples with shot+read noise instead of Gaussian.")] = 0.0,
    clip: Annotated[float, typer.Option("--clip", help="Fraction of samples whose noisy mosaic is clipped to [0, 1].")] = 0.5,
    init: Annotated[str, typer.Option("--init", help="'pretrained' (demosaicnet's bayer.pth), a .pth/.safetensors file, or 'none'.")] = "pretrained",
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from RUN_DIR/checkpoint.pt.")] = False,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Checkpoint and log.jsonl folder.")] = Path("runs/jdd_noise"),
    seed: Annotated[int, typer.Option("--seed")] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every")] = 1000,
    log_every: Annotated[int, typer.Option("--log-every")] = 50,
    val_every: Annotated[int, typer.Option("--val-every", help="Validate every N steps (0: start and end only).")] = 0,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Stop cleanly after this many seconds.")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="torch CPU threads.")] = None,
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
        data: Annotated[List[Path], typer.Option("--data", help="Photo folder, photo file or .npz patch pack; repeat for more.")],
        out: Annotated[Path, typer.Option("--out", help="Safetensors file to write.")] = Path(default_out),
        stage_steps: Annotated[Optional[List[str]], typer.Option("--stage-steps", help="LEVEL=STEPS, repeatable; when given, only these stages run (PyNET levels 5..0; CameraNet 1 = Restore alone, 0 = joint).")] = None,
        width: Annotated[int, typer.Option("--width", help="First-level width (papers: 32).")] = default_width,
        kernels: Annotated[str, typer.Option("--kernels", help="PyNET: full (3/5/7/9), dilated (3x3 dilated) or cap5.")] = "dilated",
        patch: Annotated[int, typer.Option("--patch", help="Patch side in pixels (multiple of 32).")] = 128,
        batch: Annotated[int, typer.Option("--batch", help="Patches per step.")] = 8,
        p_noise: Annotated[float, typer.Option("--p-noise", help="Fraction of samples with shot+read noise.")] = 0.7,
        lr: Annotated[float, typer.Option("--lr", help="Adam learning rate (cosine decay per stage).")] = 1e-4 if kind != "cameranet" else 2e-4,
        device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
        resume: Annotated[bool, typer.Option("--resume", help="Continue from RUN_DIR.")] = False,
        run_dir: Annotated[Path, typer.Option("--run-dir", help="Per-stage checkpoints and logs.")] = Path(f"runs/{kind}"),
        seed: Annotated[int, typer.Option("--seed")] = 0,
        checkpoint_every: Annotated[int, typer.Option("--checkpoint-every")] = 200,
        log_every: Annotated[int, typer.Option("--log-every")] = 50,
        time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Stop cleanly after this many seconds.")] = None,
        threads: Annotated[Optional[int], typer.Option("--threads", help="torch CPU threads.")] = None,
        init: Annotated[Optional[Path], typer.Option("--init", help="Start from these weights (a file this command wrote).")] = None,
        instance_norm: Annotated[bool, typer.Option("--instance-norm/--no-instance-norm", help="PyNET(-CA): the papers' instance normalisation (statistics shared across tiles at inference).")] = False,
        base: Annotated[str, typer.Option("--base", help="Fixed demosaic the network refines: jdd-noise, menon-srgb, menon or bilinear (see rawdev.models.isp_frame).")] = "menon",
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
