"""``rawdev batch`` on a Dask cluster: the same batch, its files developed by the workers of a Dask
``distributed`` scheduler, on as many machines as it has.

The batch itself does not change (:func:`rawdev.batch.run_batch`: inputs, output paths, skipping
what is complete, ``--fail-fast``, the results); only the pool that runs the tasks does.
:class:`ClusterPool` has the interface of the local :class:`rawdev.batch.WorkerPool` and hands every
file to the cluster at once (one task per file; the scheduler queues them and feeds the workers as
their threads free up), then yields the results as they arrive, gathered in batches by
``as_completed``: no round trip per file.

On a Dask worker, each of its threads keeps one local :class:`~rawdev.batch.WorkerPool` of a single
isolated process, started on the first file and kept for the next ones, so:

* a file that crashes the decoder natively, or hangs past ``--timeout``, or exceeds ``--max-memory``,
  takes down that process only: the file fails alone with the same reason as in a local batch, and
  the Dask worker lives on (a fresh process takes the next file);
* the process keeps its back-ends built (:func:`rawdev.pipeline.keep_runners`): learned weights are
  read, and moved to the GPU, once per worker process, not once per file;
* a Dask worker that dies (killed, out of memory) loses its tasks to the scheduler, which gives them
  to other workers; a file whose workers keep dying is given up after the scheduler's
  ``distributed.scheduler.allowed-failures`` (3 by default) and fails with "the cluster worker died";
  a task that raises is retried ``retries`` times (once) and then fails;
* outputs are written the same way as locally (a temporary file in the output folder, then a link
  or rename), which is atomic on a shared file system as well: the final path holds nothing or a
  complete file, whichever worker wrote it and whatever happened to it;
* tasks of learned back-ends ask for the worker resource ``GPU`` when some workers offer it
  (``dask worker ... --resources GPU=1``), so they go only to those workers, one at a time per GPU.

Interrupting the batch (Ctrl-C, ``--fail-fast``) cancels the tasks not started and stops the files
being developed on the workers, whose temporary files are then removed.

Paths are sent to the workers as absolute paths: the input and output folders must be visible under
the same paths on every machine (a shared file system).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .batch import BatchSummary, FileResult, WorkerPool, default_threads, find_inputs, plan_jobs, run_batch
from .errors import ClusterError, UsageError

__all__ = ["ClusterPool", "BatchRun", "connect", "pool_factory", "run"]

#: Seconds to wait for the scheduler to answer, and for at least one worker to be there.
CONNECT_TIMEOUT_S = 30.0
#: How long an interrupted batch waits for the workers to stop the files they are developing.
_ABORT_WAIT_S = 10.0


# --------------------------------------------------------------------------------------------------
# Worker side: one isolated develop process per Dask worker thread, kept between files


@dataclass(frozen=True)
class _PoolOptions:
    """How a worker's local pool runs files; equal options reuse the same pool (and its process)."""

    fn_ref: str
    threads: int | None  # threads in the develop process; None: the host's cores // its Dask threads
    host_threads: tuple[tuple[str, int], ...]  # Dask worker threads per host, to divide the cores
    max_memory: int | None
    timeout: float | None
    max_tasks: int | None


_held = threading.local()  # .pool: (options, WorkerPool) of this worker thread
_lock = threading.Lock()
_running: dict[str, set[WorkerPool]] = {}  # batch id -> the pools developing one of its files now
_aborted: set[str] = set()


def _host_of(address: str) -> str:
    # "tcp://10.0.0.5:40123" -> "10.0.0.5"
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


def _threads_here(opts: _PoolOptions) -> int:
    if opts.threads:
        return opts.threads
    try:
        from distributed import get_worker

        host = _host_of(get_worker().address)
    except (ImportError, ValueError):
        return default_threads(1)
    busy = dict(opts.host_threads).get(host, 1)
    return default_threads(busy)


def _allow_children() -> None:
    # Dask starts its worker processes as daemons, and multiprocessing refuses to start a child from
    # a daemon, whose children would be orphaned when it is terminated. Ours are not: each asks the
    # kernel to kill it when the worker dies (PR_SET_PDEATHSIG, see rawdev.batch), so the worker may
    # start them.
    import multiprocessing

    if multiprocessing.current_process().daemon:
        multiprocessing.current_process().daemon = False


def _pool_for(opts: _PoolOptions) -> WorkerPool:
    _allow_children()
    held = getattr(_held, "pool", None)
    if held is not None and held[0] == opts:
        return held[1]
    if held is not None:
        held[1].close()
    pool = WorkerPool(opts.fn_ref, 1, threads=_threads_here(opts), max_memory=opts.max_memory,
                      timeout=opts.timeout, max_tasks=opts.max_tasks)
    _held.pool = (opts, pool)
    return pool


