"""A develop's progress bar: rows written out of the total, with the time left, on stderr.

Drawn only when stderr is a terminal, and only once a develop has run for :data:`SHOW_AFTER_S`
(a classical develop of a 24 MP file is done by then and never flashes a bar); the time left is
rich's estimate from the recent rate of rows.
"""

from __future__ import annotations

import sys
import time

__all__ = ["DevelopProgress", "SHOW_AFTER_S"]

SHOW_AFTER_S = 2.0


class DevelopProgress:
    """``with DevelopProgress(label) as p: develop_to_file(..., progress=p.update)``.

    Args:
        label: what is being developed (shown left of the bar).
        enabled: False draws nothing (``--quiet``); also off when stderr is not a terminal.
    """

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self._progress = None
        self._task = None

    def __enter__(self) -> "DevelopProgress":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def update(self, done: int, total: int) -> None:
        """``done`` of ``total`` output rows are developed."""
        if not self.enabled:
            return
        if self._progress is None:
            if done >= total or time.perf_counter() - self.t0 < SHOW_AFTER_S:
                return
            from rich.console import Console
            from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                      TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                                      console=Console(stderr=True), transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=total)
        self._progress.update(self._task, completed=done)
