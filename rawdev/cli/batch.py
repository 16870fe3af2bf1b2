"""``rawdev batch``: develop files and folders into an output folder, in parallel, one isolated worker
process per job slot (see :mod:`rawdev.batch`), or on the workers of a Dask cluster
(``--cluster``, see :mod:`rawdev.cluster`)."""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import PipelineConfig
from ..errors import UsageError, printable
from ._options import (parse_size, DEFAULT_COLOURSPACE, DEFAULT_CURVE, DEFAULT_DENOISE, DEFAULT_HIGHLIGHTS, DenoiseOpt, DEFAULT_QUALITY, DEFAULT_TIMEOUT_S, AllowBlackOpt, AutoBrightOpt, BackendOpt, BitsOpt, ColourSpaceOpt, CurveOpt, DeviceOpt, ExposureOpt, Fmt, FormatOpt, HighlightsOpt,
                       JsonOpt, LensOpt, LookOpt, MaxMemoryOpt, NoiseSigmaOpt, NoOrientOpt, OrientOpt, HalfSizeOpt, SizeOpt, CropOpt, refuse_crop_of_previews, OverwriteOpt, PreviewOpt,
                       QualityOpt, QuietOpt, ThreadsOpt, TileOpt, TimeoutOpt, WbOpt, handle_errors, in_range,
                       interrupt_on_sigterm, pipeline_config)

__all__ = ["batch_command", "register", "BatchOptions"]


@dataclass(frozen=True)
class BatchOptions:
    """What ``rawdev batch`` was asked: inputs, output folder, how to run the workers, how to report,
    and the developer's settings (``config``, None with ``--preview``: nothing is developed)."""

    inputs: tuple[Path, ...]
    out_dir: Path
    fmt: str  # "jpg", "png" or "tif"
    quality: int  # JPEG quality, 1..100
    config: PipelineConfig | None
    jobs: int | None = None  # worker processes; None: the number of cores (at most one per file)
    threads: int | None = None  # threads per worker; None: cores // jobs
    timeout_s: float | None = DEFAULT_TIMEOUT_S  # None: no limit
    max_memory: int | None = None  # bytes one worker may map for one file; None: no limit
    skip_existing: bool = True
    overwrite: bool = False
    fail_fast: bool = False
    json_lines: bool = False
    quiet: bool = False
    cluster: str | None = None  # a Dask scheduler's address
    scheduler_file: Path | None = None  # or its scheduler file
    preview_size: tuple[int, int] | None = None  # --preview --size: the box the previews fit within

    @property
    def preview(self) -> bool:
        return self.config is None


@handle_errors
def batch_command(
    inputs: Annotated[list[Path], typer.Argument(help="RAW files and folders (searched recursively; RAW extensions in any case).", show_default=False, readable=False)],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Output folder; the input folders' structure is mirrored under it. Created if missing.", show_default=False)],
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
    device: DeviceOpt = PipelineConfig.device,
    tile: TileOpt = PipelineConfig.tile,
    noise: NoiseSigmaOpt = PipelineConfig.noise,
    denoise: DenoiseOpt = DEFAULT_DENOISE,
    preview: PreviewOpt = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", callback=in_range(1, 1024, integer=True), help="Worker processes. Default: the number of cores.", show_default=False)] = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    max_memory: MaxMemoryOpt = "none",
    skip_existing: Annotated[bool, typer.Option("--skip-existing/--no-skip-existing", help="Skip inputs whose output exists (outputs are written atomically, so an existing one is complete: a re-run resumes). With --no-skip-existing an existing output is a failure.")] = True,
    overwrite: OverwriteOpt = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failure (files being developed are abandoned; nothing partial is left).")] = False,
    json_lines: JsonOpt = False,
    quiet: QuietOpt = False,
    allow_black: AllowBlackOpt = PipelineConfig.allow_black,
    cluster: Annotated[Optional[str], typer.Option("--cluster", help="Run on the workers of this Dask scheduler, e.g. tcp://head:8786 (pip install 'rawdev[cluster]'; see docs/batch.md). --jobs is then the cluster's.", show_default=False)] = None,
    scheduler_file: Annotated[Optional[Path], typer.Option("--scheduler-file", help="Run on the Dask scheduler described by this file (`dask scheduler --scheduler-file F`).", show_default=False)] = None,
) -> None:
    """Develop many RAW files into the folder given by -o, in parallel; one line per file and a summary.

    Exit codes: 0 every file developed (or skipped), 1 some failed, 2 usage error, 130 interrupted.
    """
    from ..batch import parse_memory
    from ..io.write import default_bits

    refuse_crop_of_previews(preview, crop)
    if fmt in (Fmt.jpg, Fmt.webp) and bits == 16:
        raise UsageError(f"{'JPEG' if fmt == Fmt.jpg else 'WebP'} is 8-bit; use --bits 8 or --format png/tif")
    if bits == 32 and fmt != Fmt.tif:
        raise UsageError("32-bit float samples are written to TIFF only; use --format tif or --bits 8/16")
    config = None if preview else pipeline_config(
        backend=backend, wb=wb, highlights=highlights, exposure=exposure, auto_bright=auto_bright, curve=curve,
        colorspace=colorspace, look=look, lens=lens, no_orient=no_orient, orient=orient, half_size=half_size, size=size, crop=crop, device=device, tile=tile, noise=noise, denoise=denoise,
        allow_black=allow_black, bits=bits or default_bits(fmt.value, colorspace.value))
    code = _batch(BatchOptions(
        inputs=tuple(inputs), out_dir=out_dir, fmt=fmt.value, quality=quality, config=config, jobs=jobs,
        threads=threads, timeout_s=timeout or None, max_memory=parse_memory(max_memory), skip_existing=skip_existing,
        overwrite=overwrite, fail_fast=fail_fast, json_lines=json_lines, quiet=quiet, cluster=cluster,
        scheduler_file=scheduler_file, preview_size=parse_size(size) if preview and size else None))
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


