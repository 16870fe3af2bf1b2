"""Compressed students of the noise-aware Bayer JDD network (GAN Compression / GAN Slimming).

One network class, :class:`StudentJDD`, serves three uses:

* **a once-for-all super-network** (Li2020, Sec. 3.2): every 3x3 layer can run with only its first
  ``k`` output channels (``forward(..., width=0.5)``), so all sub-networks share weights and are trained
  together by sampling widths; a sub-network is then cut out by channel count (:meth:`subnet`);
* **a slimmable network** (Wang2020, Sec. 3.1): with ``gates=True`` every hidden channel has a learned
  scale factor ``gamma`` applied before its ReLU; an L1 penalty on the gammas
  (:meth:`gate_l1`) drives unneeded channels to zero and :meth:`prune` removes the channels whose
  ``|gamma|`` is below a threshold, folding the others into the weights (exact: ``relu(g (W x + b)) =
  relu((g W) x + g b)``);
* **the shipped student**, a plain network of per-layer widths (no gates) that the ``jdd-fast``
  back-end loads; its widths travel in the weights file's metadata.

Architecture (the contract of :class:`rawdev.models.gharbi2016.BayerDemosaicNet`, smaller):

1. ``pack``: conv 2x2 stride 2, 3 -> 4 (the four Bayer sites at half resolution);
2. the noise plane (Gharbi2016 Sec. 4): a constant channel holding sigma is concatenated (5 channels);
3. ``convs[i]``: conv 3x3 valid + ReLU at half resolution, ``widths[i]`` channels;
4. ``head``: conv 1x1, ``widths[-1]`` -> 12, then ``up``: transposed conv 2x2 stride 2, groups 3, 12 -> 3;
5. ``post``: the centre-cropped input mosaic concatenated with the up-sampled residual (6 channels;
   with ``base_input`` also the base image of 6., 9 channels) -> conv 3x3 valid -> ReLU -> conv 1x1 -> 3;
6. with a ``base`` ("malvar", the default, or "menon") that is a correction added to a classical
   demosaic of the same mosaic (Malvar2004's fixed 5x5 filters,
   :func:`rawdev.stages.demosaic.malvar2004.demosaic_malvar2004`, or Menon2007's directional filtering
   with a posteriori decision, :func:`rawdev.stages.demosaic.menon2007.demosaic_menon2007`), and the
   last 1x1 starts at zero: a fresh student computes its base exactly, so the few thousand steps a
   2-core CPU affords are spent on what the base misses (noise, zipper, false colour) instead of on
   learning to interpolate (residual learning, as in He et al. 2016 and Zhang et al. 2017's DnCNN).
   Menon is 3.5 dB above Malvar on clean Kodak24 (39.27 against 35.78 dB) for about 0.4 s more per
   24 MP on 2 cores (0.74 against 0.35 s, measured with a training job beside it); a student on
   Malvar trained for 7,000 steps still stayed 2 dB below plain Menon on clean input, which is why the
   Menon base exists. Its output depends on input at most 8 px away (measured), so it is computed on
   a crop with :data:`BASE_CONTEXT` px of context and stays exact under tiling.

Gharbi2016's filter/mask product is left out: it doubles the last layer's width and gave nothing
measurable at these widths in the previous attempt, and a plain chain is what both compression methods
prune cleanly.

Shape: ``(N, 3, H, W)`` GRBG zero-filled sRGB-encoded mosaic, H and W even, plus ``noise`` ``(N,)``
-> ``(N, 3, H - 2 b, W - 2 b)`` with border ``b = 2 len(widths) + 1``.

References:
    Li2020: M. Li, J. Lin, Y. Ding, Z. Liu, J.-Y. Zhu, S. Han. "GAN Compression: Efficient Architectures
    for Interactive Conditional GANs". CVPR 2020.
    Wang2020: H. Wang, S. Gui, H. Yang, J. Liu, Z. Wang. "GAN Slimming: All-in-One GAN Compression by
    a Unified Optimization Framework". ECCV 2020.
    Gharbi2016: M. Gharbi, G. Chaurasia, S. Paris, F. Durand. "Deep Joint Demosaicking and
    Denoising". ACM Transactions on Graphics 35(6), 191 (2016).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..backends.registry import STUDENT_BASES as BASES

__all__ = ["BASES", "BASE_CONTEXT", "StudentJDD", "check_base", "student_border", "macs_per_pixel"]

MALVAR, MENON = BASES
#: Context (even, full-resolution px per side) each base needs to be exact on a crop: Malvar's 5x5
#: stencils reach 2 px; Menon2007's chain reaches 8 px (a unit impulse changes nothing further out).
BASE_CONTEXT = {MALVAR: 2, MENON: 10}


def check_base(base, depth: int, base_input: bool = False) -> str | None:
    """The base's name (``True``, the format of the first weights, means Malvar; ``False``/``None``
    no base), after checking that a student of ``depth`` layers has the context it needs.

    Raises:
        ValueError: an unknown base, ``base_input`` without a base, or a student too shallow for it.
    """
    if base is True:
        base = MALVAR
    elif base is False:
        base = None
    if base is None:
        if base_input:
            raise ValueError("base_input needs a base")
        return None
    if base not in BASES:
        raise ValueError(f"unknown student base {base!r}; expected one of {', '.join(BASES)}")
    need = BASE_CONTEXT[base] + int(base_input)  # px of context inside the student's border
    if need > student_border(depth):
        raise ValueError(f"a {base} base{' as an input' if base_input else ''} needs depth >= {need // 2}, got {depth}")
    return str(base)


def student_border(depth: int) -> int:
    """Pixels per side lost by valid convolutions: 2 per half-resolution 3x3 layer, 1 for ``post``."""
    return 2 * int(depth) + 1


def macs_per_pixel(widths: Sequence[int], post_width: int, noise_input: bool = True, base_input: bool = False) -> float:
    """Multiply-accumulates per output (full-resolution) pixel of the network, ignoring the shrinking
    valid borders (the classical base is not counted)."""
    half = 4 * 3 * 4  # pack: 3 x 2 x 2 -> 4 per half-resolution pixel
    c_in = 5 if noise_input else 4
    for w in widths:
        half += c_in * w * 9
        c_in = w
    half += c_in * 12 + 12 * 4  # head 1x1, then up: 12 -> 3 x (2x2)
    return half / 4 + (9 if base_input else 6) * post_width * 9 + post_width * 3


class StudentJDD(nn.Module):
    """A small noise-aware Bayer JDD network; see the module docstring.

    Args:
        widths: output channels of each half-resolution 3x3 layer (its length is the depth).
        post_width: channels of the full-resolution ``post`` 3x3 layer.
        noise_input: concatenate the noise plane after packing (``jdd-noise``'s contract).
        gates: learned per-channel scale factors on every hidden layer (GAN Slimming).
        base: the classical demosaic the network's output is added to: "malvar" (or True), "menon",
            or None/False for none (see the module docstring).
        base_input: the ``post`` layer also sees the base image (9 input channels instead of 6), so
            the correction can depend on what the base made of the mosaic, not only on the mosaic.
    """

    def __init__(
        self,
        widths: Sequence[int] = (48,) * 7,
        post_width: int = 16,
        noise_input: bool = True,
        gates: bool = False,
        base: str | bool | None = MALVAR,
        base_input: bool = False,
    ) -> None:
        super().__init__()
        if not widths or min(widths) < 1 or post_width < 1:
            raise ValueError(f"widths and post_width must be >= 1, got {tuple(widths)}, {post_width}")
        self.widths = tuple(int(w) for w in widths)
        self.post_width = int(post_width)
        self.noise_input = bool(noise_input)
        self.depth = len(self.widths)
        self.border = student_border(self.depth)
        self.base = check_base(base, self.depth, base_input)
        self.base_input = bool(base_input)
        self.pack = nn.Conv2d(3, 4, 2, stride=2)
        c_in = 5 if self.noise_input else 4
        convs = []
        for w in self.widths:
            convs.append(nn.Conv2d(c_in, w, 3))
            c_in = w
        self.convs = nn.ModuleList(convs)
        self.gates = nn.ParameterList([nn.Parameter(torch.ones(w)) for w in self.widths]) if gates else None
        self.head = nn.Conv2d(c_in, 12, 1)
        self.up = nn.ConvTranspose2d(12, 3, 2, stride=2, groups=3)
        self.post = nn.Conv2d(9 if self.base_input else 6, self.post_width, 3)
        self.out = nn.Conv2d(self.post_width, 3, 1)
        if self.base is not None:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    # -- forward ---------------------------------------------------------------------------------
    def active_widths(self, width: float | None) -> tuple[int, ...]:
        """Channels each layer runs with at width multiplier ``width`` (None or 1: all of them)."""
        if width is None or width >= 1.0:
            return self.widths
        if width <= 0:
            raise ValueError(f"width multiplier must be > 0, got {width}")
        return tuple(max(1, int(round(w * width))) for w in self.widths)

    def forward(
        self, mosaic3: torch.Tensor, noise: torch.Tensor | None = None, width: float | None = None
    ) -> torch.Tensor:
        """Demosaic and denoise a GRBG-aligned, zero-filled 3-channel mosaic.

        Args:
            mosaic3: (N, 3, H, W), H and W even, sRGB-encoded [0, 1], zeros at unsampled colours.
            noise: (N,) noise std in the same units; required when ``noise_input``.
            width: once-for-all width multiplier (Li2020); None runs every channel.

        Returns:
            (N, 3, H - 2 border, W - 2 border), aligned with the input's centre; not clipped.
        """
        x = self.features(mosaic3, noise)
        widths = self.active_widths(width)
        c_in = x.shape[1]
        for i, (conv, w) in enumerate(zip(self.convs, widths)):
            if w == conv.out_channels and c_in == conv.in_channels:
                y = conv(x)
            else:  # a once-for-all sub-network: the first w filters over the first c_in inputs
                y = F.conv2d(x, conv.weight[:w, :c_in], conv.bias[:w])
            if self.gates is not None:
                y = y * self.gates[i][:w].view(1, -1, 1, 1)
            x = F.relu(y)
            c_in = w
        head_w = self.head.weight if c_in == self.head.in_channels else self.head.weight[:, :c_in]
        return self.finish(mosaic3, F.conv2d(x, head_w, self.head.bias))

    def features(self, mosaic3: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """The packed half-resolution input with the noise plane: ``(N, 5, H/2, W/2)``."""
        x = self.pack(mosaic3)
        if self.noise_input:
            if noise is None:
                raise ValueError("this StudentJDD has a noise input: pass noise=(N,) sigmas")
            sigma = torch.as_tensor(noise, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
            x = torch.cat([x, sigma.expand(x.shape[0], 1, x.shape[2], x.shape[3])], dim=1)
        return x

    def trunk(self) -> nn.Sequential:
        """The half-resolution layers of a plain student as one ``Sequential`` (3x3 conv + ReLU pairs,
        then ``head``), sharing this network's parameters: what int8 quantisation converts."""
        if self.gates is not None:
            raise ValueError("cut a gated network with prune() or subnet() first")
        layers: list[nn.Module] = []
        for conv in self.convs:
            layers += [conv, nn.ReLU()]
        return nn.Sequential(*layers, self.head)

    def finish(self, mosaic3: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Full resolution: up-sample the trunk's 12-channel ``residual``, the ``post`` layers, and the
        classical base (see the module docstring)."""
        upsampled = self.up(residual)
        b = (mosaic3.shape[-1] - upsampled.shape[-1]) // 2
        bh = (mosaic3.shape[-2] - upsampled.shape[-2]) // 2
        crop = mosaic3[..., bh : bh + upsampled.shape[-2], b : b + upsampled.shape[-1]]
        if self.base is None:
            return self.out(F.relu(self.post(torch.cat([crop, upsampled], dim=1))))
        # with base_input, the base over the post layer's input window (1 px wider each side)
        base = self.base_image(mosaic3, pad=int(self.base_input))
        feats = [crop, upsampled, base] if self.base_input else [crop, upsampled]
        out = self.out(F.relu(self.post(torch.cat(feats, dim=1))))
        return out + (base[..., 1:-1, 1:-1] if self.base_input else base)

    def base_image(self, mosaic3: torch.Tensor, pad: int = 0) -> torch.Tensor:
        """The classical demosaic the output corrects, over the output's window grown by ``pad`` px
        per side (no gradient)."""
        from ..cfa import pattern_after_crop

        # The border (>= the base's context + pad) leaves that context inside the input; the base's
        # own mirrored edges fall in the context and are cropped away.
        e, c = self.border - pad, BASE_CONTEXT[self.base]
        cfa = mosaic3[..., e - c : mosaic3.shape[-2] - e + c, e - c : mosaic3.shape[-1] - e + c].sum(1, keepdim=True)
        pattern = pattern_after_crop("GRBG", e - c, e - c)
        with torch.no_grad():
            if self.base == MENON:
                from ..stages.demosaic.menon2007 import demosaic_menon2007

                img = demosaic_menon2007(cfa, pattern)
            else:
                from ..stages.demosaic.malvar2004 import demosaic_malvar2004

                img = demosaic_malvar2004(cfa, pattern)
        return img[..., c:-c, c:-c]

    # -- compression -----------------------------------------------------------------------------
    def gate_l1(self) -> torch.Tensor:
        """Sum of ``|gamma|`` over every gate (Wang2020 Eq. 4's sparsity term); 0 without gates."""
        if self.gates is None:
            return torch.zeros((), device=self.pack.weight.device)
        return sum(g.abs().sum() for g in self.gates)

    def _cut(self, keep: Sequence[torch.Tensor]) -> "StudentJDD":
        """A plain (gate-free) network keeping channel indices ``keep[i]`` of layer ``i``, gates folded."""
        net = StudentJDD([len(k) for k in keep], self.post_width, self.noise_input, gates=False, base=self.base,
                         base_input=self.base_input)
        with torch.no_grad():
            net.pack.load_state_dict(self.pack.state_dict())
            prev = torch.arange(self.convs[0].in_channels, device=self.pack.weight.device)
            for i, (src, dst, k) in enumerate(zip(self.convs, net.convs, keep)):
                g = self.gates[i][k] if self.gates is not None else torch.ones(len(k), device=k.device)
                dst.weight.copy_(src.weight[k][:, prev] * g.view(-1, 1, 1, 1))
                dst.bias.copy_(src.bias[k] * g)
                prev = k
            net.head.weight.copy_(self.head.weight[:, prev])
            net.head.bias.copy_(self.head.bias)
            for name in ("up", "post", "out"):
                getattr(net, name).load_state_dict(getattr(self, name).state_dict())
        return net

    def subnet(self, width: float) -> "StudentJDD":
        """The once-for-all sub-network at width multiplier ``width`` as a plain network (Li2020)."""
        dev = self.pack.weight.device
        return self._cut([torch.arange(w, device=dev) for w in self.active_widths(width)])

    def prune(self, threshold: float) -> "StudentJDD":
        """Drop the channels whose gate ``|gamma| < threshold`` (Wang2020); at least one per layer stays."""
        if self.gates is None:
            raise ValueError("prune needs a network built with gates=True")
        keep = []
        for g in self.gates:
            idx = torch.nonzero(g.detach().abs() >= threshold).flatten()
            keep.append(idx if idx.numel() else g.detach().abs().argmax().view(1))
        return self._cut(keep)
