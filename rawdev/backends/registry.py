"""The back-end registry: the only place that knows back-end names, what they consume and produce,
and their weights (after timm's ``register_model`` / ``create_model``).

A back-end is one frozen :class:`BackendSpec`. Classical demosaickers and learned networks are both
back-ends; the pipeline asks the spec which stages it replaces and which domain it wants its input in.
Registrations live in :mod:`rawdev.backends.specs` (torch-free), imported explicitly (never a folder
scan); the runners they build live in :mod:`.classical`, :mod:`.learned`, :mod:`.isp` and
:mod:`.libraw`. The names other modules need (the default, LibRaw's) are the constants below:
nothing outside this package spells a back-end's name.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from ..errors import UnknownBackendError

__all__ = ["WeightsSpec", "BackendSpec", "register", "get", "list_backends", "DEFAULT_BACKEND", "LIBRAW",
           "LIBRAW_FALLBACK", "LIBRAW_LINEAR", "LIBRAW_MONO", "HALF_SIZE", "COMPARE_BACKENDS", "ROUNDTRIP_BACKENDS", "STUDENT_BASES"]

#: The back-end ``develop``, ``batch`` and the Python API use when none is named.
DEFAULT_BACKEND = "menon-srgb"
#: LibRaw's own pipeline as a registered back-end (:mod:`rawdev.backends.libraw`): the reference.
LIBRAW = "libraw"
#: What a result says ran when a sensor the asked back-end cannot handle (4-colour, X-Trans for a
#: Bayer-only back-end, linear DNG) went through LibRaw's AHD demosaic instead.
LIBRAW_FALLBACK = "libraw-ahd"
#: What a result says ran for a linear (already demosaiced) DNG: LibRaw's render without demosaicking.
LIBRAW_LINEAR = "libraw-linear"
#: What a result says ran for a monochrome sensor: LibRaw's render of its one plane, as grey.
LIBRAW_MONO = "libraw-mono"
#: What a result says ran for ``--half-size`` on a Bayer or X-Trans mosaic: CFA blocks binned into
#: pixels (:mod:`rawdev.stages.demosaic.half_size`), nothing demosaicked.
HALF_SIZE = "half-size"
#: ``rawdev compare``'s default line-up, and ``rawdev eval roundtrip``'s.
COMPARE_BACKENDS = ("bilinear", "malvar", "menon", LIBRAW)
ROUNDTRIP_BACKENDS = ("bilinear", "malvar", "jdd", "jdd-noise", LIBRAW)
#: The classical back-ends a compressed student (:mod:`rawdev.models.li2020`) adds its correction
#: to; the first is the default (and what the first weights files, with ``base: true``, used).
STUDENT_BASES = ("malvar", "menon")

Domain = Literal[
    "mosaic_linear_wb",  # white-balanced, normalised linear mosaic (clip point 1.0)
    "mosaic_srgb_wb",  # the same, sRGB-encoded (demosaicnet was trained on sRGB-encoded data)
    "linear_camera_wb",  # demosaiced, white-balanced linear camera RGB
    "srgb_display",  # display-referred sRGB, encoded
    "raw_file",  # the RAW file itself (LibRaw decodes it)
    "linear_srgb",  # demosaiced, white-balanced linear sRGB (clip point 1.0)
]


@dataclass(frozen=True)
class WeightsSpec:
    """Where a back-end's weights live and how to trust them.

    ``file`` is a path relative to the repository's ``weights/`` folder or a ``pkg:<dist>/<path>`` reference
    to a data file of an installed distribution (located without importing it). ``sha256`` is always
    checked. ``state_dict_filter`` is the one place where original key names are mapped to ours.
    """

    file: str
    sha256: str
    license: str = ""
    source: str = ""
    card: str = ""  # model card, relative to weights/
    state_dict_filter: Callable[[dict], dict] | None = None


@dataclass(frozen=True)
class BackendSpec:
    """What a back-end is, consumes and produces. See docs/architecture.md."""

    name: str
    kind: Literal["classical", "learned"]
    description: str
    replaces: tuple[str, ...] = ("demosaic",)
    cfa_types: frozenset[str] = frozenset({"bayer"})
    input_domain: Domain = "mosaic_linear_wb"
    output_domain: Domain = "linear_camera_wb"
    native_pattern: str | None = None
    tile_multiple: int = 2
    margin: int = 0  # raw pixels of context each side of a tile (>= receptive field radius)
    xtrans_margin: int | None = None  # the same for X-Trans input, where it differs (None: margin)
    tile_exact: bool = True  # tiled output equals whole-image output
    tile_overlap: int | None = None  # cross-fade half-width when not exact (None: margin // 2)
    uses_noise: bool = False
    # what the runner takes and returns: torch tensors (tiled, any device) or numpy float32 arrays
    # (CPU, whole arrays; the developer then runs without importing torch)
    arrays: Literal["torch", "numpy"] = "torch"
    build: Callable[..., Any] | None = None
    weights: dict[str, WeightsSpec] = field(default_factory=dict)
    reference: str = ""


_REGISTRY: dict[str, BackendSpec] = {}


def register(spec: BackendSpec) -> BackendSpec:
    """Add ``spec``; a duplicate name is a programming error."""
    if spec.name in _REGISTRY:
        raise ValueError(f"back-end {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _ensure_loaded() -> None:
    # One explicit module of registrations (never a folder scan); it imports no torch, so listing or
    # checking back-ends stays cheap. Runners are imported by each spec's ``build``.
    from . import specs  # noqa: F401


def get(name: str) -> BackendSpec:
    """The spec called ``name``; :class:`UnknownBackendError` lists near matches."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        near = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(sorted(_REGISTRY))}"
        raise UnknownBackendError(f"unknown back-end {name!r}{hint}") from None


def list_backends(pattern: str = "*") -> list[BackendSpec]:
    """Registered specs whose names match the shell wildcard ``pattern``, in registration order."""
    _ensure_loaded()
    return [s for n, s in _REGISTRY.items() if fnmatch.fnmatchcase(n, pattern)]
