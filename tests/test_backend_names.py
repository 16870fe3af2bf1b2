"""Back-end names live in the registry (rawdev/backends/): no string constant elsewhere in rawdev/ is
a back-end's name (issue 13 point 1). Help texts and docstrings may mention names: a string that
only contains a name is text, not a name. Torch's own ``mode="bilinear"`` (interpolation) is not a
back-end's name either."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rawdev.backends.registry import LIBRAW_FALLBACK, list_backends

PACKAGE = Path(__file__).resolve().parents[1] / "rawdev"

#: Files still holding name literals, being moved to the registry: a ratchet; a file leaves this set
#: when it is clean, and the test says so.
PENDING: set[str] = set()


def _names() -> set[str]:
    return {s.name for s in list_backends()} | {LIBRAW_FALLBACK}


def name_literals(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every string constant in ``path`` that is exactly a back-end name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    # torch's interpolation modes (F.interpolate / grid_sample(mode="bilinear")) share a name
    modes = {id(k.value) for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords if k.arg == "mode"}
    return sorted((n.lineno, n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in names and id(n) not in modes)


def test_the_check_finds_a_literal(tmp_path):
    f = tmp_path / "x.py"
    f.write_text('"""Runs menon."""\nBASE = "menon"\nHELP = "menon or malvar"\nx = up(y, mode="bilinear")\n'
                 'z = run("bilinear")\n')
    assert name_literals(f, _names()) == [(2, "menon"), (5, "bilinear")]


@pytest.mark.parametrize("rel", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                                       if p.relative_to(PACKAGE).parts[0] != "backends"))
def test_no_backend_name_literal_outside_the_registry(rel):
    found = name_literals(PACKAGE / rel, _names())
    if rel in PENDING:
        assert found, f"rawdev/{rel} holds no back-end name literal any more: drop it from PENDING"
    else:
        assert not found, f"rawdev/{rel}: back-end names as literals (take them from rawdev.backends): {found}"
