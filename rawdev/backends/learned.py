"""The runner of the learned back-ends ``jdd`` and ``jdd-noise`` (Gharbi2016 demosaicnet); their specs
and weight records are in :mod:`.specs`.

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
using reflection without edge repeat, which keeps the Bayer parity. Images larger than the tile are
run tile by tile through :func:`rawdev.tiling.run_tiled` with a 32-pixel margin; valid convolutions
make this exact (tiled output equals whole-image output to float rounding).

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
from ..errors import BackendError, UsageError, WeightsError
from ..models.gharbi2016 import BAYER_BORDER, XTRANS_BORDER, BayerDemosaicNet, XTransDemosaicNet
from ..tiling import resolve_device, resolve_dtype, run_tiled
from ..types import CFALayout
from .registry import WeightsSpec
from .specs import JDD_BAYER, JDD_MARGIN, JDD_NOISE, JDD_NOISE_FADE, JDD_NOISE_SHA256, JDD_XTRANS
from .weights import load_into, resolve_path

__all__ = ["JDDRunner", "JDD_BAYER", "JDD_XTRANS", "JDD_NOISE", "JDD_NOISE_SHA256", "JDD_MARGIN", "load_student"]

log = logging.getLogger(__name__)

DEFAULT_TILE = {"cpu": 512, "cuda": 1024}  # output pixels per tile side (measured: docs/benchmarks_jdd.md)
DEFAULT_BATCH = {"cpu": 1, "cuda": 4}


def _as_cfa(pattern):
    """``("bayer", pattern string)`` or ``("xtrans", (6, 6) int cell)``: :meth:`CFALayout.of`'s
    classification (a :class:`~rawdev.types.CFALayout` is taken as is).

    Raises:
        UsageError: neither a Bayer pattern nor a 2x2 / 6x6 colour-index cell.
    """
    layout = CFALayout.of(pattern)
    return layout.kind, layout.describe()


class JDDRunner:
    """The ``jdd`` / ``jdd-noise`` runner: ``run(mosaic, pattern, noise=None) -> (N, 3, H, W)``.

    See the module docstring for the contract. Attributes: ``device``, ``dtype``, ``tile``,
    ``batch``, ``uses_noise`` and the networks ``bayer_net`` / ``xtrans_net`` (the latter loaded
    on first use).
    """

    def __init__(
        self,
        bayer_net: torch.nn.Module | None,
        *,
        device: torch.device,
        dtype: torch.dtype,
        tile: int,
        batch: int,
        workers: int | None,
        uses_noise: bool,
        xtrans_spec: WeightsSpec | None,
        margin: int = JDD_MARGIN,
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.tile = int(tile)
        self.batch = int(batch)
        self.workers = workers  # None: one per CPU thread (torch.get_num_threads()) on the CPU
        self.uses_noise = uses_noise
        # Context per tile side, and what the Bayer network's valid convolutions eat of it (31 for
        # demosaicnet, 2 depth + 1 for a compressed student).
        self.margin = int(margin)
        self.border = int(getattr(bayer_net, "border", BAYER_BORDER))
        if self.border > self.margin or self.margin % 2:
            raise ValueError(f"margin {self.margin} must be even and >= the network's border {self.border}")
        self.bayer_net = None if bayer_net is None else self._prepare(bayer_net)
        self.clean_net: torch.nn.Module | None = None  # jdd-noise: the noise-free expert (see fade_sigma)
        self.fade_sigma = JDD_NOISE_FADE
        self._xtrans_spec = xtrans_spec
        self.xtrans_net: torch.nn.Module | None = None
        self._masks: dict[tuple[int, int], torch.Tensor] = {}

    def _prepare(self, net: torch.nn.Module) -> torch.nn.Module:
        net = net.eval().requires_grad_(False).to(device=self.device, dtype=self.dtype)
        return net.to(memory_format=torch.channels_last)

    def _xtrans(self) -> torch.nn.Module:
        if self.xtrans_net is None:
            if self._xtrans_spec is None:
                raise BackendError("this back-end handles Bayer sensors only; X-Trans needs --backend jdd")
            self.xtrans_net = self._prepare(load_into(XTransDemosaicNet(), self._xtrans_spec))
        return self.xtrans_net

    # Cores: called by run_tiled on windows with the margin; they return the interior only (valid).
    def _bayer_core(self, windows: torch.Tensor, pattern, noise=None) -> torch.Tensor:
        # pattern is always GRBG here (run_tiled aligns every window on native_pattern).
        h, w = windows.shape[-2:]
        mask = self._masks.get((h, w))
        if mask is None:
            mask = bayer_masks("GRBG", h, w, device=windows.device, dtype=windows.dtype)
            self._masks = {(h, w): mask, **dict(list(self._masks.items())[:7])}
        with torch.inference_mode():
            m3 = (windows * mask).contiguous(memory_format=torch.channels_last)
            if not self.uses_noise:
                out = self.bayer_net(m3, None)
            else:
                out = self._noise_aware(m3, noise)
        c = self.margin - self.border
        return out[..., c : out.shape[-2] - c, c : out.shape[-1] - c]

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

    def _xtrans_core(self, windows: torch.Tensor, cell, noise=None) -> torch.Tensor:
        h, w = windows.shape[-2:]
        reps = (-(-h // 6), -(-w // 6))
        idx = torch.from_numpy(np.tile(np.asarray(cell), reps)[:h, :w]).to(windows.device)
        mask = (idx[None] == torch.arange(3, device=windows.device)[:, None, None]).to(windows.dtype)
        with torch.inference_mode():
            m3 = (windows * mask).contiguous(memory_format=torch.channels_last)
            return self._xtrans()(m3)

    def _workers(self) -> int:
        if self.device.type != "cpu":
            return 1
        return torch.get_num_threads() if self.workers is None else max(1, int(self.workers))

    def __call__(self, mosaic: torch.Tensor, pattern, noise=None, region=None) -> torch.Tensor:
        """Demosaic ``mosaic`` (N, 1, H, W) with CFA ``pattern``; see the module docstring.
        ``region``: compute only ``(top, bottom, left, right)`` of it, the rest being context
        (:func:`rawdev.tiling.run_tiled`).

        Raises:
            UsageError: bad shape, dtype, pattern or noise.
            BackendError: X-Trans input for a Bayer-only back-end.
            WeightsError: the X-Trans weights cannot be loaded.
        """
        if not torch.is_tensor(mosaic) or mosaic.dim() != 4 or mosaic.shape[1] != 1:
            shape = tuple(mosaic.shape) if torch.is_tensor(mosaic) else type(mosaic).__name__
            raise UsageError(f"jdd expects a (N, 1, H, W) mosaic tensor, got {shape}")
        if not mosaic.is_floating_point():
            raise UsageError(f"jdd expects a float mosaic, got {mosaic.dtype}")
        kind, cfa = _as_cfa(pattern)
        if self.uses_noise:
            if noise is None:  # no noise level given: a clean input (sigma 0)
                noise = torch.zeros(mosaic.shape[0])
        else:
            noise = None
        if kind == "bayer":
            if self.bayer_net is None:
                raise BackendError("this runner has no Bayer network")
            return run_tiled(
                self._bayer_core, mosaic, cfa, tile=self.tile, margin=self.margin, multiple=2, exact=True,
                noise=noise, batch=self.batch, device=self.device, dtype=self.dtype,
                native_pattern="GRBG", valid=True, workers=self._workers(), region=region,
            )
        if self.uses_noise:
            raise BackendError("jdd-noise has no X-Trans model; use --backend jdd for X-Trans sensors")
        self._xtrans()
        return run_tiled(
            self._xtrans_core, mosaic, cfa, tile=self.tile, margin=XTRANS_BORDER, multiple=6, exact=True,
            noise=None, batch=self.batch, device=self.device, dtype=self.dtype, valid=True,
            workers=self._workers(), region=region,
        )


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
) -> JDDRunner:
    """Build the ``jdd`` (or ``jdd-noise``) runner.

    Args:
        noise_aware: the noise-aware model (``jdd-noise``).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        dtype: compute dtype; float32 by default, float16/bfloat16 allowed on CUDA.
        tile: output pixels per tile side; default 512 on CPU, 1024 on CUDA.
        batch: tiles per forward pass; default 1 on CPU, 4 on CUDA.
        workers: CPU only: tiles run concurrently, each with single-threaded ops (no per-layer
            barrier; measured faster, and much faster when other processes share the cores);
            default one per torch thread. 1 gives classic intra-op parallelism.
        threads: if given, ``torch.set_num_threads(threads)`` (process-wide); torch's default is
            the number of physical cores, which is the fastest setting measured here.
        fade: ``jdd-noise`` only: fade into the noise-free network over :data:`JDD_NOISE_FADE`
            (False: the fine-tuned network alone at every noise level).

    Raises:
        WeightsError: weights missing, damaged or not fitting.
        UsageError, BackendError: bad device or dtype.
    """
    dev = resolve_device(device)
    cdtype = resolve_dtype(dtype, dev)
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    if noise_aware:
        path = resolve_path(JDD_NOISE.file)
        if not path.is_file():
            raise WeightsError(
                f"the jdd-noise weights {path} do not exist yet: they are produced by fine-tuning "
                "demosaicnet with rawdev's training command; use --backend jdd meanwhile"
            )
        net = load_into(BayerDemosaicNet(noise_input=True), JDD_NOISE)
        xtrans = None
    else:
        net = load_into(BayerDemosaicNet(), JDD_BAYER)
        xtrans = JDD_XTRANS
    runner = JDDRunner(
        net, device=dev, dtype=cdtype,
        tile=DEFAULT_TILE[dev.type] if tile is None else int(tile),
        batch=DEFAULT_BATCH[dev.type] if batch is None else int(batch),
        workers=workers,
        uses_noise=noise_aware, xtrans_spec=xtrans,
    )
    if noise_aware and fade:
        runner.clean_net = runner._prepare(load_into(BayerDemosaicNet(), JDD_BAYER))
    return runner


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
                         base=json.loads(meta.get("base", "true")))
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


def _build_student(
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
) -> JDDRunner:
    """The runner of a compressed student (``jdd-fast``), or of its int8 version (``jdd-fast-int8``:
    CPU only, float32 around the int8 trunk). Options as for :func:`_build_jdd`."""
    from .specs import STUDENT_MARGIN

    dev = resolve_device(device)
    if ranges is not None and dev.type != "cpu":
        raise BackendError("the int8 student runs on the CPU only (x86 quantised kernels); use --device cpu")
    cdtype = resolve_dtype(dtype, dev)
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    net = load_student(weights, ranges)
    return JDDRunner(
        net, device=dev, dtype=cdtype,
        tile=DEFAULT_TILE[dev.type] if tile is None else int(tile),
        batch=DEFAULT_BATCH[dev.type] if batch is None else int(batch),
        workers=workers, uses_noise=True, xtrans_spec=None, margin=STUDENT_MARGIN,
    )
