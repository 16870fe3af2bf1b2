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

A worker runs one *task function* named ``"module:function"``: it takes a task ``dict`` and returns a
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

import collections
import importlib
import math
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from .errors import EXIT_FAILED, EXIT_OK, OutputExistsError, RawdevError
from .io.temporaries import remove_stale_temporaries

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

#: Environment variables that size native thread pools; a worker sets them all before importing.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

Status = Literal["developed", "failed", "skipped", "not-processed"]

_PR_SET_PDEATHSIG = 1
_POLL_S = 0.25  # the longest the supervisor sleeps, so Ctrl-C and stop() are answered promptly


class WorkerStartError(RawdevError):
    """Worker processes cannot start (a broken installation, not a bad input file)."""


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


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(jobs: int) -> int:
    """Threads per worker so that ``jobs`` workers fill the cores without oversubscribing them."""
    return max(1, cpu_count() // max(1, jobs))


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
# Worker side


def _set_thread_env(threads: int) -> None:
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a ``kill -9`` of the batch)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _resolve_fn(ref: str) -> tuple[Callable[[dict], dict], Any]:
    module_name, _, fn_name = ref.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, fn_name), module


def _failure(e: BaseException, memory_limit: int | None) -> dict:
    if isinstance(e, RawdevError):
        reason, cls = e.reason, type(e).__name__
        oom = "too large to decode" in reason
    else:
        reason, cls = f"{type(e).__name__}: {' '.join(str(e).split())}".rstrip(": "), type(e).__name__
        oom = isinstance(e, MemoryError) or "can't allocate memory" in reason or "not enough memory" in reason
    if oom and memory_limit:
        reason = f"out of memory: it needs more than the worker's limit (--max-memory {memory_limit >> 20} MiB)"
        cls = "MemoryError" if cls in ("MemoryError", "RuntimeError") else cls
    elif isinstance(e, MemoryError):
        reason = "out of memory"
    return {"status": "failed", "reason": reason, "error": cls}


def _worker_main(conn, fn_ref: str, threads: int, max_memory: int | None, log_path: str | None, parent_pid: int) -> None:
    """A worker process: set limits, import, report ready, then run tasks until told to stop."""
    _set_thread_env(threads)
    _die_with_parent(parent_pid)
    from .memory import return_freed_memory

    return_freed_memory()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    log = None
    if log_path:
        # LibRaw and friends print to the C streams; keep that off the batch's stdout/stderr (a JSON
        # consumer reads stdout) and hand it back with each result instead.
        log = open(log_path, "a+b", buffering=0)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    import faulthandler

    faulthandler.enable()
    fn, module = _resolve_fn(fn_ref)
    prepare = getattr(module, "prepare_worker", None)
    if prepare is not None:
        prepare(threads)
    limit = None
    if max_memory:
        import resource

        limit = _vm_size() + int(max_memory)
        try:
            _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
        except (ValueError, OSError):
            limit = None
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            break
        if task is None:
            break
        if log:
            sys.stdout.flush()
            sys.stderr.flush()
        start = log.seek(0, 2) if log else 0
        t0 = time.perf_counter()
        try:
            result = fn(task)
        except BaseException as e:  # noqa: BLE001 - every failure is reported, the worker lives on
            result = _failure(e, max_memory if limit else None)
        result.setdefault("seconds", time.perf_counter() - t0)
        if log:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
                log.seek(start)
                text = log.read(4096).decode("utf-8", "replace")
                result["messages"] = [ln.strip() for ln in text.splitlines() if ln.strip()]
            except (OSError, MemoryError):
                pass
        try:
            conn.send(("done", result))
        except (BrokenPipeError, EOFError, OSError):
            break
        except Exception as e:  # noqa: BLE001 - e.g. an unpicklable or too large result
            conn.send(("done", {"status": "failed", "reason": f"cannot return the result ({type(e).__name__}: {e})", "error": type(e).__name__}))


# --------------------------------------------------------------------------------------------------
# Supervisor side


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


class _Slot:
    def __init__(self, proc, conn, log_path: str | None) -> None:
        self.proc = proc
        self.conn = conn
        self.log_path = log_path
        self.started = time.monotonic()
        self.ready = False
        self.key: Any = None
        self.task: dict | None = None
        self.task_started = 0.0
        self.done = 0


