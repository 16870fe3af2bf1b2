"""Batch development: many RAW files, each developed in an isolated worker process.

The supervisor (the calling process) never decodes anything. It hands one file at a time to each of
``jobs`` worker processes, started with the ``spawn`` method (never ``fork``: LibRaw's OpenMP and
torch's thread pools can deadlock in a forked child, rawpy issue #265), and watches them:

* a worker that dies while it holds a file (a native crash in the decoder, a kill by the kernel's
  out-of-memory killer) fails that file alone; a fresh worker replaces it and the batch goes on;
* a file still running after ``timeout`` seconds has its worker killed (SIGKILL) and fails alone;
* each worker runs under an address-space limit (``RLIMIT_AS``, ``max_memory`` bytes above its
  footprint after start-up), so a file that would exhaust memory fails with an out-of-memory error
  in its own worker instead of taking the machine down;
* each worker caps its thread pools (OpenMP, BLAS, torch) at ``threads`` so that ``jobs`` workers do
  not oversubscribe the cores;
* each worker is retired after ``max_tasks`` files (``maxtasksperchild``), bounding slow leaks;
* workers die with the supervisor (``PR_SET_PDEATHSIG``), so ``kill -9`` of a batch stops everything.

The worker processes are :class:`rawdev.workers.WorkerPool` (their own module, shared with
:mod:`rawdev.compare`). A worker runs one *task function* named ``"module:function"``: it takes a task ``dict`` and returns a
result ``dict`` (both picklable). :func:`develop_task` develops one file for ``rawdev batch``;
:mod:`rawdev.compare` has its own. A module may define ``prepare_worker(threads)`` to import and set
up what its tasks need before the worker reports ready, so imports never count against a timeout.

Outputs are written by :func:`rawdev.io.write.write_image` (a temporary file in the destination
folder, then a link or rename), so the final path holds nothing or a complete file whatever happens;
an existing output is therefore complete, and a re-run that skips existing outputs resumes where an
interrupted batch stopped. Inputs are only ever opened for reading.

This module imports neither numpy nor torch at the top, so that a spawned worker can cap its thread
pools before they start.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

from .errors import EXIT_FAILED, EXIT_OK, OutputExistsError
from .io.temporaries import remove_stale_temporaries
from .workers import THREAD_ENV_VARS, WorkerPool, WorkerStartError, cpu_count, default_threads  # noqa: F401 - re-exported

__all__ = [
    "THREAD_ENV_VARS",
    "Job",
    "FileResult",
    "BatchSummary",
    "WorkerPool",
    "WorkerStartError",
    "cpu_count",
    "default_threads",
    "parse_memory",
    "find_inputs",
    "plan_jobs",
    "run_batch",
    "develop_task",
    "preview_task",
    "prepare_worker",
    "remove_stale_temporaries",
    "run",
]

Status = Literal["developed", "failed", "skipped", "not-processed"]


# --------------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True)
class Job:
    """One input file and the output path it develops to."""

    src: Path
    dst: Path


@dataclass
class FileResult:
    """What happened to one input file."""

    src: Path
    dst: Path | None
    status: Status
    reason: str | None = None
    error: str | None = None  # the rawdev error class, e.g. "CorruptFileError"
    seconds: float = 0.0
    backend: str | None = None
    width: int | None = None
    height: int | None = None
    notices: list[str] = field(default_factory=list)
    requested_backend: str | None = None  # the back-end asked for; ``backend`` is the one that ran
    white_balance: str | None = None  # where the gains came from: camera, preview, auto, daylight, custom
    noise: str | None = None  # where a noise-aware back-end's model came from: --noise, profile, estimate

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        return {
            "input": str(self.src),
            # the output path only where a file is there now
            "output": str(self.dst) if self.dst is not None and self.status in ("developed", "skipped") else None,
            "status": self.status,
            "reason": self.reason,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "backend": self.backend,
            "requested_backend": self.requested_backend,
            "white_balance": self.white_balance,
            "noise": self.noise,
            "width": self.width,
            "height": self.height,
            "notices": list(self.notices),
        }


@dataclass
class BatchSummary:
    """Counts over a batch; ``exit_code`` is 0 when every file was developed or skipped."""

    developed: int = 0
    failed: int = 0
    skipped: int = 0
    not_processed: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    def add(self, r: FileResult) -> None:
        if r.status == "developed":
            self.developed += 1
        elif r.status == "failed":
            self.failed += 1
        elif r.status == "skipped":
            self.skipped += 1
        else:
            self.not_processed += 1

    def line(self) -> str:
        s = f"{self.developed} developed, {self.failed} failed, {self.skipped} skipped"
        if self.not_processed:
            s += f", {self.not_processed} not processed"
        return s

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return EXIT_FAILED if (self.failed or self.not_processed) else EXIT_OK


def parse_memory(text: str | None) -> int | None:
    """``"2G"``, ``"1500M"``, ``"512k"``, a byte count, or ``"none"``/``"0"`` -> bytes or None.

    Raises:
        UsageError: not a size, negative, or not finite (``-5G`` is not "no limit").
    """
    from .errors import UsageError

    if text is None:
        return None
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    if t in ("", "none", "0", "off", "unlimited"):
        return None
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    scale = units.get(t[-1], 1)
    num = t[:-1] if t[-1] in units else t
    try:
        value = float(num)
    except ValueError:
        raise UsageError(f"--max-memory {text!r}: use a size like 4G or 1500M, or none") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--max-memory {text!r}: a size must be a positive number, like 4G or 1500M (or none for no limit)")
    if value == 0:
        return None
    return int(value * scale)


def _walk_raw_files(folder: Path, errors: list[tuple[Path, str]]) -> list[Path]:
    from .io.raw import RAW_EXTENSIONS

    found: list[Path] = []

    def onerror(e: OSError) -> None:
        errors.append((Path(e.filename or folder), f"cannot list folder: {e.strerror or e}"))

    for root, dirs, files in os.walk(folder, onerror=onerror):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # also skips macOS ._ folders
        for name in sorted(files):
            if name.startswith("."):  # hidden files, macOS "._IMG_0001.CR2" resource forks
                continue
            if os.path.splitext(name)[1].lower() in RAW_EXTENSIONS:
                found.append(Path(root) / name)
    return found


def find_inputs(inputs: Sequence[str | Path]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Expand files and folders into ``(file, relative path under the output folder)`` pairs.

    Folders are walked recursively; there, files with a RAW extension (any case) are taken and hidden
    files and folders are left out. A file named on the command line is always attempted, whatever its
    extension, so a mistake is reported instead of silently skipped. Returns the pairs and the folders
    that could not be listed, as ``(path, reason)``.
    """
    pairs: list[tuple[Path, Path]] = []
    errors: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(f: Path, rel: Path) -> None:
        key = _resolve(f)
        if key not in seen:  # the same file named twice (or inside a folder also given) runs once
            seen.add(key)
            pairs.append((f, rel))

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in _walk_raw_files(p, errors):
                add(f, f.relative_to(p))
        else:
            add(p, Path(p.name))
    return pairs, errors


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def plan_jobs(pairs: Sequence[tuple[Path, Path]], out_dir: Path, fmt: str) -> tuple[list[Job], list[FileResult]]:
    """Output paths ``out_dir/<relative folders>/<stem>.<fmt>`` for each input.

    Refused up front, as failed results: an output that is one of the inputs, and a second input that
    would develop to the same output as an earlier one (``a.NEF`` and ``a.dng`` in one folder).
    """
    jobs: list[Job] = []
    refused: list[FileResult] = []
    inputs = [src for src, _ in pairs]
    resolved_inputs = {_resolve(s) for s in inputs}
    claimed: dict[Path, Path] = {}
    for src, rel in pairs:
        dst = out_dir / rel.with_suffix(f".{fmt}")
        key = _resolve(dst)
        if key in resolved_inputs or any(_same_file(dst, s) for s in inputs if s.name == dst.name):
            refused.append(FileResult(src, dst, "failed", "output path is an input file; refusing to overwrite it", "OutputError"))
        elif key in claimed:
            refused.append(FileResult(
                src, dst, "failed",
                f"{claimed[key]} develops to the same output; develop one of them separately", "OutputError",
            ))
        else:
            claimed[key] = src
            jobs.append(Job(src, dst))
    return jobs, refused


