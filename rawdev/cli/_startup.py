"""Start-up helpers of the CLI: import heavy modules (torch) off the main thread while it does I/O."""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

__all__ = ["BackgroundImport", "import_in_background"]


class BackgroundImport:
    """A module being imported on a daemon thread; :meth:`result` waits for it.

    An exception raised by the import is re-raised by :meth:`result` in the caller's thread, so a
    broken installation fails where the module is needed, as a plain import would.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._module: ModuleType | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"import {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._module = importlib.import_module(self.name)
        except BaseException as err:  # noqa: BLE001 - handed to the caller by result()
            self._error = err

    def result(self) -> ModuleType:
        """The imported module (waits for the import to finish)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._module is not None
        return self._module


def import_in_background(name: str) -> BackgroundImport:
    """Start importing module ``name`` on a daemon thread and return its handle."""
    return BackgroundImport(name)
