"""``rawdev develop``: one or more RAW files to sRGB JPEG, PNG or 16-bit TIFF."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..backends.registry import DEFAULT_BACKEND
from ..errors import OutputError, UsageError, printable
from ._options import MAX_EXPOSURE_EV, TILE_RANGE, check_wb, handle_errors, in_range, notice, parse_lens, parse_look, parse_wb

__all__ = ["develop_command", "develop_file", "output_path_for"]


class Fmt(str, Enum):
    jpg = "jpg"
    png = "png"
    tif = "tif"


class Highlights(str, Enum):
    clip = "clip"
    unclip = "unclip"
    blend = "blend"


class Curve(str, Enum):
    srgb = "srgb"
    linear = "linear"


class ColourSpace(str, Enum):
    srgb = "srgb"
    display_p3 = "display-p3"
    adobe_rgb = "adobe-rgb"
    rec2020 = "rec2020"
    prophoto = "prophoto"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


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

    Start-up: the pipeline (and torch, about 1.3 s on a quiet 2-core machine) is imported on a second
    thread while this one checks the output path and LibRaw decodes the file (rawpy releases the GIL
    while it decodes), so a develop's pixel work starts before torch is there.
    """
    from ..backends.registry import get
    from ..io.raw import read_raw
    from ..io.write import check_destination
    from ._startup import import_in_background

    get(cfg.backend)  # an unknown name fails here, before anything heavy is imported
    check_destination(src, dst, cfg.output_bits, overwrite)
    from ._progress import DevelopProgress

    pipeline = import_in_background("rawdev.pipeline")
    with DevelopProgress(f"{src.name} ({cfg.backend})", enabled=not quiet) as bar:
        raw = read_raw(src)
        return pipeline.result().develop_to_file(src, dst, cfg, quality=quality, overwrite=overwrite,
                                                 on_notice=lambda n: notice(n, src, quiet), raw=raw,
                                                 progress=bar.update)


