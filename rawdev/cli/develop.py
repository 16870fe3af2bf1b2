"""``rawdev develop``: one or more RAW files to sRGB JPEG, PNG or 16-bit TIFF."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import PipelineConfig
from ..errors import OutputError, RawdevError, UsageError, printable
from ._options import (DEFAULT_COLOURSPACE, DEFAULT_CURVE, DEFAULT_DENOISE, DEFAULT_HIGHLIGHTS, DenoiseOpt, DEFAULT_QUALITY, AllowBlackOpt, AutoBrightOpt, BackendOpt, BitsOpt, ColourSpaceOpt, CurveOpt, DeviceOpt, ExposureOpt, Fmt, FormatOpt, HighlightsOpt, LensOpt, LookOpt,
                       NoiseSigmaOpt, NoOrientOpt, OrientOpt, HalfSizeOpt, SizeOpt, CropOpt, refuse_crop_of_previews, OverwriteOpt, PreviewOpt, QualityOpt, QuietOpt, TileOpt, WbOpt,
                       handle_errors, notice, pipeline_config)

__all__ = ["develop_command", "develop_file", "output_path_for", "DevelopOptions"]


@dataclass(frozen=True)
class DevelopOptions:
    """What ``rawdev develop`` was asked: the files, where their outputs go, and the developer's
    settings (``config``; its ``output_bits`` is settled per output, by its format)."""

    inputs: tuple[Path, ...]
    output: str | None  # a file, a folder (ends in / or exists), or None: next to each input
    fmt: str  # "jpg", "png" or "tif": the outputs' format when ``output`` is not a file
    bits: int | None  # 8, 16 or 32 (float TIFF); None: the format's default (16 for TIFF, else 8)
    quality: int  # JPEG quality, 1..100
    overwrite: bool
    preview: bool  # write the embedded preview instead of developing
    quiet: bool
    config: PipelineConfig


def names_folder(out: str | Path | None) -> bool:
    """Whether ``-o`` names a folder: one that exists, or any path written with a final ``/``
    (checked on the text as typed: ``Path`` drops the slash). A missing folder is created."""
    if out is None:
        return False
    text = str(out)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def output_path_for(src: Path, out: str | Path | None, fmt: str) -> Path:
    """Where ``src`` goes: ``out`` itself if it names a file, else ``<out or src dir>/<stem>.<fmt>``."""
    if names_folder(out):
        return Path(out) / f"{src.stem}.{fmt}"
    if out is not None:
        return Path(out)
    return src.with_suffix(f".{fmt}")


def plan_outputs(inputs: list[Path], out: str | None, fmt: str) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Each input and its output path; and, refused up front as batch refuses them, the inputs whose
    output is the output of an earlier input (``a.kdc`` and ``sub/a.dng`` both to ``out/a.jpg``),
    with the reason. (An output that is its own input is refused when it is developed.)"""
    from ..batch import _resolve

    planned: list[tuple[Path, Path]] = []
    refused: list[tuple[Path, str]] = []
    claimed: dict[Path, Path] = {}
    for src in inputs:
        dst = output_path_for(src, out, fmt)
        key = _resolve(dst)
        if key in claimed:
            refused.append((src, f"{printable(claimed[key])} develops to the same output {printable(dst)}; "
                                 "develop one of them separately or with another -o"))
        else:
            claimed[key] = src
            planned.append((src, dst))
    return planned, refused


def develop_file(src: Path, dst: Path, cfg, *, quality: int, overwrite: bool, quiet: bool = False):
    """:func:`rawdev.pipeline.develop_to_file` with the notices printed as the CLI prints them.

    Start-up: while this thread checks the output path and LibRaw decodes the file (rawpy releases
    the GIL while it decodes), a second one imports what the develop needs next: the pipeline, and
    torch for back-ends whose runner takes tensors (about 1.3 s on a quiet 2-core machine), so their
    pixel work starts sooner. Numpy back-ends (the default) never import torch.
    """
    from ..backends.registry import get
    from ..io.raw import read_raw
    from ..io.write import check_destination
    from ._startup import import_in_background

    spec = get(cfg.backend)  # an unknown name fails here, before anything heavy is imported
    check_destination(src, dst, cfg.output_bits, overwrite)
    from ._progress import DevelopProgress

    heavy = [import_in_background("rawdev.pipeline")]
    if spec.arrays != "numpy" and not cfg.half_size:  # half-size runs no back-end
        heavy.append(import_in_background("torch"))
    with DevelopProgress(f"{src.name} ({cfg.backend})", enabled=not quiet) as bar:
        raw = read_raw(src)
        pipeline = [h.result() for h in heavy][0]
        return pipeline.develop_to_file(src, dst, cfg, quality=quality, overwrite=overwrite,
                                        on_notice=lambda n: notice(n, src, quiet), raw=raw, progress=bar.update)


