"""Temporary files of outputs being written, named after the process that writes them.

A temporary of ``out/a.jpg`` is ``out/.a.jpg.<pid>@<host>.<random>.rawdev-tmp``. The owner in the
name lets any number of rawdev runs (``develop``, ``batch``, each batch's workers) share an output
folder: a run removes only temporaries whose owner is gone, never one that another live process is
still writing. This module imports nothing heavy (batch supervisors use it before any numpy).
"""

from __future__ import annotations

import glob
import os
import socket
import time
from pathlib import Path

__all__ = ["TMP_SUFFIX", "temporary_prefix", "temporary_owner", "remove_stale_temporaries"]

#: Every temporary file rawdev writes ends so; it is never a final output.
TMP_SUFFIX = ".rawdev-tmp"
#: Temporaries without an owner in their name (written by rawdev before owners were recorded) are
#: taken as abandoned after this long.
_UNOWNED_STALE_S = 3600.0


def _host() -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "localhost"


def temporary_prefix(final: Path, pid: int | None = None) -> str:
    """The start of the name of a temporary file of ``final`` made by process ``pid`` (default:
    this one): ``.<name>.<pid>@<host>.``; a random part and :data:`TMP_SUFFIX` follow.

    The owner in the name is what lets any number of rawdev runs share an output folder: a run
    removes only the temporaries whose owner is gone (:func:`remove_stale_temporaries`), never one
    that another live process is still writing.
    """
    return f".{final.name}.{os.getpid() if pid is None else pid}@{_host()}."


def temporary_owner(tmp: Path, final: Path) -> tuple[int, str] | None:
    """``(pid, host)`` of a temporary file of ``final``, or None for a name without an owner."""
    name = tmp.name
    head = f".{final.name}."
    if not (name.startswith(head) and name.endswith(TMP_SUFFIX)):
        return None
    middle = name[len(head):-len(TMP_SUFFIX)]  # "<pid>@<host>.<random>" or "<random>"
    pid, at, rest = middle.partition("@")
    if not at or not pid.isdigit() or "." not in rest:
        return None
    return int(pid), rest.rsplit(".", 1)[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but is not yet reaped. A zombie still answers ``kill(pid, 0)``, and
    the workers of a SIGKILLed batch stay zombies until init reaps them (in a container, PID 1 may
    never do it), so their temporaries would be kept for good. Linux only; elsewhere: not known."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def remove_stale_temporaries(final: str | Path) -> int:
    """Remove the temporary files of ``final`` whose writer is gone; returns how many.

    A temporary is stale when its owner (the pid in its name) is a process of this host that no
    longer exists: a run killed by SIGKILL, a batch worker stopped by its supervisor. Temporaries of
    live processes (another ``develop`` or ``batch`` writing the same file) and of other hosts (a
    shared network folder) are left alone; unowned ones only once they are an hour old.
    """
    final = Path(final)
    host = _host()
    n = 0
    for t in glob.glob(str(final.parent / f".{glob.escape(final.name)}.*{TMP_SUFFIX}")):
        tmp = Path(t)
        owner = temporary_owner(tmp, final)
        if owner is None:
            try:
                stale = time.time() - tmp.stat().st_mtime > _UNOWNED_STALE_S
            except OSError:
                continue
        else:
            pid, where = owner
            stale = where == host and pid != os.getpid() and not _alive(pid)
        if stale:
            try:
                tmp.unlink()
                n += 1
            except OSError:
                pass
    return n
