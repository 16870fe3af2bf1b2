"""The frame every learned ISP back-end runs in: what the file tells us goes in, display sRGB comes out.

PyNET (Ignatov2020), PyNET-CA (Kim2020) and CameraNet (Liang2019) were each trained for *one* camera:
their input is that camera's packed raw data and everything else, white balance and colour included,
is learned. A user's camera is never the training camera, so the networks here are wrapped in a frame
that feeds them what the RAW file says and leaves them only the camera-independent work:

1. **Input** ``(N, 1, H, W)``: the normalised (black-subtracted, divided by the clip point),
   white-balanced mosaic, clipped to [0, 1], always in RGGB phase (the tiling engine aligns any other
   phase by reflection, as for ``jdd``), packed to ``(N, 4, H/2, W/2)`` planes R, G1, G2, B; plus
   four planes with the per-sample noise standard deviation ``sqrt(shot * x + read)`` (the DNG
   NoiseProfile model, Brooks2019 Eq. 4; zeros for a clean input). White balance and black/white
   level thus come from the file, never from the weights.
2. **Residual over a fixed demosaic** (``start``: a :class:`ClassicalStart`: bilinear, Menon2007
   DDFAPD, or Menon2007 on the sRGB-encoded mosaic, decoded after; or a learned start handed in): the network
   output is added to that demosaic of the input mosaic (for PyNET's coarser levels, to its
   average-pooled copy). Not in the papers: it makes the untrained network start at a
   usable image, which matters when a 2-core CPU gives us 0.01-1 % of the papers' training compute.
   The first weights used bilinear; a bilinear start leaves the network the whole demosaicking to
   learn (CameraNet c16 got from bilinear's 26.6 dB to 32.3 dB on the Kodak round trip, AHD: 32.7),
   while Menon's start is already above AHD's level (33.5 dB), so the training budget goes to what is
   left: denoising and the remaining demosaicking error. Menon on the encoded mosaic starts higher
   still (docs/learned_isp.md). The learned start is the registry's noise-aware joint
   demosaicking-denoising back-end (our fine-tuned Gharbi2016 network), the best start we have,
   3.8-4.3 dB (clean) and 4.3-4.8 dB (noisy) above encoded Menon on the round trip; the frame's
   networks then learn only what it leaves (docs/learned_isp.md says what each part contributes).
   Which back-end names mean which network and start is the registry's business
   (:mod:`rawdev.backends.isp`); this module knows only the types.
3. **Fixed colour layer**: the result (linear, white-balanced camera RGB) goes through the file's own
   camera -> sRGB matrix (a 3x3 per image, exposure folded in), then the sRGB OETF (IEC 61966-2-1).
   The matrix is applied, not learned, so one set of weights renders any camera's colours.
4. CameraNet only: the Enhance-Net refines the sRGB-encoded image as a global residual
   (``display = encoded + enhance(encoded)``): the default look is neutral (the classical pipeline's
   curve, no tone curve), which makes the identity the right starting point.

Outputs are display-referred sRGB, unclipped while training (the loss sees the overshoot) and
clipped to [0, 1] at inference.

References:
    Ignatov2020: A. Ignatov, L. Van Gool, R. Timofte. "Replacing Mobile Camera ISP with a Single Deep
    Learning Model". CVPR Workshops 2020.
    Kim2020: B.-H. Kim, J. Song, J. C. Ye, J. Baek. "PyNET-CA: Enhanced PyNET with Channel Attention
    for End-to-End Mobile Image Signal Processing". ECCV Workshops (AIM) 2020.
    Liang2019: Z. Liang, J. Cai, Z. Cao, L. Zhang. "CameraNet: A Two-Stage Framework for Effective
    Camera ISP Learning". IEEE TIP 30, 2021 (arXiv 1908.01481).
    Brooks2019: T. Brooks et al. "Unprocessing Images for Learned Raw Denoising". CVPR 2019.
"""