def _drop_pool() -> None:
    held = getattr(_held, "pool", None)
    _held.pool = None
    if held is not None:
        held[1].close()


def develop_on_worker(task: dict, opts: _PoolOptions, batch_id: str) -> dict:
    """The Dask task: run one file's task in this worker thread's isolated process; a result dict
    as :class:`~rawdev.batch.WorkerPool` gives it (failures included, never raised)."""
    with _lock:
        if batch_id in _aborted:
            return {"status": "not-processed", "reason": "cancelled", "error": None}
    if not task.get("overwrite") and os.path.isfile(task["dst"]):
        # The client saw no output when it planned the batch, so this one was completed by an
        # earlier attempt of this task, on a worker that died before its result was collected
        # (the scheduler then runs the task again). Outputs are written atomically: it is complete.
        return {"status": "skipped", "reason": "output exists (completed by an earlier attempt on a lost worker)"}
    pool = _pool_for(opts)
    with _lock:
        # Checked again with the registration, under one lock: an abort that came while the pool
        # was being made found nothing registered to stop, and this file would then run to the end
        # (a hang until its timeout) after the batch was interrupted.
        if batch_id in _aborted:
            return {"status": "not-processed", "reason": "cancelled", "error": None}
        _running.setdefault(batch_id, set()).add(pool)
    try:
        results = [result for _key, result in pool.run([(0, task)])]
    finally:
        with _lock:
            mine = _running.get(batch_id, set())
            mine.discard(pool)
            if not mine:
                _running.pop(batch_id, None)
            aborted = batch_id in _aborted
    if aborted:  # a stopped pool hands out nothing more: the next file starts a fresh one
        _drop_pool()
    return results[0] if results else {"status": "not-processed", "reason": "cancelled", "error": None}


def _abort_batch(batch_id: str, wait_s: float = _ABORT_WAIT_S) -> int:
    """Run on every worker by an interrupted batch: stop the files of ``batch_id`` being developed
    here (their processes are killed) and wait until they are; returns how many there were."""
    with _lock:
        _aborted.add(batch_id)
        pools = list(_running.get(batch_id, ()))
    for pool in pools:
        pool.stop()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with _lock:
            if not _running.get(batch_id):
                break
        time.sleep(0.05)
    return len(pools)


# --------------------------------------------------------------------------------------------------
# Client side


def _require_distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError("running on a cluster needs Dask: pip install 'rawdev[cluster]'") from None
    return distributed


