"""Locating, verifying and loading back-end weights (a :class:`~rawdev.backends.registry.WeightsSpec`).

A ``WeightsSpec.file`` is either

* ``pkg:<distribution>/<path>``: a data file of an installed distribution, found through
  :mod:`importlib.metadata` without importing the distribution (``demosaicnet``'s ``__init__`` needs
  ``pkg_resources`` and fails on recent setuptools), e.g. ``pkg:demosaicnet/demosaicnet/data/bayer.pth``;
* a path relative to the weights folder: ``$RAWDEV_WEIGHTS_DIR`` when set, else the package
  ``rawdev.weights`` found through :mod:`importlib.resources` (the repository's top-level ``weights/``
  folder, installed under that name by setup.py in a wheel and mapped to it by an editable install).

The sha256 of the file is checked on every load, on the very bytes that are then used: the file is
read once (:func:`read_verified`), checked, and only then parsed, so nothing in it (not even the
safetensors header's metadata, which configures the ISP networks) is trusted before the check.
``.safetensors`` files are read with safetensors, anything else with
``torch.load(weights_only=True, map_location="cpu")``. Strict loading: a missing or
unexpected key, or a shape mismatch, is a :class:`~rawdev.errors.WeightsError`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import io
import json
import os
import struct
from pathlib import Path

import torch

from ..errors import WeightsError
from .registry import WeightsSpec

__all__ = ["weights_dir", "resolve_path", "sha256_file", "verify", "read_verified", "safetensors_metadata",
           "load_state_dict", "load_into"]

#: The largest weights file rawdev reads into memory to verify it (its own are a few MB).
MAX_WEIGHTS_BYTES = 1 << 30


def weights_dir() -> Path:
    """The folder holding rawdev's own weights files (``$RAWDEV_WEIGHTS_DIR`` overrides).

    The installed package ``rawdev.weights`` (wheel or editable install: plain files, never zipped);
    in a source tree used without installing it (``PYTHONPATH=.``, or an editable install made
    before the package existed) the top-level ``weights/`` folder next to ``rawdev/``.
    """
    env = os.environ.get("RAWDEV_WEIGHTS_DIR")
    if env:
        return Path(env)
    try:
        return Path(str(importlib.resources.files("rawdev.weights")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "weights"


def resolve_path(file: str) -> Path:
    """The local path of a ``WeightsSpec.file`` reference (the file may not exist).

    Raises:
        WeightsError: a ``pkg:`` reference names a distribution that is not installed.
    """
    if file.startswith("pkg:"):
        ref = file[4:]
        dist_name, _, rel = ref.partition("/")
        if not dist_name or not rel:
            raise WeightsError(f"bad package weights reference {file!r}; expected pkg:<dist>/<path>")
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            raise WeightsError(
                f"weights {file!r} need the {dist_name!r} package: pip install {dist_name}"
            ) from None
        return Path(str(dist.locate_file(rel)))
    return weights_dir() / file


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def verify(spec: WeightsSpec) -> Path:
    """The path of ``spec``'s file after checking that it exists and its sha256 matches.

    Raises:
        WeightsError: missing file, no recorded checksum, or checksum mismatch.
    """
    path = resolve_path(spec.file)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path} (from {spec.file!r})")
    if not spec.sha256:
        raise WeightsError(f"no sha256 recorded for weights {spec.file!r}; refusing to load an unverified file", path)
    got = sha256_file(path)
    if got.lower() != spec.sha256.lower():
        raise WeightsError(
            f"sha256 mismatch for weights {spec.file!r}: expected {spec.sha256}, got {got} "
            "(damaged or replaced file)", path,
        )
    return path


def read_verified(spec: WeightsSpec) -> tuple[Path, bytes]:
    """The path and the bytes of ``spec``'s file, read once and checked against its sha256; every
    later use parses these bytes, so a file replaced after the check is never used.

    Raises:
        WeightsError: missing file, no recorded checksum, unreadable, too large, or checksum mismatch.
    """
    path = resolve_path(spec.file)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path} (from {spec.file!r})")
    if not spec.sha256:
        raise WeightsError(f"no sha256 recorded for weights {spec.file!r}; refusing to load an unverified file", path)
    try:
        if path.stat().st_size > MAX_WEIGHTS_BYTES:
            raise WeightsError(f"weights {spec.file!r} are {path.stat().st_size >> 20} MiB, more than any rawdev weights", path)
        data = path.read_bytes()
    except OSError as e:
        raise WeightsError(f"cannot read weights {spec.file!r}: {e.strerror or e}", path) from None
    got = hashlib.sha256(data).hexdigest()
    if got.lower() != spec.sha256.lower():
        raise WeightsError(
            f"sha256 mismatch for weights {spec.file!r}: expected {spec.sha256}, got {got} "
            "(damaged or replaced file)", path,
        )
    return path, data


def safetensors_metadata(data: bytes, path: str | Path | None = None) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header, parsed from its (verified) bytes.

    The format: an 8-byte little-endian header length, then that many bytes of JSON.
    """
    if len(data) < 8:
        raise WeightsError("not a safetensors file (shorter than its header length)", path)
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > len(data) - 8:
        raise WeightsError(f"not a safetensors file (header of {n} bytes in a file of {len(data)})", path)
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightsError("not a safetensors file (its header is not JSON)", path) from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if meta is None:
        return {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise WeightsError("the safetensors metadata are not a table of strings", path)
    return meta


def load_state_dict(spec: WeightsSpec, verified: tuple[Path, bytes] | None = None) -> dict[str, torch.Tensor]:
    """The verified state dict of ``spec`` on the CPU, after ``spec.state_dict_filter``;
    ``verified`` is what :func:`read_verified` returned, when the caller has read the file already.

    Raises:
        WeightsError: missing, damaged or unreadable file.
    """
    path, data = verified or read_verified(spec)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load

            sd = load(data)
        else:
            sd = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - any reader failure is a weights problem
        raise WeightsError(f"cannot read weights {spec.file!r}: {err}", path) from err
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"weights {spec.file!r} are not a state dict of tensors", path)
    if spec.state_dict_filter is not None:
        sd = spec.state_dict_filter(sd)
    return sd


def load_into(module: torch.nn.Module, spec: WeightsSpec, verified: tuple[Path, bytes] | None = None) -> torch.nn.Module:
    """Load ``spec``'s verified weights into ``module`` strictly; returns the module.

    Raises:
        WeightsError: missing file, checksum mismatch, missing/unexpected keys or wrong shapes.
    """
    sd = load_state_dict(spec, verified)
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise WeightsError(
            f"weights {spec.file!r} do not fit {type(module).__name__}: "
            f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    bad = [k for k in own if tuple(own[k].shape) != tuple(sd[k].shape)]
    if bad:
        k = bad[0]
        raise WeightsError(
            f"weights {spec.file!r} do not fit {type(module).__name__}: {k} has shape "
            f"{tuple(sd[k].shape)}, expected {tuple(own[k].shape)}"
        )
    module.load_state_dict(sd, strict=True)
    return module