def _batch(opts: BatchOptions) -> int:
    """Run a batch; the exit code (0 all developed or skipped, 1 some failed)."""
    from ..batch import BatchSummary, FileResult, cpu_count, find_inputs, plan_jobs, run_batch

    t0 = time.monotonic()
    out_dir, cfg = opts.out_dir, opts.config
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError("the output must be a folder", out_dir)
    on_cluster = opts.cluster is not None or opts.scheduler_file is not None
    if opts.cluster is not None and opts.scheduler_file is not None:
        raise UsageError("give --cluster or --scheduler-file, not both")
    if cfg is not None:
        from ..backends import registry

        spec = registry.get(cfg.backend)  # an unknown back-end is a usage error before any work starts
        if spec.kind == "learned" and cfg.device.startswith("cuda") and not on_cluster:  # the cluster's workers are checked
            import torch

            if not torch.cuda.is_available():  # would fail every file the same way
                from ..errors import BackendError

                raise BackendError("--device cuda asked for, but CUDA is not available on this machine")
    client = pool_factory = None
    if on_cluster:
        from ..cluster import connect, pool_factory as cluster_pool

        client = connect(opts.cluster, opts.scheduler_file)
        try:
            pool_factory = cluster_pool(client, cfg, threads=opts.threads)
        except BaseException:
            client.close()
            raise
    pairs, walk_errors = find_inputs(list(opts.inputs))
    planned, refused = plan_jobs(pairs, out_dir, opts.fmt)
    total = len(planned) + len(refused) + len(walk_errors)
    rep = _Reporter(total, opts.json_lines, opts.quiet)
    summary = BatchSummary()
    if total == 0:
        rep.note("no RAW files found in " + ", ".join(str(p) for p in opts.inputs))
    old_term = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    try:
        for path, reason in walk_errors:
            r = FileResult(path, None, "failed", reason, "InputError")
            summary.add(r)
            rep.file(r)
        for r in refused:
            summary.add(r)
            rep.file(r)
        if opts.fail_fast and summary.failed:
            for j in planned:
                r = FileResult(j.src, j.dst, "not-processed", "cancelled (--fail-fast)")
                summary.add(r)
                rep.file(r)
            planned = []
        n_jobs = opts.jobs or min(cpu_count(), max(1, len(planned)))
        results = run_batch(planned, cfg, jobs=n_jobs, quality=opts.quality, overwrite=opts.overwrite,
                            skip_existing=opts.skip_existing, fail_fast=opts.fail_fast, timeout=opts.timeout_s,
                            max_memory=opts.max_memory, threads=opts.threads, preview=opts.preview,
                            preview_size=opts.preview_size, pool_factory=pool_factory)
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
