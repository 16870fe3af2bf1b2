"""How rawdev is put together: layers that must not import each other, weights shipped as package
data, and (slow) a wheel that works without the source tree."""

from __future__ import annotations

import importlib.resources
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_models_import_no_backend():
    """``rawdev.models`` (the networks) never imports ``rawdev.backends`` (which builds runners from
    them): the ISP frame is handed its learned start instead."""
    code = (
        "import sys, rawdev.models\n"
        "import rawdev.models.gharbi2016, rawdev.models.ignatov2020, rawdev.models.liang2019, rawdev.models.isp_frame\n"
        "print(sorted(m for m in sys.modules if m.startswith('rawdev.backends')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_weights_are_package_data(monkeypatch):
    """Without $RAWDEV_WEIGHTS_DIR the weights come from the package ``rawdev.weights``, and every
    registered back-end's own file there passes its sha256 check."""
    from rawdev.backends import registry
    from rawdev.backends.weights import verify, weights_dir

    monkeypatch.delenv("RAWDEV_WEIGHTS_DIR", raising=False)
    assert weights_dir() == Path(str(importlib.resources.files("rawdev.weights")))
    own = [w for s in registry.list_backends() for w in s.weights.values() if not w.file.startswith("pkg:")]
    assert own, "no back-end ships its own weights"
    for w in own:
        assert verify(w).parent == weights_dir()


def test_every_source_folder_is_a_package():
    """setup.py's find_packages ships only folders with an ``__init__.py``: a folder of modules
    without one would be left out of the wheel (the checkout would still work)."""
    missing = [str(d.relative_to(REPO)) for d in (REPO / "rawdev").rglob("*")
               if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")) and not (d / "__init__.py").is_file()]
    assert missing == []


@pytest.mark.slow
def test_wheel_installs_and_develops_with_every_learned_backend(tmp_path, demo_dng):
    """Build the sdist and, from it, the wheel; install the wheel (not editable) into a fresh virtual
    environment; develop a DNG there with every learned back-end, away from the source tree."""
    from rawdev.backends import registry

    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = dist.glob("rawdev-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies (torch, rawpy, ...) come from this environment's site-packages, appended after
    # the fresh one's: a plain path line in a .pth file does not run that folder's own .pth files, so
    # the editable install of the checkout stays invisible there.
    ours = subprocess.run([sys.executable, "-c", "import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(ours + "\n")
    r = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAWDEV_WEIGHTS_DIR")}
    where = subprocess.run([str(py), "-c", "import json, rawdev, rawdev.backends.weights as w; "
                            "print(json.dumps([rawdev.__file__, str(w.weights_dir())]))"],
                           capture_output=True, text=True, cwd=tmp_path, env=env)
    assert where.returncode == 0, where.stderr
    pkg, weights = json.loads(where.stdout)
    assert pkg.startswith(site) and weights.startswith(site), (pkg, weights)
    learned = [s.name for s in registry.list_backends() if s.kind == "learned"]
    assert len(learned) >= 5
    for name in learned:
        out = tmp_path / f"{name}.png"
        r = subprocess.run([str(env_dir / "bin" / "rawdev"), "develop", str(demo_dng), "-o", str(out),
                            "--backend", name, "--device", "cpu"], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert r.returncode == 0, f"{name}: {r.stderr}"
        assert out.stat().st_size > 1000
