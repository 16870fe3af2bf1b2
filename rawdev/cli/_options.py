"""Shared pieces of the command line: option parsers and validators, and the error-to-exit-code
wrapper.

Every number a user types is checked here, when the command line is parsed, before any work starts:
a value that is not finite or out of range is one line ``rawdev: error: ...`` and exit 2, the same in
``develop`` and ``batch`` (a bad value would otherwise fail every file of a batch, or overflow deep
in the developer).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import threading
from typing import Callable, NoReturn

import typer

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, RawdevError, UsageError

__all__ = ["handle_errors", "parse_wb", "parse_look", "parse_lens", "console_err", "notice", "in_range", "check_max_memory",
           "check_wb", "interrupt_on_sigterm",
           "MAX_EXPOSURE_EV", "TILE_RANGE", "MIN_WORKER_MEMORY"]

#: Exposure compensation beyond this many stops leaves no picture in 16 bits either way.
MAX_EXPOSURE_EV = 20.0
#: Tile sides for learned back-ends: below 32 the network's margins dominate; above 8192 one tile
#: of a float network's activations is tens of GB.
TILE_RANGE = (32, 8192)
#: The least ``--max-memory`` a batch worker can develop anything with (beyond its start-up
#: footprint): the decoder and the writer need some (a 0.5 MP file takes about 25 MB there).
MIN_WORKER_MEMORY = 16 << 20


def console_err():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def notice(msg: str, path=None, quiet: bool = False) -> None:
    """A one-line notice on stderr (a fallback the user should know about)."""
    if not quiet:
        from ..errors import printable

        where = f"{printable(path)}: " if path else ""
        print(f"rawdev: note: {where}{msg}", file=sys.stderr)


def fail(err: RawdevError) -> NoReturn:
    print(f"rawdev: error: {err.one_line()}", file=sys.stderr)
    raise typer.Exit(err.exit_code)


def interrupt_on_sigterm(signum, frame):  # noqa: ARG001
    """A SIGTERM handler: stop as Ctrl-C stops (KeyboardInterrupt), so cleanup runs."""
    raise KeyboardInterrupt


def handle_errors(fn: Callable) -> Callable:
    """Map rawdev errors to one line on stderr and their exit code; no tracebacks unless
    ``RAWDEV_DEBUG=1``. SIGTERM is handled as Ctrl-C: the output being written is abandoned (its
    temporary file removed) and the exit code is 130 for both."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        old_term = None
        if threading.current_thread() is threading.main_thread():
            old_term = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
        try:
            return fn(*args, **kwargs)
        except RawdevError as e:
            if os.environ.get("RAWDEV_DEBUG"):
                raise
            fail(e)
        except KeyboardInterrupt:
            print("rawdev: interrupted", file=sys.stderr)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except MemoryError:
            print("rawdev: error: out of memory", file=sys.stderr)
            raise typer.Exit(EXIT_FAILED) from None
        finally:
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)

    return wrapper


def _option_name(param) -> str:
    opts = getattr(param, "opts", None) or []
    return max(opts, key=len) if opts else f"--{getattr(param, 'name', 'value')}"


def in_range(lo: float | None = None, hi: float | None = None, *, what: str = "", integer: bool = False) -> Callable:
    """A Typer callback accepting ``None`` or a finite number in ``[lo, hi]`` (``what`` names the
    unit in the message); anything else is one line and exit 2."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value):
        if value is None or ctx.resilient_parsing:
            return value
        ok = math.isfinite(float(value)) and (lo is None or value >= lo) and (hi is None or value <= hi)
        if not ok:
            if lo is not None and hi is not None:
                want = f"a {'whole' if integer else 'finite'} number from {lo:g} to {hi:g}"
            elif lo is not None:
                want = f"a finite number of at least {lo:g}"
            else:
                want = f"a finite number of at most {hi:g}"
            fail(UsageError(f"{_option_name(param)} {value}: use {want}{' ' + what if what else ''}"))
        return value

    return check


def check_max_memory(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
    """``--max-memory``: a size like ``4G`` (at least :data:`MIN_WORKER_MEMORY`) or ``none``."""
    if value is None or ctx.resilient_parsing:
        return value
    from ..batch import parse_memory

    try:
        size = parse_memory(value)
    except UsageError as e:
        fail(e)
    if size is not None and size < MIN_WORKER_MEMORY:
        fail(UsageError(f"--max-memory {value!r}: too small for a worker to develop anything; "
                        f"give at least {MIN_WORKER_MEMORY >> 20}M (or none for no limit)"))
    return value


def parse_wb(value: str) -> str | tuple[float, ...]:
    """``camera|preview|auto|daylight`` or ``R,G,B[,G]`` multipliers (finite, positive).

    Raises:
        UsageError: anything else.
    """
    v = value.strip().lower()
    if v in ("camera", "preview", "daylight", "auto"):
        return v
    try:
        nums = tuple(float(x) for x in v.split(","))
    except ValueError:
        raise UsageError(f"--wb {value!r}: use camera, preview, auto, daylight or R,G,B[,G] numbers") from None
    if len(nums) not in (3, 4) or not all(math.isfinite(x) and 0 < x <= 1e6 for x in nums):
        raise UsageError(f"--wb {value!r}: give 3 or 4 positive, finite multipliers")
    return nums


def check_wb(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
    """``--wb`` checked when the command line is parsed (one line and exit 2)."""
    if value is None or ctx.resilient_parsing:
        return value
    try:
        parse_wb(value)
    except UsageError as e:
        fail(e)
    return value


def parse_look(value: str) -> str:
    """``neutral|camera`` or the path of a look file (which must exist)."""
    v = value.strip()
    if v.lower() in ("neutral", "camera"):
        return v.lower()
    from pathlib import Path

    if not Path(v).is_file():
        raise typer.BadParameter(f"{value!r}: use neutral, camera or an existing look file (rawdev look fit)")
    return v


def parse_lens(value: str) -> str:
    """``off|auto`` or a lens's name as lensfun spells it (``"Maker Model"``)."""
    v = value.strip()
    if not v:
        raise typer.BadParameter("give off, auto or a lens's \"Maker Model\"")
    return v.lower() if v.lower() in ("off", "auto") else v
