"""``rawdev batch``: develop files and folders into an output folder, in parallel, one isolated worker
process per job slot (see :mod:`rawdev.batch`), or on the workers of a Dask cluster
(``--cluster``, see :mod:`rawdev.cluster`)."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..backends.registry import DEFAULT_BACKEND
from ..errors import UsageError, printable
from ._options import (MAX_EXPOSURE_EV, TILE_RANGE, check_max_memory, check_wb, handle_errors, in_range,
                       interrupt_on_sigterm, parse_lens, parse_look, parse_wb)
from .develop import ColourSpace, Curve, Device, Fmt, Highlights

__all__ = ["batch_command", "register"]


def batch_command(
    inputs: Annotated[list[Path], typer.Argument(help="RAW files and folders (searched recursively; RAW extensions in any case).", show_default=False, readable=False)],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Output folder; the input folders' structure is mirrored under it. Created if missing.", show_default=False)],
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")] = Fmt.jpg,
    bits: Annotated[Optional[int], typer.Option("--bits", help="8 or 16 bits per channel (PNG/TIFF). Default: 16 for TIFF and for PNG in a wide --colorspace, else 8.")] = None,
    quality: Annotated[int, typer.Option("--quality", "-q", callback=in_range(1, 100, integer=True), help="JPEG quality, 1..100.")] = 92,
    backend: Annotated[str, typer.Option("--backend", "-b", "--demosaic", help="Demosaicker or learned back-end (see `rawdev backends`).")] = DEFAULT_BACKEND,
    wb: Annotated[str, typer.Option("--wb", callback=check_wb, help="White balance: camera (as shot; else fitted to the embedded preview, else auto, else daylight) | preview | auto (grey-edge) | daylight | R,G,B[,G] multipliers. dcraw -w/-a/-r.")] = "camera",
    highlights: Annotated[Highlights, typer.Option("--highlights", "-H", help="clip | unclip | blend.")] = Highlights.clip,
    exposure: Annotated[float, typer.Option("--exposure", "-e", callback=in_range(-MAX_EXPOSURE_EV, MAX_EXPOSURE_EV, what="EV"), help="Exposure compensation in EV (stops), -20..20.")] = 0.0,
    auto_bright: Annotated[bool, typer.Option("--auto-bright", help="Brighten so the 99th percentile reaches white.")] = False,
    curve: Annotated[Curve, typer.Option("--curve", help="srgb transfer curve, or linear values.")] = Curve.srgb,
    colorspace: Annotated[ColourSpace, typer.Option("--colorspace", help="Output colour space; its ICC profile is embedded.")] = ColourSpace.srgb,
    look: Annotated[str, typer.Option("--look", help="neutral | camera (fitted to each file's preview) | a look file from `rawdev look fit`, for the whole batch.")] = "neutral",
    lens: Annotated[str, typer.Option("--lens", help="off | auto | \"Maker Model\": lens corrections from lensfun.")] = "off",
    no_orient: Annotated[bool, typer.Option("--no-orient", help="Keep the sensor orientation.")] = False,
    device: Annotated[Device, typer.Option("--device", help="Where learned back-ends run.")] = Device.auto,
    tile: Annotated[int, typer.Option("--tile", callback=in_range(*TILE_RANGE, what="pixels", integer=True), help="Tile size for learned back-ends, 32..8192.")] = 512,
    noise: Annotated[Optional[float], typer.Option("--noise", callback=in_range(0.0, 1.0), help="Noise level for noise-aware back-ends (0..1).")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Extract each file's embedded JPEG preview (orientation applied) instead of developing: fast contact sheets.")] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", callback=in_range(1, 1024, integer=True), help="Worker processes. Default: the number of cores.", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", callback=in_range(1, 1024, integer=True), help="Threads per worker. Default: cores // jobs.", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", callback=in_range(0.0, None, what="seconds"), help="Seconds one file may take before its worker is stopped and the file fails (0: no limit).")] = 600.0,
    max_memory: Annotated[str, typer.Option("--max-memory", callback=check_max_memory, help="Memory one worker may map for one file, e.g. 4G or 1500M (beyond its ~0.6 GB start-up footprint); a file needing more fails alone. 'none': no limit.")] = "none",
    skip_existing: Annotated[bool, typer.Option("--skip-existing/--no-skip-existing", help="Skip inputs whose output exists (outputs are written atomically, so an existing one is complete: a re-run resumes). With --no-skip-existing an existing output is a failure.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failure (files being developed are abandoned; nothing partial is left).")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per file on stdout (for scripts); the summary goes to stderr.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar, no per-file lines or notices; failures are still reported.")] = False,
    allow_black: Annotated[bool, typer.Option("--allow-black", help="Develop files whose sensor data or picture hold no content (all black, all clipped, one flat value) instead of failing them.")] = False,
    cluster: Annotated[Optional[str], typer.Option("--cluster", help="Run on the workers of this Dask scheduler, e.g. tcp://head:8786 (pip install 'rawdev[cluster]'; see docs/batch.md). --jobs is then the cluster's.", show_default=False)] = None,
    scheduler_file: Annotated[Optional[Path], typer.Option("--scheduler-file", help="Run on the Dask scheduler described by this file (`dask scheduler --scheduler-file F`).", show_default=False)] = None,
) -> None:
    """Develop many RAW files into the folder given by -o, in parallel; one line per file and a summary.

    Exit codes: 0 every file developed (or skipped), 1 some failed, 2 usage error, 130 interrupted.
    """
    code = _batch(inputs, out_dir, fmt, bits, quality, backend, wb, highlights, exposure, auto_bright, curve,
                  colorspace, look, lens, no_orient, device, tile, noise, preview, jobs, threads, timeout, max_memory,
                  skip_existing, overwrite, fail_fast, json_lines, quiet, cluster, scheduler_file, allow_black)
    if code:
        raise typer.Exit(code)


class _Reporter:
    """Per-file lines, notices, a progress bar on a terminal, and the summary."""

    def __init__(self, total: int, json_lines: bool, quiet: bool) -> None:
        self.total = total
        self.n = 0
        self.json = json_lines
        self.quiet = quiet
        self.progress = None
        self.task = None
        if not json_lines and not quiet and sys.stdout.isatty() and sys.stderr.isatty() and total > 0:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=Console(stderr=True, highlight=False), transient=True,
            )
            self.task = self.progress.add_task("developing", total=total)
            self.progress.start()
        self.counts = {"developed": 0, "failed": 0, "skipped": 0}

    def _out(self, text: str, err: bool = False) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr if err else sys.stdout, flush=True)

    def file(self, r) -> None:
        self.n += 1
        if r.status in self.counts:
            self.counts[r.status] += 1
        if self.json:
            print(json.dumps(r.to_json()), flush=True)
        where = f"[{self.n}/{self.total}]"
        if r.status == "failed":
            self._out(f"rawdev: error: {printable(r.src)}: {r.reason}", err=True)
        elif not self.quiet and not self.json:
            if r.status == "developed":
                self._out(f"{where} {printable(r.src)} -> {printable(r.dst)} ({r.seconds:.1f} s)")
            elif r.status == "skipped":
                self._out(f"{where} {printable(r.src)}: skipped, {printable(r.dst)} exists")
            else:
                self._out(f"{where} {printable(r.src)}: not processed ({r.reason})")
        if not self.quiet:
            for n in r.notices:
                self._out(f"rawdev: note: {printable(r.src)}: {n}", err=True)
        if self.progress is not None:
            c = self.counts
            self.progress.update(self.task, advance=1,
                                 description=f"{c['developed']} developed, {c['failed']} failed, {c['skipped']} skipped")

    def note(self, text: str) -> None:
        if not self.quiet:
            self._out(f"rawdev: note: {text}", err=True)

    def close(self, summary) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        line = f"{summary.line()} in {summary.seconds:.1f} s" + (" (interrupted)" if summary.interrupted else "")
        print(line, file=sys.stderr if (self.json or self.quiet) else sys.stdout, flush=True)


@handle_errors
def _batch(inputs, out_dir, fmt, bits, quality, backend, wb, highlights, exposure, auto_bright, curve, colorspace,
           look, lens, no_orient, device, tile, noise, preview, jobs, threads, timeout, max_memory, skip_existing,
           overwrite, fail_fast, json_lines, quiet, cluster=None, scheduler_file=None, allow_black=False) -> int:
    from ..batch import BatchSummary, cpu_count, find_inputs, parse_memory, plan_jobs, run_batch, FileResult

    t0 = time.monotonic()
    if bits not in (None, 8, 16):
        raise UsageError(f"--bits must be 8 or 16, got {bits}")
    if fmt.value == "jpg" and bits == 16:
        raise UsageError("JPEG is 8-bit; use --bits 8 or --format png/tif")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError("the output must be a folder", out_dir)
    mem = parse_memory(max_memory)
    on_cluster = cluster is not None or scheduler_file is not None
    if cluster is not None and scheduler_file is not None:
        raise UsageError("give --cluster or --scheduler-file, not both")
    cfg = None
    if not preview:
        from ..backends import registry
        from ..config import PipelineConfig
        from ..io.write import default_bits

        spec = registry.get(backend)  # an unknown back-end is a usage error before any work starts
        if spec.kind == "learned" and device.value == "cuda" and not on_cluster:  # the cluster's workers are checked
            import torch

            if not torch.cuda.is_available():  # would fail every file the same way
                from ..errors import BackendError

                raise BackendError("--device cuda asked for, but CUDA is not available on this machine")
        cfg = PipelineConfig(
            backend=backend, wb=parse_wb(wb), highlights=highlights.value, exposure_ev=exposure,
            auto_bright=auto_bright, curve=curve.value, apply_orientation=not no_orient,
            output_bits=bits or default_bits(fmt.value, colorspace.value), device=device.value, tile=tile, noise=noise,
            colorspace=colorspace.value, look=parse_look(look), lens=parse_lens(lens),
            allow_black=allow_black,
        )
    client = pool_factory = None
    if on_cluster:
        from ..cluster import connect, pool_factory as cluster_pool

        client = connect(cluster, scheduler_file)
        try:
            pool_factory = cluster_pool(client, cfg, threads=threads)
        except BaseException:
            client.close()
            raise
    pairs, walk_errors = find_inputs(inputs)
    planned, refused = plan_jobs(pairs, out_dir, fmt.value)
    total = len(planned) + len(refused) + len(walk_errors)
    rep = _Reporter(total, json_lines, quiet)
    summary = BatchSummary()
    if total == 0:
        rep.note("no RAW files found in " + ", ".join(str(p) for p in inputs))
    old_term = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    try:
        for path, reason in walk_errors:
            r = FileResult(path, None, "failed", reason, "InputError")
            summary.add(r)
            rep.file(r)
        for r in refused:
            summary.add(r)
            rep.file(r)
        if fail_fast and summary.failed:
            for j in planned:
                r = FileResult(j.src, j.dst, "not-processed", "cancelled (--fail-fast)")
                summary.add(r)
                rep.file(r)
            planned = []
        n_jobs = jobs or min(cpu_count(), max(1, len(planned)))
        results = run_batch(planned, cfg, jobs=n_jobs, quality=quality, overwrite=overwrite, skip_existing=skip_existing,
                            fail_fast=fail_fast, timeout=timeout or None, max_memory=mem, threads=threads, preview=preview,
                            pool_factory=pool_factory)
        try:
            for r in results:
                summary.add(r)
                rep.file(r)
        finally:
            results.close()  # kills any worker still running and removes its temporary files
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if client is not None:
            client.close()
        summary.seconds = time.monotonic() - t0
        rep.close(summary)
    return summary.exit_code


def register(app: typer.Typer) -> None:
    """Mount ``rawdev batch`` on the application."""
    app.command("batch", no_args_is_help=True)(batch_command)
