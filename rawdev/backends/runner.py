"""The one adapter between a back-end's spec and its network core.

A :class:`~.registry.BackendSpec` is the whole runner contract: which CFA kinds a back-end takes
(``cfa_types``), the Bayer phase its network was trained on (``native_pattern``), the multiple tile
origins keep (``tile_multiple``), the context it needs per side (``margin``, ``xtrans_margin``),
whether tiles may simply be put side by side (``tile_exact``) or must be cross-faded
(``tile_overlap``), and whether it takes a noise level (``uses_noise``). :class:`Runner` is the
only code that reads those fields: it checks the input, classifies the CFA once
(:meth:`CFALayout.of <rawdev.types.CFALayout.of>`), aligns the phase (:func:`rawdev.cfa.align_phase`,
:func:`rawdev.tiling.mirror_pad`) and drives the tiler (:func:`rawdev.tiling.run_tiled`). The
runner modules (:mod:`.classical`, :mod:`.learned`, :mod:`.isp`) hold network *cores* only.

A core is a callable ``core(windows (B, 1, h, w), layout, noise) -> (B, C, h', w')`` on windows that
already start on the spec's native pattern, with these optional attributes:

* ``valid`` (default False): the core returns the centre of each window, smaller by its
  receptive field on each side (valid convolutions); the runner keeps the tile's interior.
  Otherwise ``h' == h`` and ``w' == w``.
* ``pad_multiple`` (default 1): the core needs window sides that are multiples of this; the runner
  pads the windows by a parity-keeping mirror and crops the result.
* ``prepare(aligned, noise, **extra) -> core``: the core needs whole-image quantities (a learned
  ISP's shared normalisation statistics): it is handed each image aligned on the native pattern,
  its noise description as given and the call's extra arguments (``matrix``), and returns the core
  for that image's tiles; images are then run one by one and the noise goes to ``prepare`` only.

Runner call (every back-end that consumes a mosaic)::

    run = get(name).build(device="auto", dtype=None, tile=None, batch=None, workers=None, threads=None)
    out = run(mosaic, cfa, noise=None, region=None, **extra)

* ``mosaic``: (N, 1, H, W) float in the spec's ``input_domain``; any size of at least one CFA cell.
* ``cfa``: a :class:`~rawdev.types.CFALayout`, a Bayer pattern string or a (2, 2) / (6, 6) cell of
  colour indices describing ``mosaic[..., 0, 0]``.
* ``noise``: what the back-end's noise input takes (a scalar sigma or one per image for the joint
  demosaickers, where None means clean; (shot, read) coefficients for the learned ISPs).
* ``region``: ``(top, bottom, left, right)``: compute only that part, the rest being context (exact
  back-ends only).
* Returns (N, C, H, W) in the mosaic's dtype and on its device (a region's size with ``region``).

A spec with ``arrays="numpy"`` (a classical method with a numpy executor) takes and returns numpy
float32 arrays instead, untiled (a tensor is converted, and the result handed back as one), and this
module then imports no torch: a classical develop never
pays for it (about 1.3 s on a 2-core machine, more than LibRaw's whole develop of a 24 MP file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BackendError, UsageError
from ..cfa import align_phase
from ..types import CFALayout
from .registry import BackendSpec, list_backends

if TYPE_CHECKING:
    import torch

__all__ = ["Runner", "Execution", "execution", "even_margin", "DEFAULT_TILE", "DEFAULT_BATCH"]

#: Output pixels per tile side and tiles per forward pass, by device type (measured:
#: docs/benchmarks_jdd.md).
DEFAULT_TILE = {"cpu": 512, "cuda": 1024}
DEFAULT_BATCH = {"cpu": 1, "cuda": 4}


@dataclass(frozen=True)
class Execution:
    """Where and how a runner computes: ``device``, compute ``dtype``, ``tile`` side in output pixels
    (None: the whole array at once), ``batch`` windows per forward pass and CPU ``workers`` (tiles
    run concurrently; None: one per torch thread at call time). ``device`` and ``dtype`` are None
    for numpy runners (:data:`ARRAYS`)."""

    device: torch.device | None
    dtype: torch.dtype | None
    tile: int | None
    batch: int
    workers: int | None


def execution(device: str | torch.device = "auto", dtype: str | torch.dtype | None = None, tile: int | None = None,
              batch: int | None = None, workers: int | None = None, threads: int | None = None,
              tiled: bool = True) -> Execution:
    """The build options every runner takes, resolved once: ``auto`` device, float32 unless asked,
    the device's default tile and batch; ``threads`` sets torch's thread count (process-wide).
    ``tiled=False``: a runner that works on whole arrays (no tile).

    Raises:
        UsageError, BackendError: bad device or dtype (:func:`rawdev.tiling.resolve_device`).
    """
    import torch

    from ..tiling import resolve_device, resolve_dtype

    dev = resolve_device(device)
    cdtype = resolve_dtype(dtype, dev)
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    return Execution(
        device=dev, dtype=cdtype,
        tile=(DEFAULT_TILE[dev.type] if tile is None else int(tile)) if tiled else None,
        batch=DEFAULT_BATCH[dev.type] if batch is None else int(batch),
        workers=workers,
    )


class Runner:
    """A back-end's core driven as its :class:`~.registry.BackendSpec` says (see the module docstring).

    Attributes: ``spec``, ``core``, ``device``, ``dtype``, ``tile`` (None: untiled), ``batch``,
    ``workers``.
    """

    def __init__(self, spec: BackendSpec, core, run: Execution) -> None:
        self.spec, self.core = spec, core
        self.device, self.dtype, self.tile = run.device, run.dtype, run.tile
        self.batch, self.workers = run.batch, run.workers
        self.valid = bool(getattr(core, "valid", False))
        self.pad_multiple = int(getattr(core, "pad_multiple", 1))
        border = getattr(core, "border", None)
        if border is not None and (int(border) > spec.margin or spec.margin % 2):
            raise ValueError(f"{spec.name}: margin {spec.margin} must be even and >= the network's border {border}")

    @property
    def exact(self) -> bool:
        """Whether any region's output equals the whole image's there (the spec's ``tile_exact``):
        a caller may then develop the image region by region, with :meth:`band_margin` of context."""
        return self.spec.tile_exact

    def band_margin(self, layout: CFALayout) -> int:
        """Real context a caller cuts around a region (``region=``) so that the region comes out as in
        a whole-image run: the spec's margin plus one CFA cell for the windows' phase alignment, on
        whole cells (``lcm(2, period)``) so that every crop keeps the image's layout."""
        step = math.lcm(2, layout.period)
        return -(-(self.spec.margin + step) // step) * step

    def _workers(self) -> int:
        if self.device.type != "cpu":
            return 1
        import torch

        return torch.get_num_threads() if self.workers is None else max(1, int(self.workers))

    def _layout(self, cfa) -> CFALayout:
        layout = CFALayout.of(cfa)
        if layout.kind not in self.spec.cfa_types:
            others = [s.name for s in list_backends() if layout.kind in s.cfa_types and s.input_domain.startswith("mosaic")]
            hint = f"; for {layout.kind} sensors use {' or '.join(others)}" if others else ""
            raise BackendError(f"back-end {self.spec.name!r} handles {', '.join(sorted(self.spec.cfa_types))} "
                               f"sensors only{hint}")
        return layout

    def _tile_fn(self, core, margin: int):
        """``core`` as the tiler calls it: windows padded to the core's multiple, its valid output
        cut to the tile interior (``margin`` per side)."""
        from ..tiling import mirror_pad

        pad, valid = self.pad_multiple, self.valid

        def run(windows: torch.Tensor, layout: CFALayout, noise=None) -> torch.Tensor:
            h, w = windows.shape[-2:]
            if pad > 1 and (h % pad or w % pad):
                windows = mirror_pad(windows, 0, (-h) % pad, 0, (-w) % pad)
            out = core(windows, layout, noise)
            if valid:
                ih, iw = h - 2 * margin, w - 2 * margin
                cy, cx = (out.shape[-2] - ih) // 2, (out.shape[-1] - iw) // 2
                if cy < 0 or cx < 0:
                    raise BackendError(f"{self.spec.name}: the network's border is larger than the margin {margin}")
                return out[..., cy : cy + ih, cx : cx + iw]
            return out[..., :h, :w]

        return run

    def __call__(self, mosaic: torch.Tensor, cfa, noise=None, region: tuple[int, int, int, int] | None = None,
                 **extra) -> torch.Tensor:
        """Run the back-end on ``mosaic`` with CFA ``cfa``; see the module docstring.

        Raises:
            UsageError: bad shape, dtype, CFA description, noise or options.
            BackendError: a CFA kind the spec does not take; a core that broke its contract.
        """
        spec = self.spec
        if spec.arrays == "numpy":
            if not isinstance(mosaic, np.ndarray) and hasattr(mosaic, "detach"):
                # a tensor (code written for torch runners): computed as an array, handed back alike
                import torch

                out = self(mosaic.detach().float().cpu().numpy(), cfa, noise, region, **extra)
                return torch.from_numpy(out).to(device=mosaic.device, dtype=mosaic.dtype)
            _check_array(mosaic)
        else:
            from ..tiling import check_mosaic

            check_mosaic(mosaic)
        layout = self._layout(cfa)
        prepare = getattr(self.core, "prepare", None)
        if extra and prepare is None:
            raise UsageError(f"back-end {spec.name!r} takes no {', '.join(sorted(extra))}")
        if self.tile is None:  # whole arrays: the core sees the array itself (its own border handling)
            out = self.core(mosaic, layout, noise if spec.uses_noise else None)
            if region is None:
                return out
            y0, y1, x0, x1 = region
            return out[..., y0:y1, x0:x1]
        import torch

        from ..tiling import mirror_pad, run_tiled

        bayer = layout.kind == "bayer"
        margin = spec.margin if bayer or spec.xtrans_margin is None else spec.xtrans_margin
        native = spec.native_pattern if bayer else None
        tiled = dict(tile=self.tile, margin=margin, multiple=spec.tile_multiple, exact=spec.tile_exact,
                     overlap=spec.tile_overlap, batch=self.batch, device=self.device, dtype=self.dtype,
                     native_pattern=native, valid=self.valid, workers=self._workers(), region=region)
        if prepare is None:
            if spec.uses_noise:
                noise = torch.zeros(mosaic.shape[0]) if noise is None else noise  # no level given: clean
            else:
                noise = None
            out = run_tiled(self._tile_fn(self.core, margin), mosaic, layout, noise=noise, **tiled)
        else:
            # Whole-image quantities make the images of a batch independent: one at a time, each
            # handed to the core aligned on the native pattern (a parity-keeping mirror in front).
            n = mosaic.shape[0]
            noises = [None] * n if noise is None else list(torch.as_tensor(noise).reshape(n, -1))
            dy, dx = (0, 0) if native is None else align_phase(layout, native)
            outs = []
            for i in range(n):
                one = mosaic[i:i + 1]
                core = prepare(mirror_pad(one, dy, 0, dx, 0), noises[i], **extra)
                outs.append(run_tiled(self._tile_fn(core, margin), one, layout, noise=None, **tiled))
            out = outs[0] if n == 1 else torch.cat(outs)
        if spec.output_domain == "srgb_display":  # display codes; the cross-fade can overshoot by rounding
            out = out.clamp_(0.0, 1.0)
        return out


#: How numpy runners compute: on the CPU, in float32, on whole arrays (no torch).
ARRAYS = Execution(device=None, dtype=None, tile=None, batch=1, workers=None)


def _check_array(mosaic) -> None:
    """Raise :class:`UsageError` unless ``mosaic`` is a float (N, 1, H, W) numpy array."""
    if not isinstance(mosaic, np.ndarray) or mosaic.ndim != 4 or mosaic.shape[1] != 1:
        shape = tuple(mosaic.shape) if hasattr(mosaic, "shape") else type(mosaic).__name__
        raise UsageError(f"expected a (N, 1, H, W) numpy mosaic, got {shape}")
    if mosaic.dtype.kind != "f":
        raise UsageError(f"expected a float mosaic, got {mosaic.dtype}")


def even_margin(border: int) -> int:
    """The smallest even margin that covers a network's ``border`` (keeps the Bayer parity)."""
    return int(border) + int(border) % 2

