"""``rawdev compare``: develop a file (or every RAW file in a folder) with several back-ends and write a
contact sheet per file plus a short report (see :mod:`rawdev.compare`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..backends.registry import COMPARE_BACKENDS
from ..errors import UsageError
from ._options import handle_errors, parse_wb
from .develop import Device, Highlights

__all__ = ["compare_command", "register"]

DEFAULT_BACKENDS = ",".join(COMPARE_BACKENDS)


def compare_command(
    inputs: Annotated[list[Path], typer.Argument(help="RAW files or folders (every RAW file inside, recursively).", show_default=False, readable=False)],
    backends: Annotated[str, typer.Option("--backends", "-b", help="Comma-separated back-ends (see `rawdev backends`); 'libraw' is LibRaw's own AHD demosaic.")] = DEFAULT_BACKENDS,
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for the contact sheets and report.md / report.html (created; earlier sheets are replaced).")] = Path("rawdev-compare"),
    reference: Annotated[Optional[Path], typer.Option("--reference", "-r", help="Ground-truth image (PNG/TIFF/JPEG, sRGB, developed size and orientation): adds PSNR and SSIM. One input file only.")] = None,
    reference_backend: Annotated[Optional[str], typer.Option("--reference-backend", help="Use this back-end's result as the reference for PSNR and SSIM (e.g. libraw).")] = None,
    crops: Annotated[int, typer.Option("--crops", min=1, max=6, help="Number of zoomed regions.")] = 3,
    crop_size: Annotated[int, typer.Option("--crop-size", min=8, help="Side of each region, in image pixels.")] = 48,
    zoom: Annotated[int, typer.Option("--zoom", min=1, max=16, help="Enlargement of the regions (nearest neighbour).")] = 5,
    wb: Annotated[str, typer.Option("--wb", help="White balance: camera | daylight | auto | R,G,B[,G].")] = "camera",
    highlights: Annotated[Highlights, typer.Option("--highlights", "-H", help="clip | unclip | blend.")] = Highlights.clip,
    exposure: Annotated[float, typer.Option("--exposure", "-e", help="Exposure compensation in EV.")] = 0.0,
    auto_bright: Annotated[bool, typer.Option("--auto-bright", help="Brighten so the 99th percentile reaches white.")] = False,
    no_orient: Annotated[bool, typer.Option("--no-orient", help="Keep the sensor orientation.")] = False,
    device: Annotated[Device, typer.Option("--device", help="Where learned back-ends run.")] = Device.auto,
    tile: Annotated[int, typer.Option("--tile", min=32, help="Tile size for learned back-ends.")] = 512,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds one back-end may take on one file (0: no limit).")] = 600.0,
    max_memory: Annotated[str, typer.Option("--max-memory", help="Memory limit per back-end run, e.g. 4G ('none': no limit).")] = "none",
    quiet: Annotated[bool, typer.Option("--quiet", help="Only errors.")] = False,
) -> None:
    """Develop with several back-ends side by side: a contact sheet (whole image and zoomed crops where
    they differ most, with time, memory, PSNR/SSIM) and a short report. Exit 1 if a back-end failed."""
    code = _compare(inputs, backends, out_dir, reference, reference_backend, crops, crop_size, zoom, wb, highlights,
                    exposure, auto_bright, no_orient, device, tile, timeout, max_memory, quiet)
    if code:
        raise typer.Exit(code)


def _sheet_name(src: Path, rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    return "__".join(parts) + ".compare.png"


@handle_errors
def _compare(inputs, backends, out_dir, reference, reference_backend, crops, crop_size, zoom, wb, highlights,
             exposure, auto_bright, no_orient, device, tile, timeout, max_memory, quiet) -> int:
    from ..backends import registry
    from ..batch import find_inputs, parse_memory
    from ..compare import compare_file, load_reference, write_report, write_sheet
    from ..config import PipelineConfig

    names = [b.strip() for b in backends.split(",") if b.strip()]
    if reference_backend:
        names = list(dict.fromkeys([reference_backend] + names))
    if not names:
        raise UsageError("--backends names no back-end")
    for n in names:
        registry.get(n)  # unknown names are usage errors, with suggestions
    if reference is not None and reference_backend:
        raise UsageError("give --reference or --reference-backend, not both")
    pairs, walk_errors = find_inputs(inputs)
    if reference is not None and (len(pairs) != 1 or any(p.is_dir() for p in inputs)):
        raise UsageError("--reference is a ground-truth image for one file; give a single RAW file")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError("the output must be a folder", out_dir)
    ref_img = load_reference(reference) if reference is not None else None
    mem = parse_memory(max_memory)
    cfg = PipelineConfig(wb=parse_wb(wb), highlights=highlights.value, exposure_ev=exposure, auto_bright=auto_bright,
                         apply_orientation=not no_orient, device=device.value, tile=tile)
    failed = 0
    for path, reason in walk_errors:
        failed += 1
        print(f"rawdev: error: {path}: {reason}", file=sys.stderr)
    if not pairs:
        print(f"rawdev: note: no RAW files found in {', '.join(map(str, inputs))}", file=sys.stderr)
        return 1 if failed else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for src, rel in pairs:
        if not quiet:
            print(f"{src}:", flush=True)

        def on_run(run, src=src):
            if run.ok:
                if not quiet:
                    print(f"  {run.name:<12} {run.seconds:7.2f} s  {run.peak_mb:6.0f} MB" + (f"  (ran as {run.used})" if run.used not in (run.name, registry.LIBRAW_FALLBACK) else ""), flush=True)
                    for n in run.notices:
                        print(f"rawdev: note: {src}: {run.name}: {n}", file=sys.stderr)
            else:
                print(f"rawdev: error: {src}: back-end {run.name}: {run.reason}", file=sys.stderr, flush=True)

        comp = compare_file(src, names, cfg, reference_image=ref_img, reference_name=reference.name if reference else None,
                            reference_backend=reference_backend, crops=crops, crop_size=crop_size,
                            timeout=timeout or None, max_memory=mem, on_run=on_run)
        if not any(r.ok for r in comp.runs):
            failed += 1
            print(f"rawdev: error: {src}: no back-end could develop it; no contact sheet", file=sys.stderr)
            continue
        failed += sum(not r.ok for r in comp.runs)
        for n in comp.notes:
            print(f"rawdev: note: {src}: {n}", file=sys.stderr)
        sheet = write_sheet(comp, out_dir / _sheet_name(src, rel), zoom=zoom)
        if not quiet:
            for r in comp.runs:
                if r.psnr is not None:
                    print(f"  {r.name:<12} PSNR {r.psnr:6.2f} dB" + (f"  SSIM {r.ssim:.4f}" if r.ssim is not None else "") + f"  vs {comp.reference_name}")
            print(f"  -> {sheet}", flush=True)
        for r in comp.runs:  # the report needs the numbers only; free the images
            r.image = None
        comp.reference = comp.spread = None
        items.append((comp, sheet))
    if items:
        md, html_path = write_report(items, out_dir)
        if not quiet:
            print(f"report: {md} and {html_path}")
    return 1 if failed else 0


def register(app: typer.Typer) -> None:
    """Mount ``rawdev compare`` on the application."""
    app.command("compare", no_args_is_help=True)(compare_command)