def develop_command(
    inputs: Annotated[list[Path], typer.Argument(help="RAW files (DNG, CR2, NEF, ARW, RAF, ...).", show_default=False, readable=False)],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output file, or a folder (ending in /; created if missing) for several inputs. Default: next to the input.", show_default=False)] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format when -o is not a file name.")] = Fmt.jpg,
    bits: Annotated[Optional[int], typer.Option("--bits", help="8 or 16 bits per channel (PNG/TIFF). Default: 16 for TIFF and for PNG in a wide --colorspace, else 8. dcraw -6.")] = None,
    quality: Annotated[int, typer.Option("--quality", "-q", callback=in_range(1, 100, integer=True), help="JPEG quality, 1..100.")] = 92,
    backend: Annotated[str, typer.Option("--backend", "-b", "--demosaic", help="Demosaicker or learned back-end (see `rawdev backends`).")] = DEFAULT_BACKEND,
    wb: Annotated[str, typer.Option("--wb", callback=check_wb, help="White balance: camera (as shot; else fitted to the embedded preview, else auto, else daylight) | preview | auto (grey-edge) | daylight | R,G,B[,G] multipliers. dcraw -w/-a/-r.")] = "camera",
    highlights: Annotated[Highlights, typer.Option("--highlights", "-H", help="clip (white, default) | unclip (raw values) | blend (recover colour). dcraw -H 0/1/2.")] = Highlights.clip,
    exposure: Annotated[float, typer.Option("--exposure", "-e", callback=in_range(-MAX_EXPOSURE_EV, MAX_EXPOSURE_EV, what="EV"), help="Exposure compensation in EV (stops), -20..20.")] = 0.0,
    auto_bright: Annotated[bool, typer.Option("--auto-bright", help="Brighten so the 99th percentile reaches white (dcraw's default; off here).")] = False,
    curve: Annotated[Curve, typer.Option("--curve", help="srgb: the IEC 61966-2-1 transfer curve; linear: linear sRGB values (for further processing).")] = Curve.srgb,
    colorspace: Annotated[ColourSpace, typer.Option("--colorspace", help="Output colour space; its ICC profile is embedded. PNG/TIFF in a wide space default to 16 bits (8 bits cannot hold sRGB to a level).")] = ColourSpace.srgb,
    look: Annotated[str, typer.Option("--look", help="neutral (default) | camera: the camera's look, fitted to the file's embedded preview | a look file from `rawdev look fit`.")] = "neutral",
    lens: Annotated[str, typer.Option("--lens", help="off (default) | auto: correct distortion, vignetting and lateral CA for the file's camera and lens (lensfun) | \"Maker Model\" of the lens.")] = "off",
    no_orient: Annotated[bool, typer.Option("--no-orient", help="Keep the sensor orientation (do not rotate pixels).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    device: Annotated[Device, typer.Option("--device", help="Where learned back-ends run.")] = Device.auto,
    tile: Annotated[Optional[int], typer.Option("--tile", callback=in_range(*TILE_RANGE, what="pixels", integer=True), help="Tile size for learned back-ends (memory vs. speed), 32..8192; default per back-end and device.")] = None,
    noise: Annotated[Optional[float], typer.Option("--noise", callback=in_range(0.0, 1.0), help="Noise level for noise-aware back-ends (sigma in their input domain, 0..1); default from the file.")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Write the camera's embedded JPEG preview instead of developing (fast; orientation applied). dcraw -e.")] = False,
    allow_black: Annotated[bool, typer.Option("--allow-black", help="Develop a file whose sensor data or picture hold no content (all black, all clipped, one flat value): a real lens-cap frame. Without it such a file is an error, as a damaged file usually is the cause.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No notices.")] = False,
) -> None:
    """Develop RAW files to sRGB images, with EXIF, an sRGB ICC profile, and orientation applied."""
    _develop(inputs, output, fmt, bits, quality, backend, wb, highlights, exposure, auto_bright, curve,
             colorspace, look, lens, no_orient, overwrite, device, tile, noise, preview, allow_black, quiet)


@handle_errors
def _develop(inputs, output, fmt, bits, quality, backend, wb, highlights, exposure, auto_bright, curve,
             colorspace, look, lens, no_orient, overwrite, device, tile, noise, preview, allow_black, quiet):
    from ..config import PipelineConfig

    if len(inputs) > 1 and output is not None and not names_folder(output):
        raise UsageError(f"several inputs need -o to be a folder (end it with /): {printable(output)} is not one")
    if bits not in (None, 8, 16):
        raise UsageError(f"--bits must be 8 or 16, got {bits}")
    planned, refused = plan_outputs(inputs, output, fmt.value)
    failed = len(refused)
    for src, why in refused:
        _report(src, OutputError(why, src))
    for src, dst in planned:
        if preview:
            from ..io.preview import write_preview

            try:
                write_preview(src, dst, quality=quality, overwrite=overwrite)
                if not quiet:
                    print(f"{printable(src)} -> {printable(dst)} (embedded preview)")
            except UsageError:
                raise
            except Exception as e:  # noqa: BLE001
                if len(inputs) == 1:
                    raise
                failed += 1
                _report(src, e)
            continue
        from ..io.write import default_bits, format_for

        out_bits = bits or default_bits(format_for(dst), colorspace.value)
        cfg = PipelineConfig(
            backend=backend, wb=parse_wb(wb), highlights=highlights.value, exposure_ev=exposure,
            auto_bright=auto_bright, curve=curve.value, colorspace=colorspace.value, look=parse_look(look), lens=parse_lens(lens),
            apply_orientation=not no_orient,
            output_bits=out_bits, device=device.value, tile=tile, noise=noise, allow_black=allow_black,
        )
        if len(inputs) == 1:
            develop_file(src, dst, cfg, quality=quality, overwrite=overwrite, quiet=quiet)
            if not quiet:
                print(f"{printable(src)} -> {printable(dst)}")
            return
        try:
            develop_file(src, dst, cfg, quality=quality, overwrite=overwrite, quiet=quiet)
            if not quiet:
                print(f"{printable(src)} -> {printable(dst)}")
        except UsageError:
            raise
        except Exception as e:  # noqa: BLE001 - keep going; report each file
            failed += 1
            _report(src, e)
    if failed:
        raise typer.Exit(1)


def _report(src: Path, e: Exception) -> None:
    import sys

    from ..errors import RawdevError

    msg = e.one_line() if isinstance(e, RawdevError) else f"{printable(src)}: {type(e).__name__}: {' '.join(str(e).split())}"
    print(f"rawdev: error: {msg}", file=sys.stderr)