@handle_errors
def develop_command(
    inputs: Annotated[list[Path], typer.Argument(help="RAW files (DNG, CR2, NEF, ARW, RAF, ...).", show_default=False, readable=False)],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output file, or a folder (ending in /; created if missing) for several inputs, or - for standard output (one input, in --format; dcraw -c). Default: next to the input.", show_default=False)] = None,
    fmt: FormatOpt = Fmt.jpg,
    bits: BitsOpt = None,
    quality: QualityOpt = DEFAULT_QUALITY,
    backend: BackendOpt = PipelineConfig.backend,
    wb: WbOpt = PipelineConfig.wb,
    highlights: HighlightsOpt = DEFAULT_HIGHLIGHTS,
    exposure: ExposureOpt = PipelineConfig.exposure_ev,
    auto_bright: AutoBrightOpt = PipelineConfig.auto_bright,
    curve: CurveOpt = DEFAULT_CURVE,
    colorspace: ColourSpaceOpt = DEFAULT_COLOURSPACE,
    look: LookOpt = PipelineConfig.look,
    lens: LensOpt = PipelineConfig.lens,
    no_orient: NoOrientOpt = not PipelineConfig.apply_orientation,
    orient: OrientOpt = PipelineConfig.orientation,
    half_size: HalfSizeOpt = PipelineConfig.half_size,
    size: SizeOpt = None,
    crop: CropOpt = None,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = PipelineConfig.device,
    tile: TileOpt = PipelineConfig.tile,
    noise: NoiseSigmaOpt = PipelineConfig.noise,
    denoise: DenoiseOpt = DEFAULT_DENOISE,
    preview: PreviewOpt = False,
    allow_black: AllowBlackOpt = PipelineConfig.allow_black,
    quiet: QuietOpt = False,
) -> None:
    """Develop RAW files to sRGB images, with EXIF, an sRGB ICC profile, and orientation applied."""
    refuse_crop_of_previews(preview, crop)
    _develop(DevelopOptions(
        inputs=tuple(inputs), output=output, fmt=fmt.value, bits=bits, quality=quality, overwrite=overwrite,
        preview=preview, quiet=quiet,
        config=pipeline_config(backend=backend, wb=wb, highlights=highlights, exposure=exposure, auto_bright=auto_bright,
                               curve=curve, colorspace=colorspace, look=look, lens=lens, no_orient=no_orient, orient=orient, half_size=half_size, size=size, crop=crop,
                               device=device, tile=tile, noise=noise, denoise=denoise, allow_black=allow_black, bits=bits)))


def _develop(opts: DevelopOptions) -> None:
    inputs, output = opts.inputs, opts.output
    if output == "-":
        return _develop_to_stdout(opts)
    if len(inputs) > 1 and output is not None and not names_folder(output):
        raise UsageError(f"several inputs need -o to be a folder (end it with /): {printable(output)} is not one")
    planned, refused = plan_outputs(list(inputs), output, opts.fmt)
    failed = len(refused)
    for src, why in refused:
        _report(src, OutputError(why, src))
    for src, dst in planned:
        try:
            _develop_one(src, dst, opts)
        except UsageError:
            raise
        except Exception as e:  # noqa: BLE001 - keep going; report each file
            if len(inputs) == 1 and _passed_on(e):
                raise
            failed += 1
            _report(src, e)
    if failed:
        raise typer.Exit(1)


def _develop_to_stdout(opts: DevelopOptions) -> None:
    """``-o -`` (dcraw ``-c``): one input, written to standard output in ``--format``, for a pipe. The
    image is made in a temporary file as any output is (atomic, metadata copied), then streamed;
    the progress bar, notices and the "->" line go to standard error."""
    import shutil
    import sys
    import tempfile

    if len(opts.inputs) != 1:
        raise UsageError("-o - writes one image to standard output; give one input")
    if sys.stdout.isatty():
        raise UsageError("-o - writes an image to standard output, which is a terminal; pipe or redirect it")
    src = opts.inputs[0]
    with tempfile.TemporaryDirectory(prefix="rawdev-stdout-") as tmp:
        dst = Path(tmp) / f"{src.stem}.{opts.fmt}"
        try:
            _develop_one(src, dst, replace(opts, overwrite=True), announce=False)
        except Exception as e:  # noqa: BLE001
            if _passed_on(e):
                raise
            _report(src, e)
            raise typer.Exit(1) from None
        try:
            with open(dst, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise OutputError("standard output was closed before the image was written", src) from None
    if not opts.quiet:
        print(f"{printable(src)} -> standard output ({opts.fmt})", file=sys.stderr)


def _develop_one(src: Path, dst: Path, opts: DevelopOptions, announce: bool = True) -> None:
    """One input to its output: its embedded preview (``--preview``) or a develop."""
    if opts.preview:
        from ..io.preview import write_preview

        write_preview(src, dst, quality=opts.quality, overwrite=opts.overwrite, size=opts.config.size)
        if announce and not opts.quiet:
            print(f"{printable(src)} -> {printable(dst)} (embedded preview)")
        return
    from ..io.write import default_bits, format_for

    bits = opts.bits or default_bits(format_for(dst), opts.config.colorspace)
    develop_file(src, dst, replace(opts.config, output_bits=bits), quality=opts.quality, overwrite=opts.overwrite,
                 quiet=opts.quiet)
    if announce and not opts.quiet:
        print(f"{printable(src)} -> {printable(dst)}")


def _passed_on(e: Exception) -> bool:
    """Whether a single file's error goes on to ``handle_errors`` (which says it in one line, or
    shows the traceback with ``RAWDEV_DEBUG=1``) rather than to :func:`_report`."""
    return isinstance(e, (RawdevError, MemoryError)) or bool(os.environ.get("RAWDEV_DEBUG"))


def _report(src: Path, e: Exception) -> None:
    import sys

    if isinstance(e, RawdevError):
        msg = e.one_line()
    else:  # a fault of rawdev's own on this file: one line too, and how to see where
        msg = (f"{printable(src)}: internal error, {type(e).__name__}: {' '.join(str(e).split())} "
               "(RAWDEV_DEBUG=1 shows the traceback; please report it)")
    print(f"rawdev: error: {msg}", file=sys.stderr)