from __future__ import annotations

from contextlib import contextmanager
from enum import Enum, auto
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..stages.tone import srgb_decode_unclipped, srgb_encode_unclipped

__all__ = ["ISPArch", "ClassicalStart", "levels_of", "classical_base", "LearnedISP", "pack_rggb", "noise_planes"]


class ISPArch(Enum):
    """The network inside the frame."""

    PYNET = auto()  # Ignatov2020
    PYNET_CA = auto()  # Kim2020
    CAMERANET = auto()  # Liang2019: two stages, a global FiLM vector


class ClassicalStart(Enum):
    """The fixed classical demosaics a frame can be a residual over (:func:`classical_base`)."""

    BILINEAR = auto()
    MENON2007 = auto()
    MENON2007_SRGB = auto()  # Menon2007 on the sRGB-encoded mosaic, decoded after


def levels_of(arch: ISPArch) -> tuple[int, ...]:
    """Training stages: PyNET levels 5..0; CameraNet ``(1, 0)`` (Restore-Net alone, then joint)."""
    return (1, 0) if arch is ISPArch.CAMERANET else (5, 4, 3, 2, 1, 0)


#: A start handed in: ``start(mosaic, noise) -> linear camera RGB``, no gradient.
Start = Callable[[Tensor, "Tensor | None"], Tensor]

IN_CHANNELS = 8  # 4 packed colour planes + 4 noise planes


def pack_rggb(mosaic: Tensor) -> Tensor:
    """``(N, 1, H, W)`` RGGB mosaic -> ``(N, 4, H/2, W/2)`` planes R, G1 (row 0), G2 (row 1), B."""
    return F.pixel_unshuffle(mosaic, 2)


def noise_planes(packed: Tensor, noise: Tensor | None) -> Tensor:
    """Per-sample noise std ``sqrt(shot * x + read)`` for packed data ``(N, 4, h, w)``.

    ``noise``: ``(N, 2)`` (shot, read) variance coefficients in the input's units, or None (clean).
    The observed (noisy) value stands in for the unknown clean one, as at inference.
    """
    if noise is None:
        return torch.zeros_like(packed)
    nz = noise.to(device=packed.device, dtype=packed.dtype).reshape(-1, 2, 1, 1)
    var = nz[:, :1] * packed.clamp(0.0, 1.0) + nz[:, 1:]
    return var.clamp_min(0.0).sqrt()


def jdd_noise_sigma(noise: Tensor | None, n: int) -> Tensor:
    """``(N,)`` noise std in the sRGB-encoded domain jdd-noise works in, from ``(N, 2)`` (shot, read).

    The signal-dependent model reduced to one sigma at 18 % grey and carried through the curve's
    slope there, as the pipeline does for a noise-aware demosaicker (``rawdev.pipeline._noise_sigma``).
    """
    from ..stages.noise import SIGMA_GREY, srgb_slope

    if noise is None:
        return torch.zeros(n)
    nz = noise.detach().float().reshape(-1, 2)
    return (nz[:, 0] * SIGMA_GREY + nz[:, 1]).clamp_min(0.0).sqrt().cpu() * srgb_slope(SIGMA_GREY)


def classical_base(mosaic: Tensor, base: ClassicalStart) -> Tensor:
    """The fixed classical demosaic (linear camera RGB) the network's output is added to (no gradient).

    ``MENON2007_SRGB`` runs Menon2007 on the sRGB-encoded mosaic and decodes the result. Colour-difference
    interpolation assumes R - G and B - G vary slowly; under shading a surface's channel *ratios* are
    constant, so its differences are constant after a log-like encoding and not in linear light.
    Measured on the round trip (docs/benchmarks.md): +4.1 dB clean on Kodak24 over linear Menon.
    A learned start is handed to :class:`LearnedISP` instead.
    """
    from ..stages.demosaic.bilinear import demosaic_bilinear
    from ..stages.demosaic.menon2007 import demosaic_menon2007

    with torch.no_grad():
        if base is ClassicalStart.MENON2007_SRGB:
            return srgb_decode_unclipped(demosaic_menon2007(srgb_encode_unclipped(mosaic), "RGGB"))
        if base is ClassicalStart.MENON2007:
            return demosaic_menon2007(mosaic, "RGGB")
        return demosaic_bilinear(mosaic, "RGGB")


