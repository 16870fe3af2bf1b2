"""Shared pieces of the command line: option parsers and the error-to-exit-code wrapper."""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable

import typer

from ..errors import EXIT_FAILED, RawdevError

__all__ = ["handle_errors", "parse_wb", "parse_look", "parse_lens", "console_err", "notice"]


def console_err():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def notice(msg: str, path=None, quiet: bool = False) -> None:
    """A one-line notice on stderr (a fallback the user should know about)."""
    if not quiet:
        where = f"{path}: " if path else ""
        print(f"rawdev: note: {where}{msg}", file=sys.stderr)


def fail(err: RawdevError) -> None:
    print(f"rawdev: error: {err.one_line()}", file=sys.stderr)
    raise typer.Exit(err.exit_code)


def handle_errors(fn: Callable) -> Callable:
    """Map rawdev errors to one line on stderr and their exit code; no tracebacks unless
    ``RAWDEV_DEBUG=1``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RawdevError as e:
            if os.environ.get("RAWDEV_DEBUG"):
                raise
            fail(e)
        except KeyboardInterrupt:
            print("rawdev: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except MemoryError:
            print("rawdev: error: out of memory", file=sys.stderr)
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper


def parse_wb(value: str) -> str | tuple[float, ...]:
    """``camera|daylight|auto`` or ``R,G,B[,G]`` multipliers."""
    v = value.strip().lower()
    if v in ("camera", "daylight", "auto"):
        return v
    try:
        nums = tuple(float(x) for x in v.split(","))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: use camera, daylight, auto or R,G,B[,G] numbers") from None
    if len(nums) not in (3, 4) or min(nums) <= 0:
        raise typer.BadParameter(f"{value!r}: give 3 or 4 positive multipliers")
    return nums


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
