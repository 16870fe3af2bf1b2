"""Shared fixtures. Data in ../shared (next to the repository) is optional: tests that need it skip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


# demosaicnet's X-Trans cell (learned_backends.md 1.6), as colour indices 0=R 1=G 2=B
XTRANS = np.array([
    [1, 2, 1, 1, 0, 1],
    [0, 1, 0, 2, 1, 2],
    [1, 2, 1, 1, 0, 1],
    [1, 0, 1, 1, 2, 1],
    [2, 1, 2, 0, 1, 0],
    [1, 0, 1, 1, 2, 1],
])


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


@pytest.fixture(scope="session")
def demo_dng(tmp_path_factory) -> Path:
    from rawdev.synthetic import write_demo_dng

    return write_demo_dng(tmp_path_factory.mktemp("demo") / "demo.dng", 240, 160)


class CliResult:
    """What an in-process ``rawdev`` run gave: ``returncode``, ``stdout``, ``stderr`` (as
    ``subprocess.run`` names them, so tests read the same either way)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli(*args) -> CliResult:
    """Run ``rawdev ARGS`` in this process (Typer's CliRunner): no interpreter start-up per call.
    Tests of exit codes on signals, of process isolation and of the installed entry point keep
    real subprocesses."""
    from typer.testing import CliRunner

    from rawdev.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return CliResult(r.exit_code, r.stdout, r.stderr)