def _resolve(p: Path) -> Path:
    try:
        return p.resolve()
    except OSError:
        return p.absolute()


# --------------------------------------------------------------------------------------------------
# The batch


def prepare_worker(threads: int) -> None:
    """Import the developer and cap torch's and OpenCV's thread pools (runs once in each worker)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already started
        pass
    from . import pipeline
    from .backends import registry
    from .io.metadata import _exiv2

    registry.list_backends()
    pipeline.keep_runners()  # weights are read once per worker, not once per file
    # Map the shared libraries now, before the worker's address-space limit is set (OpenCV's
    # alone is about 70 MB of address space, which a --max-memory limit would refuse later).
    _exiv2()
    import cv2
    import numpy as np
    import PIL.Image  # noqa: F401

    # OpenCV's pool has as many threads as cores by default: the worker's share, as for torch (each
    # extra thread's malloc arena maps 64 MB, which also counts against --max-memory).
    cv2.setNumThreads(threads)

    # OpenBLAS maps its work buffer at the first matrix product and exits the process when it cannot
    # (the noise estimator's fits run under the limit): have it mapped now.
    np.ones((256, 256)) @ np.ones((256, 256))  # large enough for its blocked (buffered) path


def develop_task(task: dict) -> dict:
    """Develop ``task["src"]`` into ``task["dst"]`` with ``task["cfg"]`` (a PipelineConfig)."""
    from .pipeline import develop_to_file

    src, dst = Path(task["src"]), Path(task["dst"])
    t0 = time.perf_counter()
    try:
        res = develop_to_file(src, dst, task["cfg"], quality=task["quality"], overwrite=task["overwrite"])
    except OutputExistsError:
        return _raced(task)
    h, w = res.shape[:2]
    return {"status": "developed", "seconds": time.perf_counter() - t0, "backend": res.backend,
            "width": int(w), "height": int(h), "notices": list(res.notices),
            "requested_backend": res.requested, "white_balance": res.wb.source,
            "noise": None if res.noise_model is None else res.noise_model.source}


def _raced(task: dict) -> dict:
    """The output appeared while this file was being developed: another run (a second ``batch`` or
    ``develop`` into the same folder) finished it first. Its file is complete (outputs are written
    atomically), so with ``skip_existing`` this file is skipped, as if it had existed at the start."""
    if task.get("skip_existing", True):
        return {"status": "skipped", "reason": "output exists (made by another run meanwhile)"}
    raise OutputExistsError("output exists (use --overwrite to replace it)", task["dst"])


def preview_task(task: dict) -> dict:
    """Extract the embedded preview of ``task["src"]`` into ``task["dst"]``, orientation applied."""
    from .io.preview import write_preview

    src, dst = Path(task["src"]), Path(task["dst"])
    t0 = time.perf_counter()
    try:
        w, h = write_preview(src, dst, quality=task["quality"], overwrite=task["overwrite"], size=task.get("size"))
    except OutputExistsError:
        return _raced(task)
    return {"status": "developed", "seconds": time.perf_counter() - t0, "backend": "embedded-preview",
            "width": int(w), "height": int(h), "notices": []}


def _messages_suffix(result: dict) -> str:
    # LibRaw's own words ("Unexpected end of file") make a reason more precise; keep one line.
    msgs = [m for m in result.get("messages", []) if "Traceback" not in m and not m.startswith("File ")]
    if result.get("status") != "failed" or not msgs:
        return ""
    last = msgs[-1]
    last = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].startswith(("/", ".")) else last
    if len(last) > 160 or last.lower() in (result.get("reason") or "").lower():
        return ""
    return f" [LibRaw: {last}]"


def run_batch(
    jobs_list: Sequence[Job],
    cfg: Any,
    *,
    jobs: int = 1,
    quality: int = 92,
    overwrite: bool = False,
    skip_existing: bool = True,
    fail_fast: bool = False,
    timeout: float | None = None,
    max_memory: int | None = None,
    threads: int | None = None,
    preview: bool = False,
    preview_size: tuple[int, int] | None = None,
    fn_ref: str | None = None,
    max_tasks: int | None = 100,
    pool_factory: Callable[..., Any] | None = None,
) -> Iterator[FileResult]:
    """Develop every job in isolated workers; yield a :class:`FileResult` per job as it completes.

    An output that exists is skipped (``skip_existing``), replaced (``overwrite``) or a failure. With
    ``fail_fast`` the first failure stops the batch: running files are abandoned (nothing partial is
    left) and every file not done is yielded as ``"not-processed"``. ``fn_ref`` replaces the task
    function (tests use it to inject crashes). ``pool_factory`` builds the pool that runs the tasks,
    called like :class:`WorkerPool` (default); :class:`rawdev.cluster.ClusterPool` runs them on a
    Dask cluster instead.
    """
    todo: list[tuple[int, dict]] = []
    done: set[int] = set()
    stopped = False
    for i, job in enumerate(jobs_list):
        if job.dst.exists() and not overwrite:
            done.add(i)
            if skip_existing and job.dst.is_file():
                remove_stale_temporaries(job.dst)  # a run killed between link and unlink leaves one
                yield FileResult(job.src, job.dst, "skipped", "output exists")
                continue
            yield FileResult(job.src, job.dst, "failed", "output exists (use --overwrite to replace it)", "OutputExistsError")
            if fail_fast:
                stopped = True
                break
            continue
        todo.append((i, {"src": str(job.src), "dst": str(job.dst), "cfg": cfg, "quality": quality, "overwrite": overwrite,
                         "skip_existing": skip_existing, "size": preview_size}))
    if stopped or not todo:
        todo = []
    ref = fn_ref or ("rawdev.batch:preview_task" if preview else "rawdev.batch:develop_task")
    factory = pool_factory or WorkerPool
    pool = None if not todo else factory(ref, min(jobs, len(todo)), threads=threads or default_threads(jobs), max_memory=max_memory,
                                         timeout=timeout, max_tasks=max_tasks)
    try:
        for i, result in (pool.run(todo) if pool else ()):
            job = jobs_list[i]
            done.add(i)
            status = result.get("status", "failed")
            if status != "developed":
                remove_stale_temporaries(job.dst)  # a killed worker cannot clean up after itself
            reason = result.get("reason")
            if status == "not-processed":
                reason = "cancelled (--fail-fast)" if stopped else reason
            elif status == "failed":
                reason = (reason or "failed") + _messages_suffix(result)
            r = FileResult(
                job.src, job.dst, status, reason, result.get("error"),
                float(result.get("seconds", 0.0)), result.get("backend"), result.get("width"), result.get("height"),
                list(result.get("notices", [])), result.get("requested_backend"), result.get("white_balance"),
                result.get("noise"),
            )
            yield r
            if status == "failed" and fail_fast and not stopped:
                stopped = True
                pool.stop()
    finally:
        if pool is not None:
            pool.close()
            for i, _task in todo:  # interrupted (Ctrl-C, --fail-fast): the killed workers' temporaries
                if i not in done:
                    remove_stale_temporaries(jobs_list[i].dst)
    for i, job in enumerate(jobs_list):
        if i not in done:
            yield FileResult(job.src, job.dst, "not-processed", "cancelled (--fail-fast)" if stopped else "not started")


def run(paths, out, *, client=None, **options):
    """Develop files and folders into ``out`` like ``rawdev batch``, on a Dask cluster when ``client``
    (a ``distributed.Client``) is given, else with the local pool; see :func:`rawdev.cluster.run`."""
    from .cluster import run as run_on

    return run_on(paths, out, client=client, **options)
