"""The network core of the learned back-ends ``jdd`` and ``jdd-noise`` (Gharbi2016 demosaicnet) and of
the compressed students; their specs and weight records are in :mod:`.specs`, and
:class:`~.runner.Runner` drives the core as the spec says (phase alignment, margins, tiling).

Runner contract (as for every back-end)::

    run = get("jdd").build(device="auto", dtype=None, tile=None)
    rgb = run(mosaic, pattern, noise=None)

* ``mosaic``: (N, 1, H, W) float, white-balanced, clipped to [0, 1] and **sRGB-encoded**
  (``input_domain="mosaic_srgb_wb"``: the network was trained on 8-bit sRGB photos, see
  learned_backends.md 1.3). Any H, W >= 2 (>= 6 for X-Trans), odd sizes included.
* ``pattern``: for Bayer sensors a pattern string ("RGGB", "BGGR", "GRBG", "GBRG") or a (2, 2) numpy
  cell of colour indices; for X-Trans sensors a (6, 6) numpy cell of colour indices (0=R, 1=G, 2=B)
  of the passed array, ``cell[y % 6, x % 6]`` being the colour of pixel (y, x).
* ``noise``: ignored by ``jdd``; for ``jdd-noise`` a scalar or (N,) tensor with the standard
  deviation of the noise in the same sRGB-encoded [0, 1] domain as the input (Gharbi2016 Sec. 4);
  None means a clean input (sigma 0).
* Returns (N, 3, H, W), aligned with the input, in the input's dtype and on its device, in the
  input's encoding (sRGB-encoded camera RGB: decode it to get linear camera RGB), **not clipped**.

Every Bayer phase is handled by the reflect-and-shift recipe of learned_backends.md 1.4: each network
window is extended by (dy, dx) so that it starts on the G of a G-R row (the network's native GRBG),
using reflection without edge repeat, which keeps the Bayer parity (``native_pattern="GRBG"`` in the
spec). Images larger than the tile are run tile by tile with the spec's 32-pixel margin; valid
convolutions make this exact (tiled output equals whole-image output to float rounding).

Weights: ``jdd`` uses the files shipped in the ``demosaicnet`` 0.0.14 wheel (MIT), located with
:mod:`importlib.metadata` (the package is never imported) and sha256-checked. ``jdd-noise`` uses
``weights/jdd_noise.safetensors``: exactly ``BayerDemosaicNet(noise_input=True).state_dict()``,
written by the training command (:mod:`rawdev.train`), model card ``weights/jdd_noise.md``; its sha256
is recorded in :data:`.specs.JDD_NOISE_SHA256` (update it whenever the file is re-trained). Without the
file, or with a different one, ``build`` raises :class:`~rawdev.errors.WeightsError`.

References:
    Gharbi2016: M. Gharbi, G. Chaurasia, S. Paris, F. Durand. "Deep Joint Demosaicking and
    Denoising". ACM Transactions on Graphics 35(6), 191 (SIGGRAPH Asia 2016).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..cfa import bayer_masks
from ..errors import BackendError, WeightsError
from ..models.gharbi2016 import BAYER_BORDER, BayerDemosaicNet, XTransDemosaicNet
from ..types import CFALayout
from .registry import WeightsSpec, get
from .runner import Runner, even_margin, execution
from .specs import JDD_BAYER, JDD_MARGIN, JDD_NOISE, JDD_NOISE_FADE, JDD_NOISE_SHA256, JDD_XTRANS
from .weights import load_into, resolve_path

__all__ = ["JDDCore", "student_runner", "JDD_BAYER", "JDD_XTRANS", "JDD_NOISE", "JDD_NOISE_SHA256", "JDD_MARGIN",
           "load_student"]

log = logging.getLogger(__name__)


class JDDCore:
    """The ``jdd`` / ``jdd-noise`` / student network core: ``core(windows, layout, noise)`` on windows
    the :class:`~.runner.Runner` has aligned (Bayer windows start on the spec's native pattern),
    returning the valid centre of each (``valid``). Attributes: ``bayer_net``, ``clean_net``
    (jdd-noise's noise-free expert, see :meth:`_noise_aware`), ``fade_sigma``, ``xtrans_net``
    (loaded on first use), ``border`` (the Bayer network's, checked against the spec's margin).
    """

    valid = True

    def __init__(self, bayer_net: torch.nn.Module, *, device: torch.device, dtype: torch.dtype,
                 xtrans_spec: WeightsSpec | None = None) -> None:
        self.device, self.dtype = device, dtype
        # what its valid convolutions eat per side (31 for demosaicnet, 2 depth + 1 for a student)
        self.border = int(getattr(bayer_net, "border", BAYER_BORDER))
        self.bayer_net = self._prepare(bayer_net)
        self.clean_net: torch.nn.Module | None = None
        self.fade_sigma = JDD_NOISE_FADE
        self._xtrans_spec = xtrans_spec
        self.xtrans_net: torch.nn.Module | None = None
        self._masks: dict[tuple[str, int, int], torch.Tensor] = {}

    def _prepare(self, net: torch.nn.Module) -> torch.nn.Module:
        net = net.eval().requires_grad_(False).to(device=self.device, dtype=self.dtype)
        return net.to(memory_format=torch.channels_last)

    def _xtrans(self) -> torch.nn.Module:
        if self.xtrans_net is None:
            if self._xtrans_spec is None:  # the runner checks cfa_types first: a spec out of step
                raise BackendError("this network has no X-Trans model")
            self.xtrans_net = self._prepare(load_into(XTransDemosaicNet(), self._xtrans_spec))
        return self.xtrans_net

    def __call__(self, windows: torch.Tensor, layout: CFALayout, noise=None) -> torch.Tensor:
        if layout.kind == "xtrans":
            return self._xtrans_core(windows, layout.cell)
        h, w = windows.shape[-2:]
        key = (layout.bayer_pattern, h, w)
        mask = self._masks.get(key)
        if mask is None:
            mask = bayer_masks(layout.bayer_pattern, h, w, device=windows.device, dtype=windows.dtype)
            self._masks = {key: mask, **dict(list(self._masks.items())[:7])}
        with torch.inference_mode():
            m3 = (windows * mask).contiguous(memory_format=torch.channels_last)
            return self.bayer_net(m3, None) if noise is None else self._noise_aware(m3, noise)

    def _noise_aware(self, m3: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """jdd-noise's output: the fine-tuned network, faded into the noise-free one below ``fade_sigma``.

        At sigma 0 there is nothing to denoise and the released noise-free network is the better
        demosaicker (our fine-tune costs it 0.25-0.58 dB there: weights/jdd_noise.md), and below
        ``fade_sigma[0]`` it runs alone; from ``fade_sigma[1]`` up the fine-tuned network alone
        runs. In between the two outputs are mixed linearly in sigma, so the result is continuous
        in the noise level.
        """
        if self.clean_net is None:
            return self.bayer_net(m3, noise)
        sig = torch.as_tensor(noise, dtype=m3.dtype, device=m3.device).reshape(-1)
        if sig.numel() == 1:
            sig = sig.expand(m3.shape[0])
        lo, hi = self.fade_sigma
        w = ((sig - lo) / (hi - lo)).clamp(0.0, 1.0)
        if bool((w >= 1).all()):
            return self.bayer_net(m3, sig)
        clean = self.clean_net(m3, None)
        if bool((w <= 0).all()):
            return clean
        noisy = self.bayer_net(m3, sig)
        return clean + w.view(-1, 1, 1, 1) * (noisy - clean)

    def _xtrans_core(self, windows: torch.Tensor, cell) -> torch.Tensor:
        h, w = windows.shape[-2:]
        reps = (-(-h // 6), -(-w // 6))
        idx = torch.from_numpy(np.tile(np.asarray(cell), reps)[:h, :w]).to(windows.device)
        mask = (idx[None] == torch.arange(3, device=windows.device)[:, None, None]).to(windows.dtype)
        with torch.inference_mode():
            m3 = (windows * mask).contiguous(memory_format=torch.channels_last)
            return self._xtrans()(m3)


def _build_jdd(
    noise_aware: bool = False,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
    tile: int | None = None,
    batch: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    fade: bool = True,
    **_: object,
) -> Runner:
    """Build the ``jdd`` (or ``jdd-noise``) runner.

    Args:
        noise_aware: the noise-aware model (``jdd-noise``).
        fade: ``jdd-noise`` only: fade into the noise-free network over :data:`JDD_NOISE_FADE`
            (False: the fine-tuned network alone at every noise level).
        device, dtype, tile, batch, workers, threads: :func:`~.runner.execution`'s. CPU
            ``workers``: tiles run concurrently, each with single-threaded ops (no per-layer
            barrier; measured faster, and much faster when other processes share the cores);
            default one per torch thread. 1 gives classic intra-op parallelism.

    Raises:
        WeightsError: weights missing, damaged or not fitting.
        UsageError, BackendError: bad device or dtype.
    """
    run = execution(device, dtype, tile, batch, workers, threads)
    if noise_aware:
        path = resolve_path(JDD_NOISE.file)
        if not path.is_file():
            raise WeightsError(
                f"the jdd-noise weights {path} do not exist yet: they are produced by fine-tuning "
                "demosaicnet with rawdev's training command; use --backend jdd meanwhile"
            )
        core = JDDCore(load_into(BayerDemosaicNet(noise_input=True), JDD_NOISE), device=run.device, dtype=run.dtype)
        if fade:
            core.clean_net = core._prepare(load_into(BayerDemosaicNet(), JDD_BAYER))
        return Runner(get("jdd-noise"), core, run)
    core = JDDCore(load_into(BayerDemosaicNet(), JDD_BAYER), device=run.device, dtype=run.dtype, xtrans_spec=JDD_XTRANS)
    return Runner(get("jdd"), core, run)


def load_student(spec: WeightsSpec, ranges: WeightsSpec | None = None) -> torch.nn.Module:
    """A compressed student (:class:`~rawdev.models.li2020.StudentJDD`, shape from the file's metadata)
    from its verified weights; with ``ranges`` (calibrated activation ranges) its int8 version.

    Raises:
        WeightsError: missing, damaged or unfitting files.
    """
    import json

    from safetensors import safe_open

    from ..models.li2020 import StudentJDD
    from .weights import load_state_dict, verify

    path = verify(spec)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    try:
        net = StudentJDD(json.loads(meta["widths"]), int(json.loads(meta["post_width"])),
                         noise_input=bool(json.loads(meta.get("noise_input", "true"))),
                         base=json.loads(meta.get("base", "true")),  # true: the first files' Malvar
                         base_input=bool(json.loads(meta.get("base_input", "false"))))
    except (KeyError, ValueError) as err:
        raise WeightsError(f"{path} has no student shape in its metadata ({err})", path) from None
    net = load_into(net, spec)
    if ranges is None:
        return net
    from ..models.quantise import Int8Student

    try:
        return Int8Student(net.eval(), load_state_dict(ranges))
    except ValueError as err:
        raise WeightsError(f"int8 calibration ranges do not fit the student ({err})", resolve_path(ranges.file)) from None


def student_runner(net: torch.nn.Module, name: str = "jdd-fast", *, device: str | torch.device = "auto",
                   tile: int | None = None, batch: int | None = None, workers: int | None = None) -> Runner:
    """A runner for any student network ``net`` under ``name``'s spec, its margin the network's own
    border made even (benchmarks and tests of students that are not the shipped one); float32."""
    from dataclasses import replace

    run = execution(device, None, tile, batch, workers)
    spec = replace(get(name), margin=even_margin(net.border))
    return Runner(spec, JDDCore(net, device=run.device, dtype=run.dtype), run)


def _build_student(
    name: str,
    weights: WeightsSpec,
    ranges: WeightsSpec | None = None,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
    tile: int | None = None,
    batch: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    **_: object,
) -> Runner:
    """The runner of a compressed student (``jdd-fast``), or of its int8 version (``jdd-fast-int8``:
    CPU only, float32 around the int8 trunk). Options as for :func:`_build_jdd`."""
    run = execution(device, dtype, tile, batch, workers, threads)
    if ranges is not None and run.device.type != "cpu":
        raise BackendError("the int8 student runs on the CPU only (x86 quantised kernels); use --device cpu")
    net = load_student(weights, ranges)
    return Runner(get(name), JDDCore(net, device=run.device, dtype=run.dtype), run)
