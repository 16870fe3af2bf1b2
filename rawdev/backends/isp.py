"""The network core of the learned ISPs ``pynet``, ``pynet-ca``, ``cameranet`` (trained by rawdev); their specs
and weight records are in :mod:`.specs`.

Runner contract (end-to-end back-ends: they replace demosaic, colour and tone)::

    run = get("cameranet").build(device="auto", tile=None)
    srgb = run(mosaic, pattern, noise=None, matrix=m)

* ``mosaic``: (N, 1, H, W) float, normalised, white-balanced, clipped at 1 from above
  (``input_domain="mosaic_linear_wb"``); any H, W >= 2, any Bayer phase.
* ``noise``: None (clean) or ``(N, 2)`` / ``(2,)`` (shot, read) variance coefficients on that data
  (variance ``shot * x + read``, the DNG NoiseProfile model).
* ``matrix``: ``(3, 3)`` camera RGB -> linear sRGB, exposure folded in (the file's matrix).
* Returns (N, 3, H, W) display sRGB in [0, 1] (``output_domain="srgb_display"``).

The networks and their frame are in :mod:`rawdev.models.isp_frame`. Tiling (:class:`~.runner.Runner`,
from the spec): windows are aligned on RGGB by reflection (as for ``jdd``) and padded by reflection to
the network's multiple of 32; tiles overlap and are cross-faded with a raised-cosine ramp
(``tile_exact=False``, ``tile_overlap``). The
whole-image parts of the networks (PyNET(-CA)'s instance-norm statistics and channel-attention gates,
CameraNet's Enhance-Net FiLM vector) are computed once per image and shared by every tile, so tiles
do not each get their own tone (learned_backends.md 4.3, 7.2 B). Above :data:`STATS_MEGAPIXELS`
they come from a reduced image: full-resolution crops for PyNET(-CA), a down-scaled copy for
CameraNet (see :meth:`ISPRunner.global_context`).

Weights: ``weights/<name>.safetensors``, written by ``rawdev train <name>``, with a model card
``weights/<name>.md``; the sha256 recorded below is checked on load.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import WeightsError
from ..models.isp_frame import ClassicalStart, ISPArch, LearnedISP, jdd_noise_sigma
from ..stages.tone import srgb_decode, srgb_encode
from ..tiling import mirror_pad
from .registry import get
from .runner import Runner, execution
from .specs import ISP_MARGIN, ISP_WEIGHTS
from .weights import load_into, read_verified, resolve_path, safetensors_metadata

__all__ = ["ISPCore", "isp_runner", "make_isp", "build_isp", "ISP_ARCH", "ISP_BASES", "UNNAMED_BASE",
           "DEFAULT_ISP_KIND", "DEFAULT_ISP_BASE", "ISP_WEIGHTS",
           "ISP_MARGIN", "STATS_MEGAPIXELS", "JDDNoiseStart", "JDDFastStart"]

STATS_MEGAPIXELS = 0.5
STATS_CROP = 256  # raw pixels per side of the full-resolution crops PyNET(-CA) statistics come from

class JDDNoiseStart:
    """The ``jdd-noise`` back-end as a :class:`~rawdev.models.isp_frame.LearnedISP` start:
    ``start(mosaic, noise) -> linear camera RGB`` of an RGGB mosaic, with no gradient.

    Run as the pipeline runs it: on the clipped sRGB-encoded mosaic, told :attr:`sigma` when a develop
    set it (the figure ``--backend jdd-noise`` gets for the file), else the sigma of
    :func:`~rawdev.models.isp_frame.jdd_noise_sigma` for the (shot, read) ``noise`` (training). The runner is
    built on first use for the input's device and dtype (and again if they change).
    """

    #: The registered back-end this start runs.
    backend = "jdd-noise"

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._runner = None
        #: The figure to tell jdd-noise for the image being developed (set per image by
        #: :meth:`ISPCore.prepare`): what ``--backend jdd-noise`` is told for the same file
        #: (:func:`rawdev.stages.noise.backend_sigma`, the RMS of the per-pixel sigma). None (training,
        #: tests): :func:`~rawdev.models.isp_frame.jdd_noise_sigma` of the (shot, read) ``noise``.
        self.sigma: float | None = None

    def backend_for(self, device: torch.device) -> str:
        """The back-end this start runs on ``device``."""
        return self.backend

    def __call__(self, mosaic: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        from .registry import get

        key = (mosaic.device, mosaic.dtype)
        if self._runner is None or self._key != key:
            # workers=1: one tile at a time, so a training step's threads stay as set
            self._runner = get(self.backend_for(mosaic.device)).build(device=str(mosaic.device), dtype=mosaic.dtype,
                                                                     workers=1)
            self._key = key
        with torch.no_grad():
            if self.sigma is not None and noise is not None:
                sigma = torch.full((mosaic.shape[0],), float(self.sigma))
            else:
                sigma = jdd_noise_sigma(noise, mosaic.shape[0])
            out = srgb_decode(self._runner(srgb_encode(mosaic), "RGGB", noise=sigma))
        # the runner works in inference mode; a plain copy can take part in the training graph
        return out.clone()


class JDDFastStart(JDDNoiseStart):
    """The ``jdd-fast-int8`` back-end (the int8 student of ``jdd-noise``, same inputs and noise figure)
    as a start: ``cameranet-fast``'s base, about 14x cheaper per pixel than ``jdd-noise``. The int8
    kernels are x86 CPU ones: on any other device the same student runs in float (``jdd-fast``)."""

    backend = "jdd-fast-int8"

    def backend_for(self, device: torch.device) -> str:
        return self.backend if torch.device(device).type == "cpu" else "jdd-fast"


#: The frame's network behind each learned ISP back-end, and the start each ``base`` of a configuration
#: means (a base is a registered demosaicker; the frame knows only the types).
ISP_ARCH = {"pynet": ISPArch.PYNET, "pynet-ca": ISPArch.PYNET_CA, "cameranet": ISPArch.CAMERANET,
            "cameranet-fast": ISPArch.CAMERANET}
_CLASSICAL_STARTS = {"bilinear": ClassicalStart.BILINEAR, "menon": ClassicalStart.MENON2007,
                     "menon-srgb": ClassicalStart.MENON2007_SRGB}
_LEARNED_STARTS = {"jdd-noise": JDDNoiseStart, "jdd-fast-int8": JDDFastStart}
ISP_BASES = (*_CLASSICAL_STARTS, *_LEARNED_STARTS)
#: The base of a configuration that names none (the first weights trained here used bilinear).
UNNAMED_BASE = "bilinear"
#: What ``rawdev train`` trains when not told (train.isp.ISPRecipe's defaults).
DEFAULT_ISP_KIND = "cameranet"
DEFAULT_ISP_BASE = "menon"


def build_isp(config: dict, learned_start=None) -> LearnedISP:
    """A :class:`~rawdev.models.isp_frame.LearnedISP` from its configuration (as stored with the
    weights: the back-end name ``kind`` and the ``base`` it refines, in the registry's names);
    ``learned_start``: the start of a learned base (default: a fresh :class:`JDDNoiseStart`).

    Raises:
        ValueError: an unknown kind or base. KeyError: no kind.
    """
    kind, base = config["kind"], config.get("base", UNNAMED_BASE)
    if kind not in ISP_ARCH:
        raise ValueError(f"unknown ISP {kind!r}; expected one of {', '.join(ISP_ARCH)}")
    if base not in ISP_BASES:
        raise ValueError(f"unknown ISP base {base!r}; expected one of {', '.join(ISP_BASES)}")
    config = {"kind": kind, "width": int(config.get("width", 32)), "kernels": config.get("kernels", "full"),
              "padding_mode": config.get("padding_mode", "reflect"),
              "instance_norm": bool(config.get("instance_norm", True)), "base": base}
    if base in _CLASSICAL_STARTS:
        start = _CLASSICAL_STARTS[base]
    else:  # handed in: models never import backends
        start = learned_start if learned_start is not None else _LEARNED_STARTS[base]()
    return LearnedISP(ISP_ARCH[kind], width=config["width"], kernels=config["kernels"],
                      padding_mode=config["padding_mode"], instance_norm=config["instance_norm"], start=start,
                      config=config)


def make_isp(kind: str, width: int = 32, kernels: str = "full", padding_mode: str = "reflect",
             instance_norm: bool = True, base: str = UNNAMED_BASE, learned_start=None) -> LearnedISP:
    """:func:`build_isp` of the configuration these arguments make (what training exports)."""
    return build_isp({"kind": kind, "width": width, "kernels": kernels, "padding_mode": padding_mode,
                      "instance_norm": instance_norm, "base": base}, learned_start)


def _downscale_mosaic(mosaic: torch.Tensor, factor: int) -> torch.Tensor:
    """An RGGB mosaic ``factor`` times smaller: each colour plane box-averaged, then re-mosaicked."""
    if factor <= 1:
        return mosaic
    mosaic = mosaic[..., : mosaic.shape[-2] // 2 * 2, : mosaic.shape[-1] // 2 * 2]  # whole 2x2 cells
    packed = F.pixel_unshuffle(mosaic, 2)
    h, w = packed.shape[-2] // factor * factor, packed.shape[-1] // factor * factor
    packed = F.avg_pool2d(packed[..., :h, :w], factor)
    return F.pixel_shuffle(packed, 2)


def _stat_crops(mosaic: torch.Tensor, side: int, megapixels: float) -> torch.Tensor:
    """Full-resolution crops of an RGGB mosaic, on a regular grid, about ``megapixels`` in all.

    Returns ``(n, 1, s, t)`` with ``s, t <= side`` even; every crop starts on an even row and
    column, so each is an RGGB mosaic too.
    """
    h, w = mosaic.shape[-2] // 2 * 2, mosaic.shape[-1] // 2 * 2
    ch, cw = min(side, h), min(side, w)
    n = max(1, int(megapixels * 1e6 // (ch * cw)))
    rows = max(1, min(n, round(math.sqrt(n * h / w))))  # rows of cells about as tall as wide
    crops = []
    for i in range(rows):
        cols = n // rows + (i < n % rows)  # the n crops shared out over the rows
        for j in range(cols):
            # centred in its cell, clamped inside the image, on an even offset
            y = min(max(0, int((i + 0.5) * h / rows - ch / 2)), h - ch) // 2 * 2
            x = min(max(0, int((j + 0.5) * w / cols - cw / 2)), w - cw) // 2 * 2
            crops.append(mosaic[..., y:y + ch, x:x + cw])
    return torch.cat(crops)


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Mirror-pad bottom/right to a multiple (without edge repeat: the Bayer parity is kept)."""
    h, w = x.shape[-2:]
    return mirror_pad(x, 0, (-h) % multiple, 0, (-w) % multiple), h, w


class ISPCore:
    """A learned ISP's core: :meth:`prepare` takes an image aligned on RGGB (by the
    :class:`~.runner.Runner`) and returns the core of its tiles, which share its
    :meth:`global_context`; windows are padded to the network's multiple by the runner."""

    def __init__(self, net: LearnedISP, *, device: torch.device, dtype: torch.dtype) -> None:
        self.net = net.eval().requires_grad_(False).to(device=device, dtype=dtype)
        self.device, self.dtype = device, dtype
        self.pad_multiple = net.multiple

    def global_context(self, mosaic: torch.Tensor, noise, matrix) -> dict:
        """The whole-image quantities every tile shares (RGGB mosaic).

        An image of at most :data:`STATS_MEGAPIXELS` gives them itself. A larger one: CameraNet's
        FiLM vector comes from a down-scaled copy (its global path pools the image to a vector
        anyway); PyNET(-CA)'s instance-norm statistics and attention gates come from
        full-resolution crops on a grid, pooled as one image. Down-scaling changes the features
        these layers average (edges are sharper, noise lower than the network was trained on), and
        channel-attention gates taken from a 3x smaller copy left a pink halo round highlights on a
        2.2 MP file (docs/learned_isp.md).
        """
        h, w = mosaic.shape[-2:]
        factor = max(1, math.ceil(math.sqrt(h * w / (STATS_MEGAPIXELS * 1e6))))
        ctx: dict = {}
        with torch.inference_mode():
            if self.net.film_context:
                small, _, _ = _pad_to(_downscale_mosaic(mosaic, factor), self.net.multiple)
                nz = None if noise is None else noise / factor**2  # averaging factor^2 samples
                ctx["film"] = self.net.film_vector(small.to(self.device, self.dtype), matrix, nz)
                return ctx
            sample = mosaic if factor == 1 else _stat_crops(mosaic, STATS_CROP, STATS_MEGAPIXELS)
            sample, _, _ = _pad_to(sample, self.net.multiple)
            n = sample.shape[0]
            with self.net.record_stats(pooled=True) as stats:
                self.net(sample.to(self.device, self.dtype), matrix.expand(n, 3, 3),
                         None if noise is None else noise.expand(n, 2), level=0)
            ctx["stats"] = stats
        return ctx

    def prepare(self, aligned: torch.Tensor, noise=None, matrix=None, start_sigma: float | None = None):
        """The core of one image's tiles: ``aligned`` (1, 1, H, W) starts on RGGB; ``noise`` None
        or its (shot, read) coefficients; ``matrix`` camera RGB -> linear sRGB, exposure folded in
        (None: identity); ``start_sigma`` the figure a learned jdd-noise start is told (the pipeline
        passes what ``--backend jdd-noise`` is told for the file; None: derived from ``noise``)."""
        if isinstance(self.net.start_with, JDDNoiseStart):
            self.net.start_with.sigma = start_sigma
        m = torch.eye(3) if matrix is None else torch.as_tensor(np.asarray(matrix), dtype=torch.float32)
        m = m.to(self.device, self.dtype)
        nz = None if noise is None else torch.as_tensor(noise, dtype=torch.float32).reshape(1, 2).to(self.device, self.dtype)
        ctx = self.global_context(aligned.float(), nz, m)
        net = self.net

        def core(windows: torch.Tensor, _layout, _noise=None) -> torch.Tensor:
            with torch.inference_mode():
                x = windows.to(self.device, self.dtype)
                mm = m.expand(x.shape[0], 3, 3)
                nn_ = None if nz is None else nz.expand(x.shape[0], 2)
                if net.film_context:
                    out = net(x, mm, nn_, film=ctx["film"].expand(x.shape[0], -1))
                else:
                    with net.replay_stats(ctx["stats"]):
                        out = net(x, mm, nn_)
            return out.clamp(0.0, 1.0)

        return core


def isp_runner(net: LearnedISP, *, device: str | torch.device = "cpu", dtype=None, tile: int | None = None) -> Runner:
    """``net`` run as its registered back-end runs (the spec its configuration names): one tile at a time."""
    run = execution(device, dtype, tile, batch=1, workers=1)
    return Runner(get(net.config["kind"]), ISPCore(net, device=run.device, dtype=run.dtype), run)


def _build_isp(name: str, *, device: str | torch.device = "auto", dtype=None, tile: int | None = None,
               threads: int | None = None, **_: object) -> Runner:
    # one tile at a time: the tiles of an image share the network's replayed statistics
    run = execution(device, dtype, tile, batch=1, workers=1, threads=threads)
    spec = ISP_WEIGHTS[name]
    path = resolve_path(spec.file)
    if not path.is_file() or not spec.sha256:
        raise WeightsError(f"the {name} weights {path} are not there yet: train them with `rawdev train {name}`")
    # Verified before any byte is used: the configuration below builds the network, and a header
    # edited to claim huge layers would otherwise allocate whatever it says.
    verified = read_verified(spec)
    meta = safetensors_metadata(verified[1], path)
    try:
        config = json.loads(meta["config"])
        net = build_isp(config)
    except (KeyError, json.JSONDecodeError) as err:
        raise WeightsError(f"{path} has no model configuration in its metadata", path) from err
    except (TypeError, ValueError) as err:
        raise WeightsError(f"{path}: the model configuration in its metadata does not build a network ({err})", path) from err
    net = load_into(net, spec, verified)
    return Runner(get(name), ISPCore(net, device=run.device, dtype=run.dtype), run)