def connect(address: str | None = None, scheduler_file: str | Path | None = None, *,
            timeout: float = CONNECT_TIMEOUT_S, quiet_logs: bool = True) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address`` (``tcp://host:8786``) or described
    by ``scheduler_file`` (``dask scheduler --scheduler-file F`` writes one), once it has a worker.

    ``quiet_logs`` keeps Dask's own log messages (a worker lost, a task rescheduled) off the batch's
    stderr: the batch reports what they mean for each file.

    Raises:
        UsageError: Dask is not installed, or neither or both of the two were given.
        ClusterError: the scheduler does not answer, or has no worker within ``timeout`` seconds.
    """
    distributed = _require_distributed()
    if (address is None) == (scheduler_file is None):
        raise UsageError("give one of --cluster ADDRESS and --scheduler-file FILE")
    if quiet_logs:
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    where = address or f"the scheduler file {scheduler_file}"
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise ClusterError(f"no scheduler file at {scheduler_file} (start one with `dask scheduler --scheduler-file {scheduler_file}`)")
    try:
        if scheduler_file is not None:
            client = distributed.Client(scheduler_file=str(scheduler_file), timeout=timeout, set_as_default=False)
        else:
            client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {where}: {' '.join(str(e).split()) or type(e).__name__}") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError):
        client.close()
        raise ClusterError(f"the Dask scheduler at {where} has no worker after {timeout:g} s "
                           "(start one with `dask worker ADDRESS`)") from None
    return client


def _workers(client) -> dict[str, dict]:
    return dict(client.scheduler_info(n_workers=-1)["workers"])


def _host_threads(client) -> tuple[tuple[str, int], ...]:
    per_host: dict[str, int] = {}
    for addr, w in _workers(client).items():
        host = _host_of(addr)
        per_host[host] = per_host.get(host, 0) + int(w.get("nthreads", 1))
    return tuple(sorted(per_host.items()))


def gpu_resources(client, cfg) -> dict[str, float] | None:
    """``{"GPU": 1}`` for tasks of a learned back-end when some workers offer a ``GPU`` resource,
    else None. ``--device cuda`` with no such worker is refused before any work starts."""
    if cfg is None:
        return None
    from .backends import registry

    spec = registry.get(cfg.backend)
    if spec.kind != "learned" or cfg.device == "cpu":
        return None
    if any(w.get("resources", {}).get("GPU") for w in _workers(client).values()):
        return {"GPU": 1}
    if cfg.device == "cuda":
        raise UsageError("--device cuda: no worker of the cluster offers a GPU; start GPU workers with "
                         "`dask worker ADDRESS --resources GPU=1`")
    return None  # --device auto: the learned back-end runs on the workers' CPUs


def _failure_reason(exc: BaseException) -> dict:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        n = exc.allowed_failures + 1
        return {"status": "failed", "error": "WorkerCrash",
                "reason": f"the cluster worker died while developing this file, {n} times on {n} workers; "
                          "it probably crashes or exhausts its worker"}
    text = " ".join(str(exc).split())
    return {"status": "failed", "error": type(exc).__name__,
            "reason": f"the cluster failed this file: {type(exc).__name__}{': ' + text if text else ''}"}


def _for_workers(task: dict) -> dict:
    """The task with every path in it absolute: workers run in other folders, on other machines."""
    out = dict(task, src=os.path.abspath(task["src"]), dst=os.path.abspath(task["dst"]))
    cfg = task.get("cfg")
    look = getattr(cfg, "look", None)
    if look is not None and look not in ("neutral", "camera"):  # a look file
        out["cfg"] = dataclasses.replace(cfg, look=os.path.abspath(look))
    return out


class ClusterPool:
    """Run task dicts on the workers of a Dask cluster; the interface of :class:`rawdev.batch.WorkerPool`.

    Args:
        fn_ref: the task function, ``"module:function"`` (importable on the workers).
        jobs, threads: accepted for the local pool's signature and not used: the cluster's workers
            and their threads set the parallelism (see ``worker_threads``).
        max_memory, timeout, max_tasks: as for the local pool, applied to each worker's develop process.
        client: a connected ``distributed.Client`` (see :func:`connect`); not closed by this pool.
        worker_threads: threads in each develop process; None: the host's cores divided by the
            Dask threads of all the workers on that host.
        resources: Dask resources each task asks for (``{"GPU": 1}``), or None.
        retries: extra attempts for a task that raises on the worker (a develop failure does not
            raise: it is a result). Worker deaths are bounded by the scheduler's ``allowed-failures``.
    """

    def __init__(self, fn_ref: str, jobs: int = 1, *, threads: int | None = None, max_memory: int | None = None,
                 timeout: float | None = None, max_tasks: int | None = 100, client: Any,
                 worker_threads: int | None = None, resources: dict[str, float] | None = None, retries: int = 1) -> None:
        del jobs, threads  # the cluster sets the parallelism
        _require_distributed()
        self.client = client
        self.resources = resources
        self.retries = retries
        self.batch_id = f"rawdev-{uuid.uuid4().hex[:12]}"
        self.options = _PoolOptions(fn_ref, worker_threads, _host_threads(client), max_memory,
                                    timeout if timeout and timeout > 0 else None, max_tasks)
        self._futures: list = []
        self._stop = False
        self._finished = False

    def stop(self) -> None:
        """Stop collecting; :meth:`run` cancels what is left and returns."""
        self._stop = True

    def _cancel(self) -> None:
        if self._finished or not self._futures:
            self._finished = True
            return
        self._finished = True
        left = [f for f in self._futures if not f.done()]
        if not left:
            return
        try:
            self.client.cancel(left)
            self.client.run(_abort_batch, self.batch_id)
        except Exception:  # noqa: BLE001 - the scheduler may be gone; nothing more to stop then
            pass

    def close(self) -> None:
        """Cancel the tasks not finished; the client stays open."""
        self._cancel()
        self._futures = []

    def __enter__(self) -> "ClusterPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, tasks: Iterable[tuple[Any, dict]]) -> Iterator[tuple[Any, dict]]:
        """Submit every ``(key, task)`` and yield ``(key, result)`` as they complete (any order).

        After :meth:`stop` the tasks left are cancelled and not yielded.
        """
        from distributed import as_completed

        items = list(tasks)
        if not items:
            return
        names = [f"{self.batch_id}-{n}" for n in range(len(items))]
        key_of = {name: key for name, (key, _task) in zip(names, items)}
        payloads = [_for_workers(task) for _key, task in items]
        self._futures = self.client.map(develop_on_worker, payloads, key=names, opts=self.options, batch_id=self.batch_id,
                                        pure=False, retries=self.retries, resources=self.resources)
        try:
            for future, outcome in as_completed(self._futures, loop=self.client.loop, with_results=True, raise_errors=False):
                if future.status == "cancelled":
                    continue
                if future.status == "error":  # (type, exception, traceback)
                    exc = outcome[1] if isinstance(outcome, tuple) else outcome
                    outcome = _failure_reason(exc)
                yield key_of[future.key], outcome
                if self._stop:
                    return
        finally:
            self._cancel()


def pool_factory(client, cfg=None, *, threads: int | None = None, retries: int = 1) -> Callable[..., ClusterPool]:
    """What :func:`rawdev.batch.run_batch` takes as ``pool_factory`` to run a batch on ``client``'s
    cluster; ``cfg`` (a PipelineConfig, None for previews) decides the GPU resource."""
    return functools.partial(ClusterPool, client=client, worker_threads=threads, resources=gpu_resources(client, cfg),
                             retries=retries)


# --------------------------------------------------------------------------------------------------
# The Python entry point


@dataclass
class BatchRun:
    """What :func:`run` did: one result per input, and the counts (``summary.exit_code``)."""

    results: list[FileResult] = field(default_factory=list)
    summary: BatchSummary = field(default_factory=BatchSummary)


def run(paths: Sequence[str | Path] | str | Path, out: str | Path, *, client: Any = None, fmt: str = "jpg",
        quality: int = 92, preview: bool = False, overwrite: bool = False, skip_existing: bool = True,
        fail_fast: bool = False, timeout: float | None = 600.0, max_memory: int | None = None, jobs: int | None = None,
        threads: int | None = None, cfg: Any = None, on_result: Callable[[FileResult], None] | None = None,
        **develop_options: Any) -> BatchRun:
    """Develop files and folders into ``out`` like ``rawdev batch``, on ``client``'s Dask cluster, or
    with the local worker pool when ``client`` is None; for notebooks and scripts.

    ``develop_options`` are :class:`rawdev.config.PipelineConfig` fields (``backend="jdd"``,
    ``exposure_ev=0.5``, ...), or give ``cfg``. ``on_result`` is called with each
    :class:`~rawdev.batch.FileResult` as it arrives (a progress display). Example::

        from distributed import Client
        import rawdev.batch
        done = rawdev.batch.run(["/data/card"], "/data/out", client=Client("tcp://head:8786"), backend="jdd")
        print(done.summary.line(), [r.src for r in done.results if r.status == "failed"])
    """
    from .batch import cpu_count
    from .config import PipelineConfig

    if fmt not in ("jpg", "png", "tif", "webp"):
        raise UsageError(f"format {fmt!r}: use jpg, png, tif or webp")
    if not preview:
        if cfg is None:
            from .io.write import default_bits

            develop_options.setdefault("output_bits", default_bits(fmt, develop_options.get("colorspace", "srgb")))
            cfg = PipelineConfig(**develop_options)
        from .backends import registry

        registry.get(cfg.backend)  # an unknown back-end fails before any work
    elif develop_options:
        raise UsageError(f"--preview does not develop: {', '.join(sorted(develop_options))} not used")
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError("the output must be a folder", out)
    done = BatchRun()
    t0 = time.monotonic()

    def report(r: FileResult) -> None:
        done.results.append(r)
        done.summary.add(r)
        if on_result is not None:
            on_result(r)

    pairs, walk_errors = find_inputs(paths)
    planned, refused = plan_jobs(pairs, out, fmt)
    for path, reason in walk_errors:
        report(FileResult(path, None, "failed", reason, "InputError"))
    for r in refused:
        report(r)
    if fail_fast and done.summary.failed:
        for j in planned:
            report(FileResult(j.src, j.dst, "not-processed", "cancelled (--fail-fast)"))
        planned = []
    factory = None if client is None else pool_factory(client, cfg, threads=threads)
    results = run_batch(planned, cfg, jobs=jobs or min(cpu_count(), max(1, len(planned))), quality=quality,
                        overwrite=overwrite, skip_existing=skip_existing, fail_fast=fail_fast, timeout=timeout or None,
                        max_memory=max_memory, threads=threads, preview=preview, pool_factory=factory)
    try:
        for r in results:
            report(r)
    except KeyboardInterrupt:
        done.summary.interrupted = True
    finally:
        results.close()
        done.summary.seconds = time.monotonic() - t0
    return done
