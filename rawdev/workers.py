"""Isolated worker processes: :class:`WorkerPool` runs task dicts through ``jobs`` spawned processes
and survives their crashes, hangs and memory exhaustion (used by :mod:`rawdev.batch` and
:mod:`rawdev.compare`; the batch module's docstring describes the guarantees).

Workers are started with the ``spawn`` method (never ``fork``: LibRaw's OpenMP and torch's thread
pools can deadlock in a forked child, rawpy issue #265). A worker runs one *task function* named
``"module:function"``: it takes a task ``dict`` and returns a result ``dict`` (both picklable). A
module may define ``prepare_worker(threads)`` to import and set up what its tasks need before the
worker reports ready, so imports never count against a timeout.

This module imports neither numpy nor torch, so that a spawned worker can cap its thread pools
before they start.
"""

from __future__ import annotations

import collections
import importlib
import os
import signal
import sys
import tempfile
import time
from typing import Any, Callable, Iterable, Iterator

from .errors import RawdevError

__all__ = ["THREAD_ENV_VARS", "WorkerPool", "WorkerStartError", "cpu_count", "default_threads"]

#: Environment variables that size native thread pools; a worker sets them all before importing.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

_PR_SET_PDEATHSIG = 1
_POLL_S = 0.25  # the longest the supervisor sleeps, so Ctrl-C and stop() are answered promptly


class WorkerStartError(RawdevError):
    """Worker processes cannot start (a broken installation, not a bad input file)."""


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(jobs: int) -> int:
    """Threads per worker so that ``jobs`` workers fill the cores without oversubscribing them."""
    return max(1, cpu_count() // max(1, jobs))


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
        # torch, numpy and OpenCV ("Insufficient memory") each word it their own way
        oom = isinstance(e, MemoryError) or any(m in reason.lower() for m in (
            "can't allocate memory", "not enough memory", "insufficient memory"))
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
    from .memory import tune_allocator

    tune_allocator()
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
