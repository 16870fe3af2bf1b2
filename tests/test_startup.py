"""Start-up: the light commands never import torch or model code (each run in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Runs the CLI in-process in a fresh interpreter, then reports which heavy modules got imported.
PROBE = r"""
import json, sys
sys.argv = ["rawdev"] + json.loads(sys.argv[1])
from rawdev.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m == "torch" or m.startswith(("rawdev.models", "rawdev.pipeline",
                                                                       "rawdev.backends.learned")))
sys.stderr.write("\nHEAVY=" + json.dumps(heavy) + "\n")
"""


def _heavy_modules(args: list[str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                         timeout=120)
    line = [ln for ln in out.stderr.splitlines() if ln.startswith("HEAVY=")]
    assert line, out.stderr
    return json.loads(line[-1][len("HEAVY="):])


@pytest.mark.parametrize("args", [
    ["--help"],
    ["backends"],
    ["backends", "jdd*"],
    ["develop", "--bogus-option"],
    ["develop", "photo.dng", "--backend", "nope"],
    ["develop", "photo.dng", "-o", "out.jpeg2000"],
    ["compress", "--help"],
])
def test_light_commands_import_no_torch(args):
    assert _heavy_modules(args) == []


def test_info_imports_no_torch(demo_dng):
    # info shows the white balance and noise model a develop would use: both estimated with numpy
    assert _heavy_modules(["info", str(demo_dng)]) == []


def test_the_estimators_info_shows_are_numpy_only():
    # the white balance and noise stages are written once, in numpy; the pipeline makes tensors of their output
    code = ("import sys, rawdev.stages.white_balance, rawdev.stages.noise, rawdev.stages.normalise; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("options", [[], ["-H", "blend"], ["--half-size"], ["--bits", "32", "-H", "unclip"]])
def test_default_develop_imports_no_torch(demo_dng, tmp_path, options):
    # The default back-end's runner and every stage of its develop are numpy (OpenCV): no torch at
    # all, whatever the options (-H blend imported it for its 24 MP develop's 1.3 s until it was numpy).
    dst = tmp_path / ("out.tif" if "32" in options else "out.jpg")
    assert _heavy_modules(["develop", str(demo_dng), "-o", str(dst), *options]) == ["rawdev.pipeline"]
    assert dst.stat().st_size > 0


def test_torch_develop_overlaps_the_torch_import(demo_dng, tmp_path):
    # A back-end whose runner takes tensors: torch is imported while LibRaw decodes.
    dst = tmp_path / "out.jpg"
    assert "torch" in _heavy_modules(["develop", str(demo_dng), "-o", str(dst), "-b", "malvar"])
    assert dst.stat().st_size > 0