class LearnedISP(nn.Module):
    """A PyNET / PyNET-CA / CameraNet core inside the frame described in the module docstring.

    Args:
        arch: the network (:class:`ISPArch`).
        width: the core's first-level width (paper: 32 for all three).
        kernels: PyNET only: ``"full"``, ``"dilated"`` or ``"cap5"`` (see ``ignatov2020``).
        padding_mode: CameraNet only: ``"reflect"`` (paper) or ``"zeros"`` (small training patches).
        instance_norm: PyNET(-CA) only: the papers' instance normalisation (True). The configurations
            trained here leave it out: it removes each tile's absolute level and contrast, which a
            neutral render must keep, and it makes tiles depend on their own statistics.
        start: the fixed demosaic the output is a residual over (see the module docstring): a
            :class:`ClassicalStart`, or a learned start, ``start(mosaic, noise) -> linear camera
            RGB``, handed in by the caller (:class:`rawdev.backends.isp.JDDNoiseStart`): ``models``
            never imports ``backends``, which import ``models``.
        config: the configuration stored with the weights, in the registry's terms (the frame
            keeps it for export and does not read it; :func:`rawdev.backends.isp.make_isp`).
    """

    def __init__(self, arch: ISPArch, width: int = 32, kernels: str = "full",
                 padding_mode: str = "reflect", instance_norm: bool = True,
                 start: ClassicalStart | Start = ClassicalStart.BILINEAR, config: dict | None = None) -> None:
        super().__init__()
        if not isinstance(arch, ISPArch):
            raise ValueError(f"unknown ISP network {arch!r}; expected an ISPArch")
        if not (isinstance(start, ClassicalStart) or callable(start)):
            raise ValueError(f"unknown ISP start {start!r}; expected a ClassicalStart or a callable")
        self.arch = arch
        # a plain attribute: a learned start stays outside the parameters and state dict
        self.start_with = start
        self.config = dict(config or {})
        if arch is ISPArch.CAMERANET:
            from .liang2019 import CameraNet

            self.core = CameraNet(in_channels=IN_CHANNELS, width=width, padding_mode=padding_mode)
        else:
            from .ignatov2020 import make_pynet, make_pynet_ca

            make = make_pynet_ca if arch is ISPArch.PYNET_CA else make_pynet
            self.core = make(width=width, in_channels=IN_CHANNELS, kernels=kernels, instance_norm=instance_norm)
        self.zero_outputs()

    def start(self, mosaic: Tensor, noise: Tensor | None) -> Tensor:
        """The fixed start (linear camera RGB, no gradient) the network's output is added to.

        A classical start is :func:`classical_base`. A learned one is the registered noise-aware
        joint demosaicker (Gharbi2016 with a noise-level input, fine-tuned by ``rawdev train jdd``;
        faded into the released noise-free network at sigma 0), handed in
        (:class:`rawdev.backends.isp.JDDNoiseStart`): its weights are the back-end's own files,
        sha256-checked there.
        """
        if isinstance(self.start_with, ClassicalStart):
            return classical_base(mosaic, self.start_with)
        return self.start_with(mosaic, noise)

    @property
    def learned(self) -> bool:
        """Whether the start is a learned one, handed in (not a :class:`ClassicalStart`)."""
        return not isinstance(self.start_with, ClassicalStart)

    def zero_outputs(self) -> None:
        """Zero the output convolutions (the only ones with 3 or 12 = 3 x 2^2 output channels).

        The frame then returns exactly the classical base's render, and training starts from there;
        also used when trained weights are continued over a different base.
        """
        for m in self.core.modules():
            if isinstance(m, nn.Conv2d) and m.out_channels in (3, 12):
                nn.init.zeros_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def levels(self) -> tuple[int, ...]:
        """Training stages: PyNET levels 5..0; CameraNet ``(1, 0)`` (Restore-Net alone, then joint)."""
        return levels_of(self.arch)

    @property
    def film_context(self) -> bool:
        """Whether tiles share a global FiLM vector (CameraNet's Enhance-Net, :meth:`film_vector`)
        rather than recorded normalisation statistics (PyNET(-CA), :meth:`record_stats`)."""
        return self.arch is ISPArch.CAMERANET

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (four 2x poolings of the half-resolution planes)."""
        return 32

    def forward(self, mosaic: Tensor, matrix: Tensor, noise: Tensor | None = None, level: int = 0,
                film: Tensor | None = None, return_restored: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Display sRGB ``(N, 3, H / 2**level, W / 2**level)`` (unclipped) of an RGGB mosaic.

        Args:
            mosaic: ``(N, 1, H, W)`` normalised, white-balanced, clipped RGGB mosaic; H, W multiples
                of 32.
            matrix: ``(N, 3, 3)`` or ``(3, 3)`` camera RGB -> linear sRGB (exposure folded in).
            noise: ``(N, 2)`` (shot, read) or None.
            level: PyNET: the output level (0 = full resolution); CameraNet: 1 = Restore-Net only
                (its output through the colour layer), 0 = both stages.
            film: CameraNet: a precomputed Enhance-Net FiLM vector (tiled inference); else None.
            return_restored: CameraNet at level 0: return ``(display, restored)``, the second being
                the Restore-Net's image through the colour layer (what level 1 returns), for the
                joint stage's loss.
        """
        n, _, h, w = mosaic.shape
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"learned ISP input sides must be multiples of {self.multiple}, got {h}x{w}")
        packed = pack_rggb(mosaic)
        x = torch.cat([packed, noise_planes(packed, noise)], dim=1)
        base = self.start(mosaic, noise)
        m = matrix.to(mosaic.dtype)
        if m.dim() == 2:
            m = m.expand(n, 3, 3)
        if self.film_context:
            cam = self.core.restore(x) + base
            enc = srgb_encode_unclipped(torch.einsum("nij,njhw->nihw", m, cam))
            if level >= 1:
                return enc
            # Enhance-Net sees the clipped encoding, as it would a finished image.
            clipped = enc.clamp(0.0, 1.0)
            out = enc + self.core.enhance(clipped, film=film)
            if return_restored:
                return out, enc
            return out
        out = self.core(x, level=level)
        if level > 0:
            base = F.avg_pool2d(base, 2 ** level)
        cam = out + base
        return srgb_encode_unclipped(torch.einsum("nij,njhw->nihw", m, cam))

    def film_vector(self, mosaic: Tensor, matrix: Tensor, noise: Tensor | None = None) -> Tensor:
        """CameraNet: the Enhance-Net's global FiLM vector of a (whole, or down-scaled) image."""
        if not self.film_context:
            raise ValueError("only CameraNet has a global FiLM vector")
        enc = self.forward(mosaic, matrix, noise, level=1)
        return self.core.enhance.film_vector(enc.clamp(0.0, 1.0))

    @contextmanager
    def record_stats(self, pooled: bool = False) -> Iterator[list]:
        """PyNET(-CA): record instance-norm statistics and attention gates of the forwards inside
        (``pooled``: over the batch as one image; see ``PyNET.record_stats``)."""
        with self.core.record_stats(pooled=pooled) as stats:
            yield stats

    @contextmanager
    def replay_stats(self, stats: list) -> Iterator[None]:
        """PyNET(-CA): use ``stats`` (from :meth:`record_stats`) instead of each tile's own."""
        with self.core.replay_stats(stats):
            yield

