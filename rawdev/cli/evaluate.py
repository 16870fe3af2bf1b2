"""``rawdev eval``: score back-ends with the field's standard protocols.

Commands:
    ``rawdev eval demosaic DIR --method NAME``: mosaic the 8-bit sRGB photos in DIR, demosaic them with a
    registered back-end and print CPSNR per image and the mean (see :mod:`rawdev.evaluate.demosaic`).

The main CLI mounts this sub-app with ``app.add_typer(evaluate.app, name="eval")`` and maps
:class:`rawdev.errors.RawdevError` to exit codes; this module only raises them.
"""

from __future__ import annotations

import contextlib
import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UsageError

__all__ = ["app", "format_markdown", "format_table"]

app = typer.Typer(
    help="Evaluate back-ends on standard test sets (Kodak24, McMaster18, ...).",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Evaluate back-ends on standard test sets (Kodak24, McMaster18, ...)."""
    # A callback keeps "eval" a command group even while it has a single command.


class NoiseModelChoice(str, Enum):
    gaussian = "gaussian"
    shot_read = "shot-read"


def _noise_label(result) -> str:
    if result.noise_model is None:
        return "no noise"
    if result.noise_model == "gaussian":
        return f"Gaussian noise sigma {result.noise_sigma:g}/255 (seed {result.seed})"
    return f"shot-read noise, var = {result.shot:g} x + {result.read:g} in linear [0, 1] (seed {result.seed})"


def format_table(result) -> Table:
    """A rich table: one row per image, then the mean."""
    with_ssim = result.mean_ssim is not None
    title = (
        f"{result.method} on {Path(result.directory).name or result.directory}: {result.pattern}, "
        f"border {result.border}, {_noise_label(result)}, {result.device}"
    )
    table = Table(title=title)
    table.add_column("image")
    table.add_column("size", justify="right")
    table.add_column("CPSNR (dB)", justify="right")
    if with_ssim:
        table.add_column("SSIM", justify="right")
    table.add_column("time (s)", justify="right")
    for r in result.rows:
        cells = [r.name, f"{r.width}x{r.height}", f"{r.cpsnr:.2f}"]
        if with_ssim:
            cells.append(f"{r.ssim:.4f}")
        cells.append(f"{r.seconds:.3f}")
        table.add_row(*cells)
    table.add_section()
    mean = [f"mean of {len(result.rows)}", "", f"{result.mean_cpsnr:.2f}"]
    if with_ssim:
        mean.append(f"{result.mean_ssim:.4f}")
    mean.append(f"{result.demosaic_seconds:.3f}")
    table.add_row(*mean, style="bold")
    return table


def format_markdown(result) -> str:
    """The same table in Markdown (for docs), with the settings as a first line."""
    with_ssim = result.mean_ssim is not None
    lines = [
        f"`{result.method}` on `{result.directory}`: {result.pattern}, border {result.border}, "
        f"{_noise_label(result)}, device {result.device}.",
        "",
        "| image | size | CPSNR (dB) |" + (" SSIM |" if with_ssim else "") + " time (s) |",
        "|---|---:|---:|" + ("---:|" if with_ssim else "") + "---:|",
    ]
    for r in result.rows:
        ssim = f" {r.ssim:.4f} |" if with_ssim else ""
        lines.append(f"| {r.name} | {r.width}x{r.height} | {r.cpsnr:.2f} |{ssim} {r.seconds:.3f} |")
    ssim = f" **{result.mean_ssim:.4f}** |" if with_ssim else ""
    lines.append(f"| **mean of {len(result.rows)}** | | **{result.mean_cpsnr:.2f}** |{ssim} {result.demosaic_seconds:.3f} |")
    return "\n".join(lines) + "\n"


@app.command("demosaic")
def demosaic(
    directory: Path = typer.Argument(..., help="Folder of 8-bit sRGB photos (PNG, TIFF, JPEG).", show_default=False),
    method: str = typer.Option(..., "--method", "-m", help="Back-end name: bilinear, malvar, menon, or a learned one."),
    pattern: str = typer.Option("RGGB", "--pattern", help="Bayer pattern used to sample the photos."),
    border: int = typer.Option(10, "--border", min=0, help="Pixels dropped per side before CPSNR (DPIR: 10)."),
    noise: float = typer.Option(0.0, "--noise", min=0.0, help="Gaussian noise sigma on the 0-255 scale."),
    noise_model: NoiseModelChoice = typer.Option(
        NoiseModelChoice.gaussian, "--noise-model", help="gaussian: sigma added to the sRGB mosaic; "
        "shot-read: variance SHOT*x + READ added in linear light."
    ),
    shot: float = typer.Option(0.0, "--shot", min=0.0, help="shot-read: signal-dependent variance gain."),
    read: float = typer.Option(0.0, "--read", min=0.0, help="shot-read: constant (read) variance."),
    seed: int = typer.Option(0, "--seed", help="Noise seed (image i uses SEED + i)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score only the first N images."),
    with_ssim: bool = typer.Option(False, "--ssim", help="Also report SSIM."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    as_markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table instead."),
) -> None:
    """Mosaic each photo in DIRECTORY, demosaic it with METHOD, print CPSNR per image and the mean."""
    from ..evaluate.demosaic import evaluate_demosaic

    if as_json and as_markdown:
        raise UsageError("--json and --markdown exclude each other")
    err = Console(stderr=True)
    quiet = as_json or as_markdown
    with err.status(f"evaluating {method}...", spinner="dots") if not quiet else contextlib.nullcontext() as status:

        def progress(row) -> None:
            if status is not None:
                status.update(f"evaluating {method}: {row.name} {row.cpsnr:.2f} dB")

        result = evaluate_demosaic(
            directory,
            method,
            pattern=pattern,
            border=border,
            noise_sigma=noise,
            noise_model=noise_model.value,
            shot=shot,
            read=read,
            seed=seed,
            device=device,
            limit=limit,
            with_ssim=with_ssim,
            on_image=progress,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif as_markdown:
        typer.echo(format_markdown(result), nl=False)
    else:
        Console().print(format_table(result))