class WorkerPool:
    """Run task dicts through ``jobs`` isolated worker processes; see the module docstring.

    Args:
        fn_ref: the task function, ``"module:function"``.
        jobs: the number of worker processes.
        threads: thread-pool size in each worker (default: cores // jobs).
        max_memory: bytes each worker may map beyond its start-up footprint (None: no limit).
        timeout: seconds one task may run before its worker is killed (None: no limit).
        max_tasks: tasks a worker runs before it is replaced by a fresh one (None: never).
        start_timeout: seconds a worker may take to start and import.
        capture_output: send the workers' stdout/stderr (LibRaw's messages) to log files and return
            each task's share in ``result["messages"]`` instead of printing it.
    """

    def __init__(
        self,
        fn_ref: str,
        jobs: int = 1,
        *,
        threads: int | None = None,
        max_memory: int | None = None,
        timeout: float | None = None,
        max_tasks: int | None = 100,
        start_timeout: float = 300.0,
        capture_output: bool = True,
    ) -> None:
        import multiprocessing as mp

        if jobs < 1:
            from .errors import UsageError

            raise UsageError(f"--jobs must be at least 1, got {jobs}")
        self.fn_ref = fn_ref
        self.jobs = jobs
        self.threads = threads or default_threads(jobs)
        self.max_memory = max_memory
        self.timeout = timeout if timeout and timeout > 0 else None
        self.max_tasks = max_tasks
        self.start_timeout = start_timeout
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Slot] = []
        self._stop = False
        self._logdir = tempfile.mkdtemp(prefix="rawdev-batch-") if capture_output else None
        self._nlog = 0
        self._start_failures = 0

    # -- lifecycle

    def _start_worker(self) -> _Slot:
        parent, child = self._ctx.Pipe(duplex=True)
        log_path = None
        if self._logdir:
            self._nlog += 1
            log_path = os.path.join(self._logdir, f"worker-{self._nlog}.log")
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self.fn_ref, self.threads, self.max_memory, log_path, os.getpid()),
            name=f"rawdev-worker-{self._nlog}",
            daemon=True,
        )
        proc.start()
        child.close()
        slot = _Slot(proc, parent, log_path)
        self._slots.append(slot)
        return slot

    def _discard(self, slot: _Slot, kill: bool) -> None:
        if kill and slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join(timeout=5)
        if slot.proc.is_alive():
            slot.proc.kill()
            slot.proc.join(timeout=5)
        try:
            slot.conn.close()
        except OSError:
            pass
        if slot.log_path:
            try:
                os.unlink(slot.log_path)
            except OSError:
                pass
        if slot in self._slots:
            self._slots.remove(slot)

    def _retire(self, slot: _Slot) -> None:
        try:
            slot.conn.send(None)
        except OSError:
            pass
        self._discard(slot, kill=False)

    def stop(self) -> None:
        """Stop handing out tasks; :meth:`run` kills the busy workers and returns."""
        self._stop = True

    def close(self) -> None:
        """Kill every worker and remove the log folder."""
        for slot in list(self._slots):
            self._discard(slot, kill=True)
        if self._logdir:
            import shutil

            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the loop

    def _log_tail(self, slot: _Slot) -> str:
        if not slot.log_path:
            return ""
        try:
            with open(slot.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(slot.log_path) - 2000))
                lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
            return lines[-1] if lines else ""
        except OSError:
            return ""

    def _death_result(self, slot: _Slot) -> dict:
        code = slot.proc.exitcode
        if code is not None and code < 0:
            sig = _signal_name(-code)
            if -code == signal.SIGKILL:
                reason = "the worker was killed (SIGKILL) while developing this file, most likely by the out-of-memory killer"
            else:
                reason = f"the decoder crashed ({sig}) on this file; it is probably damaged"
                if -code == signal.SIGABRT and self.max_memory:
                    reason += " or needs more memory than --max-memory allows"
        else:
            reason = f"the worker exited unexpectedly (exit code {code}) while developing this file"
        return {"status": "failed", "reason": reason, "error": "WorkerCrash",
                "seconds": time.monotonic() - slot.task_started}

    def run(self, tasks: Iterable[tuple[Any, dict]]) -> Iterator[tuple[Any, dict]]:
        """Yield ``(key, result)`` for each ``(key, task)`` as workers finish them (any order).

        After :meth:`stop`, busy workers are killed and their tasks yielded as
        ``{"status": "not-processed"}``; tasks never handed out are not yielded at all.
        """
        pending = collections.deque(tasks)
        try:
            while True:
                busy = [s for s in self._slots if s.key is not None]
                if self._stop:
                    for s in busy:
                        key = s.key
                        s.key = None
                        self._discard(s, kill=True)
                        yield key, {"status": "not-processed", "reason": "cancelled", "error": None}
                    return
                if not pending and not busy:
                    return
                # Keep as many workers as there is work for.
                while pending and len(self._slots) < min(self.jobs, len(pending) + len(busy)):
                    self._start_worker()
                # Hand out work.
                for s in self._slots:
                    if s.ready and s.key is None and pending:
                        key, task = pending.popleft()
                        try:
                            s.conn.send(task)
                        except (BrokenPipeError, OSError):
                            pending.appendleft((key, task))
                            continue
                        s.key, s.task, s.task_started = key, task, time.monotonic()
                # Wait for a message, a death, or the nearest deadline.
                now = time.monotonic()
                wait_s = _POLL_S
                for s in self._slots:
                    if s.key is not None and self.timeout:
                        wait_s = min(wait_s, max(0.0, s.task_started + self.timeout - now))
                from multiprocessing.connection import wait

                objs = [s.conn for s in self._slots] + [s.proc.sentinel for s in self._slots]
                wait(objs, timeout=wait_s) if objs else time.sleep(wait_s)
                yield from self._collect()
        finally:
            for s in list(self._slots):
                if s.key is not None:
                    self._discard(s, kill=True)

    def _collect(self) -> Iterator[tuple[Any, dict]]:
        now = time.monotonic()
        for s in list(self._slots):
            dead = False
            # Messages first: a worker may answer and exit in the same instant.
            try:
                while s.conn.poll():
                    kind, payload = s.conn.recv()
                    if kind == "ready":
                        s.ready = True
                        self._start_failures = 0
                    elif kind == "done" and s.key is not None:
                        key = s.key
                        s.key, s.task = None, None
                        s.done += 1
                        yield key, payload
            except (EOFError, OSError):
                dead = True
            if dead or not s.proc.is_alive():
                s.proc.join(timeout=1)
                if s.key is not None:
                    key = s.key
                    result = self._death_result(s)
                    s.key = None
                    self._discard(s, kill=True)
                    yield key, result
                    continue
                if not s.ready:
                    self._start_failures += 1
                    tail = self._log_tail(s)
                    self._discard(s, kill=True)
                    if self._start_failures >= 3:
                        raise WorkerStartError(f"worker processes fail to start{': ' + tail if tail else ''}")
                    continue
                self._discard(s, kill=True)
                continue
            if s.key is not None and self.timeout and now - s.task_started > self.timeout:
                key = s.key
                s.key = None
                self._discard(s, kill=True)
                yield key, {"status": "failed", "reason": f"timed out after {self.timeout:g} s (--timeout); the worker was stopped",
                            "error": "Timeout", "seconds": now - s.task_started}
                continue
            if not s.ready and now - s.started > self.start_timeout:
                self._discard(s, kill=True)
                raise WorkerStartError(f"a worker process did not start within {self.start_timeout:g} s")
            if s.ready and s.key is None and self.max_tasks and s.done >= self.max_tasks:
                self._retire(s)


# --------------------------------------------------------------------------------------------------
# The batch


def prepare_worker(threads: int) -> None:
    """Import the developer and cap torch's thread pools (runs once in each worker)."""
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
    _exiv2()  # map exiv2's shared libraries now, before the worker's address-space limit is set


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
        w, h = write_preview(src, dst, quality=task["quality"], overwrite=task["overwrite"])
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
                         "skip_existing": skip_existing}))
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
