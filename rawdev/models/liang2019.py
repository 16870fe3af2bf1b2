"""CameraNet of Liang et al. (two-stage ISP: Restore-Net, then Enhance-Net), re-stated in PyTorch.

Public, stable API (other modules and the training command import these names)::

    UNet2(in_channels, out_channels, width=32, dilations=(1, 1, 1, 1, 1), residual=False,
          global_film=False, padding_mode="reflect")
        forward(x, film=None) -> y      (N, in_channels, h, w) -> (N, out_channels, h, w), linear
        film_vector(x) -> v             (N, 2 * 16 * width): scale | shift of the global branch
        min_size                        smallest h, w (multiple of 16) this padding mode accepts
    RestoreNet(in_channels=4, width=32, padding_mode="reflect")
        forward(packed) -> image        (N, in_channels, h, w) -> (N, 3, 2h, 2w)
    EnhanceNet(width=32, dilations=(1, 2, 2, 4, 8), padding_mode="reflect")
        forward(image, film=None) -> y  (N, 3, H, W) -> (N, 3, H, W)
        film_vector(image) -> v         (N, 2 * 16 * width)
    CameraNet(in_channels=4, width=32, padding_mode="reflect")
        .restore: RestoreNet, .enhance: EnhanceNet
        forward(packed, film=None) -> (restored, enhance(restored))
    make_cameranet(width=32, **kw) -> CameraNet
    paper_enhance_encoding(linear) -> max(linear, 1e-4) ** (1 / 2.2)

Architecture: the official TF1 ``U_net2`` (``my_model_pool.py`` of ``zhetongliang/CameraNet_official``),
called with ``num_down=4, num_block=1, num_conv=1, fil_s=3``. Widths C0..C4 = w, 2w, 4w, 8w, 16w
(w = 32 in the paper). Every 3x3 conv pads explicitly by its own dilation ("reflect" in the paper);
act = LeakyReLU(0.2); r0..r4 = ``dilations``.

* Encoder level i (0..3): conv -> Ci, act; conv dil ri, act; conv dil ri; (+ block input if
  ``residual``); act; keep as skip; 3x3 max-pool stride 2, TF "SAME" (window at 2k covers 2k..2k+2).
* Bottleneck: conv C3 -> C4, act (= T); conv dil r4, act; conv (dil 1); (+ T if residual); act.
* Global branch (``global_film``): mean of T over space; FC C4 -> 2*C4, act; FC 2*C4 -> 2*C4;
  bottleneck <- act(bottleneck * scale + shift), scale = first C4 entries, shift = the rest.
* Decoder level i (3..0): 2x2 stride-2 transposed conv C(i+1) -> Ci without bias; concat
  [up, skip]; conv 2Ci -> Ci, act; conv dil ri, act; conv (dil 1); (+ block input if residual);
  act, except after the last level. Then a 1x1 conv -> ``out_channels``, no activation.

Configurations (Liang2019 / official ``Train_hdrp.py``):

=============  ===========  ========  ===========  ================  ===========================
stage          UNet2 in     residual  global FiLM  dilations         around the U-Net
=============  ===========  ========  ===========  ================  ===========================
Restore-Net    4 (packed)   no        no           1, 1, 1, 1, 1     -> 12 ch -> depth-to-space x2
Enhance-Net    12           yes       yes          1, 2, 2, 4, 8     space-to-depth x2 -> 12 ch ->
                                                                     depth-to-space x2
=============  ===========  ========  ===========  ================  ===========================

Parameters (measured): w = 32: Restore-Net 11,687,756 + Enhance-Net 13,264,972 = 24,952,728;
w = 16: 2,923,436 + 3,318,828 = 6,242,264; w = 8: 1,562,616. These agree with learned_backends.md
4.3 and 7.1 (11.69 M + 13.26 M = 24.95 M; 6.24 M). The Enhance-Net excess is the FiLM MLP
(512*1024 + 1024 + 1024*1024 + 1024 = 1,574,912) plus its 12-channel first conv (+2,304).

Input encoding. The official code feeds Enhance-Net ``max(x, 1e-4) ** (1 / 2.2)`` of the linear
Restore output. ``EnhanceNet`` and ``CameraNet.forward`` do NOT do that: they are pure networks and
the caller picks the encoding (``paper_enhance_encoding`` reproduces the paper's). ``CameraNet.forward``
feeds the Restore output to Enhance-Net unchanged, so a caller that wants the paper's gamma between
the stages calls ``net.restore`` and ``net.enhance`` itself. Outputs are linear (not clipped); the
caller decides on clipping and on the loss domain.

Geometry and padding:

* h and w at the UNet2 input must be multiples of 16 (4 poolings): packed h, w for RestoreNet,
  full-resolution H, W multiples of 32 for EnhanceNet. Other sizes raise ``ValueError``.
* ``padding_mode="reflect"`` (paper) needs every feature map larger than its padding: at level l
  the map is h / 2**l and the padding max(1, r_l). Restore-Net therefore needs packed h, w >= 32 and
  Enhance-Net full-resolution H, W >= 288 (bottleneck 9 px for dilation 8; learned_backends.md 4.2).
  Smaller inputs raise ``ValueError`` naming the minimum; use ``padding_mode="zeros"`` for small
  training patches (our deviation from the paper, chosen by the caller).
* Tiled inference: the convolutional part is translation-equivariant for tile origins at multiples
  of 16 at the UNet2 input, but the global FiLM pools over the whole input. Compute the vector once
  with ``film_vector`` (whole image or a down-scaled copy, sizes as above) and pass ``film=`` to every
  tile. ``forward(x, film=film_vector(x))`` equals ``forward(x)``.

Deviations from the official TF code (none changes what the network computes):

* depth-to-space / space-to-depth use PyTorch's ``pixel_shuffle`` channel order (colour-major), not
  TF's (block-major). Only a weight port would notice, and no weights were released.
* Max-pool "SAME" is ``max_pool2d(3, 2, ceil_mode=True)``, which equals TF's bottom/right padding
  for the even sizes allowed here.
* Initialisation follows TF-slim: Glorot-uniform conv and FC weights, zero biases, transposed-conv
  filters truncated-normal with std 0.001 (``upsample_and_concat_c`` in ``my_model_pool.py``).
  Consequence (faithful, but worth knowing): at initialisation each up-sampling scales the deeper
  path by about 1e-3, so the output is carried by the shallow skips and the bottleneck and FiLM
  have almost no effect (about 1e-12) until training grows those filters.

References:
    Liang2019: Z. Liang, J. Cai, Z. Cao, L. Zhang. "CameraNet: A Two-Stage Framework for Effective
    Camera ISP Learning". IEEE Transactions on Image Processing 30, 2248-2262 (2021);
    arXiv:1908.01481 (2019).
    Code: https://github.com/zhetongliang/CameraNet_official (TF1; no weights released).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "UNet2",
    "RestoreNet",
    "EnhanceNet",
    "CameraNet",
    "make_cameranet",
    "paper_enhance_encoding",
    "RESTORE_DILATIONS",
    "ENHANCE_DILATIONS",
]

NUM_DOWN = 4  # poolings in U_net2 as used by CameraNet; fixes the 16-px divisibility
RESTORE_DILATIONS: tuple[int, ...] = (1, 1, 1, 1, 1)
ENHANCE_DILATIONS: tuple[int, ...] = (1, 2, 2, 4, 8)
_PADDING_MODES = ("reflect", "zeros")
_SLOPE = 0.2  # lrelu(x) = max(0.2 x, x) in the official code


def paper_enhance_encoding(linear: Tensor) -> Tensor:
    """The official Enhance-Net input encoding: ``max(linear, 1e-4) ** (1 / 2.2)``.

    The floor keeps the power's gradient finite at 0 and negative Restore outputs out of the pow.
    """
    return linear.clamp_min(1e-4).pow(1.0 / 2.2)


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, _SLOPE)


def _conv3(c_in: int, c_out: int, dilation: int, padding_mode: str) -> nn.Conv2d:
    # U_net2 pads explicitly by the dilation rate and then runs a VALID conv: same-size output.
    return nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, padding_mode=padding_mode)


def _max_pool_same(x: Tensor) -> Tensor:
    """TF ``max_pool2d([3, 3], stride 2, padding='SAME')`` for even sizes: windows start at 2k and
    the missing column/row past the bottom/right edge is ignored (TF pads with -inf there)."""
    return F.max_pool2d(x, 3, stride=2, ceil_mode=True)


class _Block(nn.Module):
    """conv -> act, then [conv dil a -> act -> conv dil b (+ input)] ; the final act is the caller's.

    ``conv_in`` maps to the level width; the pair ``conv_a``/``conv_b`` is U_net2's one block with
    one inner conv (``num_block=1, num_conv=1``).
    """

    def __init__(self, c_in: int, c: int, dil_a: int, dil_b: int, padding_mode: str) -> None:
        super().__init__()
        self.conv_in = _conv3(c_in, c, 1, padding_mode)
        self.conv_a = _conv3(c, c, dil_a, padding_mode)
        self.conv_b = _conv3(c, c, dil_b, padding_mode)

    def forward(self, x: Tensor, residual: bool) -> tuple[Tensor, Tensor]:
        """Returns (block output before its final activation, output of ``conv_in`` + act)."""
        head = _act(self.conv_in(x))
        y = self.conv_b(_act(self.conv_a(head)))
        return (y + head if residual else y), head


class UNet2(nn.Module):
    """The official CameraNet ``U_net2`` with 4 down-samplings and one block per level.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the final 1x1 conv (12 in both CameraNet stages).
        width: C0; the levels are width * (1, 2, 4, 8) and the bottleneck 16 * width.
        dilations: r0..r3 for the encoder/decoder levels and r4 for the bottleneck.
        residual: add the block input (the output of each level's first conv) before the block's
            activation (Enhance-Net).
        global_film: the global branch (Enhance-Net): FiLM of the bottleneck from the spatial mean
            of T, the output of the bottleneck's first conv.
        padding_mode: "reflect" (official code) or "zeros" (for inputs below ``min_size``).

    Output is linear (no activation). See the module docstring for the layer list and geometry.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 32,
        dilations: tuple[int, ...] = RESTORE_DILATIONS,
        residual: bool = False,
        global_film: bool = False,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        dil = tuple(int(d) for d in dilations)
        if len(dil) != NUM_DOWN + 1 or min(dil) < 1:
            raise ValueError(f"dilations must be {NUM_DOWN + 1} integers >= 1, got {dilations!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if int(width) < 1:
            raise ValueError(f"width must be >= 1, got {width!r}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.width = int(width)
        self.dilations = dil
        self.residual = bool(residual)
        self.global_film = bool(global_film)
        self.padding_mode = padding_mode
        chans = [self.width * 2**i for i in range(NUM_DOWN + 1)]
        self.chans = tuple(chans)
        # Encoder blocks dilate both inner convs (U_net2 passes rate to both).
        self.enc = nn.ModuleList(
            _Block(self.in_channels if i == 0 else chans[i - 1], chans[i], dil[i], dil[i], padding_mode)
            for i in range(NUM_DOWN)
        )
        # Bottleneck and decoder blocks dilate only the middle conv (U_net2's last conv there has
        # no rate argument).
        self.bottleneck = _Block(chans[NUM_DOWN - 1], chans[NUM_DOWN], dil[NUM_DOWN], 1, padding_mode)
        if self.global_film:
            c4 = chans[NUM_DOWN]
            self.film_fc1 = nn.Linear(c4, 2 * c4)
            self.film_fc2 = nn.Linear(2 * c4, 2 * c4)
        # dec[j] runs at level i = NUM_DOWN - 1 - j (deepest first).
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2, bias=False)
            for i in reversed(range(NUM_DOWN))
        )
        self.dec = nn.ModuleList(
            _Block(2 * chans[i], chans[i], dil[i], 1, padding_mode) for i in reversed(range(NUM_DOWN))
        )
        self.final = nn.Conv2d(chans[0], self.out_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """TF-slim defaults of the official code: Glorot-uniform weights and zero biases for convs and
        FCs; transposed-conv filters truncated normal, std 0.001 (so the decoder starts from the skips)."""
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.trunc_normal_(m.weight, std=1e-3, a=-2e-3, b=2e-3)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def film_channels(self) -> int:
        """Length of the FiLM vector: 2 * C4 (scale then shift)."""
        return 2 * self.chans[NUM_DOWN]

    @property
    def min_size(self) -> int:
        """Smallest h and w (a multiple of 16) accepted at the input.

        With reflect padding, the level-l map (h / 2**l) must exceed its largest padding max(1, r_l)
        (PyTorch, like TF REFLECT, cannot mirror more than size - 1 pixels).
        """
        unit = 2**NUM_DOWN
        if self.padding_mode != "reflect":
            return unit
        need = max(2**lvl * (max(1, d) + 1) for lvl, d in enumerate(self.dilations))
        return -(-need // unit) * unit

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless x is (N, in_channels, h, w) with sizes this net accepts."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, h, w), got {tuple(x.shape)}")
        h, w = int(x.shape[-2]), int(x.shape[-1])
        unit = 2**NUM_DOWN
        if h % unit or w % unit:
            raise ValueError(f"UNet2 input h and w must be multiples of {unit} ({NUM_DOWN} poolings), "
                             f"got {h}x{w}")
        if min(h, w) < self.min_size:
            raise ValueError(
                f"UNet2 with padding_mode='reflect' and dilations {self.dilations} needs h and w >= "
                f"{self.min_size} at its input, got {h}x{w}; use padding_mode='zeros' for smaller inputs")

    def _encode(self, x: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        """Encoder and bottleneck: (skips, bottleneck output before FiLM, T)."""
        skips: list[Tensor] = []
        for block in self.enc:
            y, _ = block(x, self.residual)
            y = _act(y)
            skips.append(y)
            x = _max_pool_same(y)
        y, t = self.bottleneck(x, self.residual)
        return skips, _act(y), t

    def _film_from_t(self, t: Tensor) -> Tensor:
        g = t.mean(dim=(2, 3))
        return self.film_fc2(_act(self.film_fc1(g)))

    def film_vector(self, x: Tensor) -> Tensor:
        """The global branch's (N, 2 * C4) vector, scale then shift, computed from x.

        Runs the encoder on x (any size this net accepts); the decoder is skipped. Pass the result
        as ``film=`` to ``forward`` on tiles of the same image so all tiles share one global tone.
        """
        if not self.global_film:
            raise RuntimeError("this UNet2 has no global FiLM branch (global_film=False)")
        self.check_input(x)
        _, _, t = self._encode(x)
        return self._film_from_t(t)

    def forward(self, x: Tensor, film: Tensor | None = None) -> Tensor:
        """Run the U-Net.

        Args:
            x: (N, in_channels, h, w), h and w multiples of 16 and >= ``min_size``.
            film: optional (N, 2 * C4) or (1, 2 * C4) vector from ``film_vector``, used instead of
                the one computed from x (global_film nets only).

        Returns:
            (N, out_channels, h, w), linear.
        """
        self.check_input(x)
        if film is not None and not self.global_film:
            raise ValueError("film given, but this UNet2 has no global FiLM branch")
        skips, y, t = self._encode(x)
        if self.global_film:
            if film is None:
                film = self._film_from_t(t)
            elif film.ndim != 2 or film.shape[1] != self.film_channels or film.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"film must be (N, {self.film_channels}) or (1, {self.film_channels}), "
                                 f"got {tuple(film.shape)}")
            c4 = self.chans[NUM_DOWN]
            scale = film[:, :c4, None, None]
            shift = film[:, c4:, None, None]
            y = _act(y * scale + shift)
        n_dec = len(self.dec)
        for j, (up, block) in enumerate(zip(self.up, self.dec)):
            skip = skips[NUM_DOWN - 1 - j]
            y, _ = block(torch.cat([up(y), skip], dim=1), self.residual)
            if j < n_dec - 1:  # U_net2 leaves the last block linear, before the 1x1 conv
                y = _act(y)
        return self.final(y)


class RestoreNet(nn.Module):
    """Restore-Net: packed RAW (N, in_channels, h, w) -> linear image (N, 3, 2h, 2w).

    UNet2(in_channels, 12), no residual, no FiLM, no dilation, then depth-to-space x2. The plane
    order and normalisation of the packed input are the caller's (the paper packs offline).
    h, w: multiples of 16; with "reflect" also >= 32.
    """

    def __init__(self, in_channels: int = 4, width: int = 32, padding_mode: str = "reflect") -> None:
        super().__init__()
        self.unet = UNet2(in_channels, 12, width=width, dilations=RESTORE_DILATIONS, residual=False,
                          global_film=False, padding_mode=padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.unet(x), 2)


class EnhanceNet(nn.Module):
    """Enhance-Net: image (N, 3, H, W) -> image (N, 3, H, W).

    space-to-depth x2 (12 channels) -> UNet2(12, 12, residual, global FiLM, ``dilations``) ->
    depth-to-space x2. H, W: multiples of 32; with "reflect" and the paper's dilations also >= 288.
    No input encoding is applied here (the paper's is ``paper_enhance_encoding``); output is linear.
    """

    def __init__(self, width: int = 32, dilations: Sequence[int] = ENHANCE_DILATIONS,
                 padding_mode: str = "reflect") -> None:
        super().__init__()
        self.unet = UNet2(12, 12, width=width, dilations=tuple(dilations), residual=True,
                          global_film=True, padding_mode=padding_mode)

    @property
    def min_size(self) -> int:
        """Smallest full-resolution H and W accepted (twice the UNet2 minimum)."""
        return 2 * self.unet.min_size

    def _to_unet(self, x: Tensor) -> Tensor:
        # Validate in full-resolution units so the message matches what the caller passed.
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W), got {tuple(x.shape)}")
        h, w = int(x.shape[-2]), int(x.shape[-1])
        unit = 2 ** (NUM_DOWN + 1)
        if h % unit or w % unit:
            raise ValueError(f"EnhanceNet input H and W must be multiples of {unit}, got {h}x{w}")
        if min(h, w) < self.min_size:
            raise ValueError(
                f"EnhanceNet with padding_mode='reflect' and dilations {self.unet.dilations} needs H and "
                f"W >= {self.min_size}, got {h}x{w}; use padding_mode='zeros' for smaller inputs")
        return F.pixel_unshuffle(x, 2)

    def film_vector(self, x: Tensor) -> Tensor:
        """(N, 2 * 16 * width) FiLM vector (scale | shift) of image x, for ``forward(.., film=)``."""
        return self.unet.film_vector(self._to_unet(x))

    def forward(self, x: Tensor, film: Tensor | None = None) -> Tensor:
        return F.pixel_shuffle(self.unet(self._to_unet(x), film=film), 2)


class CameraNet(nn.Module):
    """Restore-Net followed by Enhance-Net (Liang2019).

    ``forward(packed)`` returns ``(restored, enhance(restored))``: the Restore output goes into
    Enhance-Net as is (no clamp or gamma; see the module docstring). Both outputs are linear.
    """

    restore: RestoreNet
    enhance: EnhanceNet

    def __init__(self, in_channels: int = 4, width: int = 32, padding_mode: str = "reflect") -> None:
        super().__init__()
        self.restore = RestoreNet(in_channels, width=width, padding_mode=padding_mode)
        self.enhance = EnhanceNet(width=width, dilations=ENHANCE_DILATIONS, padding_mode=padding_mode)

    def forward(self, x: Tensor, film: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(N, in_channels, h, w) packed -> ((N, 3, 2h, 2w), (N, 3, 2h, 2w)); ``film`` goes to
        Enhance-Net (from ``self.enhance.film_vector`` of the whole restored image, for tiling)."""
        restored = self.restore(x)
        return restored, self.enhance(restored, film=film)


def make_cameranet(width: int = 32, **kw) -> CameraNet:
    """CameraNet; ``width=32`` is the paper's network, ``width=16`` the reduced CameraNet-S
    (learned_backends.md 7.2 A). Extra keywords (``in_channels``, ``padding_mode``) go to CameraNet."""
    return CameraNet(width=width, **kw)
