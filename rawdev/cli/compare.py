"""``rawdev compare``: develop a file (or every RAW file in a folder) with several back-ends and write a
contact sheet per file plus a short report (see :mod:`rawdev.compare`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..backends.registry import COMPARE_BACKENDS
from ..config import PipelineConfig
from ..errors import UsageError
from ._options import (DEFAULT_HIGHLIGHTS, DEFAULT_TIMEOUT_S, AutoBrightOpt, BackendsOpt, DeviceOpt, ExposureOpt, HighlightsOpt,
                       MaxMemoryOpt, NoOrientOpt, QuietOpt, TileOpt, TimeoutOpt, WbOpt, handle_errors, pipeline_config)

__all__ = ["compare_command", "register", "CompareOptions"]

DEFAULT_BACKENDS = ",".join(COMPARE_BACKENDS)


@dataclass(frozen=True)
class CompareOptions:
    """What ``rawdev compare`` was asked: files, back-ends, reference, sheet layout, limits, and the
    developer's settings shared by every back-end (``config``; its ``backend`` is replaced per run)."""

    inputs: tuple[Path, ...]
    backends: tuple[str, ...]  # as given; the reference back-end, if any, is put first
    out_dir: Path
    config: PipelineConfig
    reference: Path | None = None  # a ground-truth image
    reference_backend: str | None = None  # or a back-end whose result is the reference
    crops: int = 3  # zoomed regions per sheet
    crop_size: int = 48  # side of a region, in image pixels
    zoom: int = 5  # enlargement of the regions
    timeout_s: float | None = DEFAULT_TIMEOUT_S  # per back-end and file; None: no limit
    max_memory: int | None = None  # bytes one back-end run may map; None: no limit
    quiet: bool = False


@handle_errors
def compare_command(
    inputs: Annotated[list[Path], typer.Argument(help="RAW files or folders (every RAW file inside, recursively).", show_default=False, readable=False)],
    backends: BackendsOpt = DEFAULT_BACKENDS,
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for the contact sheets and report.md / report.html (created; earlier sheets are replaced).")] = Path("rawdev-compare"),
    reference: Annotated[Optional[Path], typer.Option("--reference", "-r", help="Ground-truth image (PNG/TIFF/JPEG, sRGB, developed size and orientation): adds PSNR and SSIM. One input file only.")] = None,
    reference_backend: Annotated[Optional[str], typer.Option("--reference-backend", help="Use this back-end's result as the reference for PSNR and SSIM (e.g. libraw).")] = None,
    crops: Annotated[int, typer.Option("--crops", min=1, max=6, help="Number of zoomed regions.")] = 3,
    crop_size: Annotated[int, typer.Option("--crop-size", min=8, help="Side of each region, in image pixels.")] = 48,
    zoom: Annotated[int, typer.Option("--zoom", min=1, max=16, help="Enlargement of the regions (nearest neighbour).")] = 5,
    wb: WbOpt = PipelineConfig.wb,
    highlights: HighlightsOpt = DEFAULT_HIGHLIGHTS,
    exposure: ExposureOpt = PipelineConfig.exposure_ev,
    auto_bright: AutoBrightOpt = PipelineConfig.auto_bright,
    no_orient: NoOrientOpt = not PipelineConfig.apply_orientation,
    device: DeviceOpt = PipelineConfig.device,
    tile: TileOpt = PipelineConfig.tile,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    max_memory: MaxMemoryOpt = "none",
    quiet: QuietOpt = False,
) -> None:
    """Develop with several back-ends side by side: a contact sheet (whole image and zoomed crops where
    they differ most, with time, memory, PSNR/SSIM) and a short report. Exit 1 if a back-end failed."""
    from ..batch import parse_memory

    config = pipeline_config(backend=PipelineConfig.backend, wb=wb, highlights=highlights, exposure=exposure,
                             auto_bright=auto_bright, no_orient=no_orient, device=device, tile=tile)
    code = _compare(CompareOptions(
        inputs=tuple(inputs), backends=tuple(b.strip() for b in backends.split(",") if b.strip()), out_dir=out_dir,
        config=config, reference=reference, reference_backend=reference_backend, crops=crops, crop_size=crop_size,
        zoom=zoom, timeout_s=timeout or None, max_memory=parse_memory(max_memory), quiet=quiet))
    if code:
        raise typer.Exit(code)


def _sheet_name(src: Path, rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    return "__".join(parts) + ".compare.png"


def _compare(opts: CompareOptions) -> int:
    """Compare the back-ends on every input; the exit code (1 if a back-end failed on a file)."""
    from ..backends import registry
    from ..batch import find_inputs
    from ..compare import compare_file, load_reference, write_report, write_sheet

    names = list(opts.backends)
    reference, reference_backend, quiet, inputs, out_dir = (opts.reference, opts.reference_backend, opts.quiet,
                                                             list(opts.inputs), opts.out_dir)
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
    cfg = opts.config
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
                            reference_backend=reference_backend, crops=opts.crops, crop_size=opts.crop_size,
                            timeout=opts.timeout_s, max_memory=opts.max_memory, on_run=on_run)
        if not any(r.ok for r in comp.runs):
            failed += 1
            print(f"rawdev: error: {src}: no back-end could develop it; no contact sheet", file=sys.stderr)
            continue
        failed += sum(not r.ok for r in comp.runs)
        for n in comp.notes:
            print(f"rawdev: note: {src}: {n}", file=sys.stderr)
        sheet = write_sheet(comp, out_dir / _sheet_name(src, rel), zoom=opts.zoom)
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
