"""``rawdev eval``: score back-ends with the field's standard protocols.

Commands:
    ``rawdev eval demosaic DIR --method NAME``: mosaic the 8-bit sRGB photos in DIR, demosaic them with a
    registered back-end and print CPSNR per image and the mean (see :mod:`rawdev.evaluate.demosaic`).

The main CLI mounts this sub-app with ``app.add_typer(evaluate.app, name="eval")``. Errors are
:class:`rawdev.errors.RawdevError` classes, printed as one line with their exit code by
:func:`rawdev.cli._options.handle_errors` (missing or empty folder: 1; bad options, unknown back-end: 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..backends.registry import ROUNDTRIP_BACKENDS
from ..errors import UsageError
from ._options import DEFAULT_DEVICE, BackendsOpt, DeviceOpt, JsonOpt, LimitOpt, SeedOpt, handle_errors

__all__ = ["app", "format_markdown", "format_table", "DemosaicEvalOptions"]

DEFAULT_ROUNDTRIP = ",".join(ROUNDTRIP_BACKENDS)

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


@dataclass(frozen=True)
class DemosaicEvalOptions:
    """What ``rawdev eval demosaic`` was asked (see :func:`rawdev.evaluate.demosaic.evaluate_demosaic`)."""

    directory: Path  # 8-bit sRGB photos
    method: str  # a back-end
    pattern: str = "RGGB"  # the Bayer pattern the photos are sampled with
    border: int = 10  # pixels dropped per side before scoring
    noise_sigma: float = 0.0  # Gaussian noise sigma on the 0-255 scale
    noise_model: str = "gaussian"  # or "shot-read" (variance shot * x + read, linear light)
    shot: float = 0.0
    read: float = 0.0
    seed: int = 0  # image i uses seed + i
    device: str = DEFAULT_DEVICE
    limit: int | None = None  # only the first N photos
    with_ssim: bool = False
    output: Literal["table", "json", "markdown"] = "table"


@app.command("demosaic")
@handle_errors
def demosaic(
    directory: Annotated[Path, typer.Argument(help="Folder of 8-bit sRGB photos (PNG, TIFF, JPEG).", show_default=False)],
    method: Annotated[str, typer.Option("--method", "-m", help="Back-end name: bilinear, malvar, menon, or a learned one.")],
    pattern: Annotated[str, typer.Option("--pattern", help="Bayer pattern used to sample the photos.")] = "RGGB",
    border: Annotated[int, typer.Option("--border", min=0, help="Pixels dropped per side before CPSNR (DPIR: 10).")] = 10,
    noise: Annotated[float, typer.Option("--noise", min=0.0, help="Gaussian noise sigma on the 0-255 scale.")] = 0.0,
    noise_model: Annotated[NoiseModelChoice, typer.Option("--noise-model", help="gaussian: sigma added to the sRGB mosaic; "
        "shot-read: variance SHOT*x + READ added in linear light.")] = NoiseModelChoice.gaussian,
    shot: Annotated[float, typer.Option("--shot", min=0.0, help="shot-read: signal-dependent variance gain.")] = 0.0,
    read: Annotated[float, typer.Option("--read", min=0.0, help="shot-read: constant (read) variance.")] = 0.0,
    seed: SeedOpt = 0,
    device: DeviceOpt = DEFAULT_DEVICE,
    limit: LimitOpt = None,
    with_ssim: Annotated[bool, typer.Option("--ssim", help="Also report SSIM.")] = False,
    as_json: JsonOpt = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table instead.")] = False,
) -> None:
    """Mosaic each photo in DIRECTORY, demosaic it with METHOD, print CPSNR per image and the mean."""
    if as_json and as_markdown:
        raise UsageError("--json and --markdown exclude each other")
    _demosaic(DemosaicEvalOptions(
        directory=directory, method=method, pattern=pattern, border=border, noise_sigma=noise,
        noise_model=noise_model.value, shot=shot, read=read, seed=seed, device=device, limit=limit,
        with_ssim=with_ssim, output="json" if as_json else "markdown" if as_markdown else "table"))


def _demosaic(opts: DemosaicEvalOptions) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..evaluate.demosaic import evaluate_demosaic, list_images

    files = list_images(opts.directory)[: opts.limit or None]
    # Refreshed by hand after each image: no background refresh thread competing with the timed
    # back-end calls for the GIL.
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True, auto_refresh=False, disable=opts.output != "table",
    )
    with progress:
        task = progress.add_task(opts.method, total=len(files))

        def on_image(row) -> None:
            progress.update(task, advance=1, description=f"{opts.method}: {row.name} {row.cpsnr:.2f} dB")
            progress.refresh()

        result = evaluate_demosaic(opts.directory, opts.method, pattern=opts.pattern, border=opts.border,
                                   noise_sigma=opts.noise_sigma, noise_model=opts.noise_model, shot=opts.shot,
                                   read=opts.read, seed=opts.seed, device=opts.device, with_ssim=opts.with_ssim,
                                   files=files, on_image=on_image)
    if opts.output == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif opts.output == "markdown":
        typer.echo(format_markdown(result), nl=False)
    else:
        Console().print(format_table(result))


@app.command("roundtrip")
@handle_errors
def roundtrip(
    directories: Annotated[list[Path], typer.Argument(help="Folders of 8-bit sRGB photos (e.g. Kodak24, McMaster).")],
    backends: BackendsOpt = DEFAULT_ROUNDTRIP,
    noise: Annotated[str, typer.Option("--noise", help="clean, noisy or both (see rawdev.evaluate.roundtrip).")] = "clean,noisy",
    limit: LimitOpt = None,
    device: DeviceOpt = DEFAULT_DEVICE,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write per-image scores here.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A line per image and back-end.")] = False,
    no_noise_profile: Annotated[bool, typer.Option(
        "--no-noise-profile", help="Write the DNGs without a NoiseProfile, as real cameras do: "
        "noise-aware back-ends estimate the noise from the data.")] = False,
) -> None:
    """Photo -> synthetic DNG (every CFA phase, real camera matrices, clean / shot+read noise) -> develop ->
    PSNR/SSIM against the photo, for whole developers including the learned ISPs."""
    from ..backends import registry
    from ..evaluate.roundtrip import evaluate_roundtrip

    methods = [m.strip() for m in backends.split(",") if m.strip()]
    for m in methods:
        registry.get(m)
    for d in directories:
        if not d.is_dir():
            raise UsageError(f"{d}: not a folder")
    console = Console(stderr=True)
    res = evaluate_roundtrip(directories, methods, [n.strip() for n in noise.split(",")], limit=limit,
                             device=device, progress=console.print if verbose else None,
                             noise_profile=not no_noise_profile)
    lines = ["| data | noise | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for d in directories:
        for nz in [n.strip() for n in noise.split(",")]:
            cells = []
            for m in methods:
                p, s = res.mean((d.name, nz, m))
                cells.append(f"{p:.2f} / {s:.4f}")
            lines.append(f"| {d.name} | {nz} | " + " | ".join(cells) + " |")
    typer.echo("PSNR (dB) / SSIM, mean over images, 10-pixel border excluded"
               + ("; DNGs without NoiseProfile" if no_noise_profile else ""))
    typer.echo("\n".join(lines))
    if json_out is not None:
        json_out.write_text(json.dumps(res.to_json(), indent=1))
