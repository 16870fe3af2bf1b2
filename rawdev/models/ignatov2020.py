"""PyNET (Ignatov, Van Gool, Timofte 2020) and its PyNET-CA variant (Kim et al. 2020), one module.

Public, stable API (other modules and the training command import these names)::

    PyNET(in_channels=4, out_channels=3, width=32, kernels="full", channel_attention=False,
          instance_norm=True, head="upsample", norm_position="every_conv")
        forward(x, level=0) -> image
            x:     (N, in_channels, h, w) float, the packed Bayer planes at half resolution; h and w
                   multiples of 16 and at least 32 (ValueError otherwise)
            level: 0 -> (N, out_channels, 2h, 2w); L in 1..5 -> the head of level L, at
                   (h / 2**(L-1), w / 2**(L-1)); the finer levels are not computed (the level-by-level
                   training of Ignatov2020 Sec. 3.2). Linear output: no sigmoid / tanh, the caller
                   decides.
        record_stats() -> context manager yielding a list: during forward passes inside it every
            instance-norm layer appends its (mean, var), each (N, C, 1, 1), and every channel-attention
            module its gate (N, C, 1, 1), in call order.
        replay_stats(stats) -> context manager: forward passes inside it take those statistics, in the
            same order, instead of computing them from their input (tiled inference with statistics
            computed once per image on a reduced copy). Each forward pass reads ``stats`` from its
            start. The call order of a level-L forward is a prefix of that of any finer level, so
            statistics recorded at level 0 serve every level. Recorded batch 1 broadcasts over any
            tile batch; otherwise the batches must be equal.
    make_pynet(width=32, **kw) -> PyNET      the PyTorch port of Ignatov2020 (47,554,738 parameters at w32)
    make_pynet_ca(width=32, **kw) -> PyNET   PyNET-CA of Kim2020 (51,303,515 parameters at w32)

Architecture (Ignatov2020 Fig. 2 as re-stated by the official PyTorch port, ``aiff22/PyNET-PyTorch``
``model.py``; see docs learned_backends.md Sec. 2.3). Level widths c1..c5 = w, 2w, 4w, 8w, 16w.

* Multi-conv block MB(k): parallel branches of kernel 3, 5, .., k; each branch is two k x k convs
  with reflection padding, each followed by LeakyReLU(0.2); branch outputs are concatenated, so
  MB(k) of width c outputs c * (k - 1) / 2 channels.
* Encoder: MB(3) at c1, c2, c3, c4 with a 2x2 max-pool after each; level 5: four MB(3) at c5.
* Each level L <= 5 ends in a 3x3 conv head -> out_channels and two up-branches (bilinear x2 + conv
  3x3 + LeakyReLU) to the width of level L - 1; one joins the next level's input, one its tail.
* Level 4: MB3, 2 x residual MB3, MB3, concat up-branch, MB3.
  Level 3: 3 x residual MB5, MB5, concat (encoder, up-branch), MB3.
  Level 2: MB5, concat encoder, 3 x residual MB7, MB7, concat encoder, MB5, concat up-branch, MB3.
  Level 1: MB5, concat encoder, MB7, MB9, 3 x residual MB9, MB7, concat encoder, MB5,
  concat (up-branch, encoder), MB3.
* Level 0, ``head="upsample"`` (PyNET): bilinear x2 + conv 3x3 c1 -> c1/2 + LeakyReLU + conv 3x3
  -> out_channels. ``head="subpixel"`` (PyNET-CA "sub-pixel reconstruction"): MB9 at c1 (4 * c1
  channels), conv 1x1 -> 4 * out_channels, PixelShuffle(2).
* Instance norm (affine) where the port puts it when trained (``instance_norm_level_1=True`` in its
  ``train_model.py``): every block of levels 2-5, and level-1 blocks from the MB7 after the first
  encoder concat to the MB5 before the last concat (the port's ``conv_l1_d5`` .. ``conv_l1_d12``; so
  also that MB5, not only the 7x7 and 9x9 blocks); never in the level-1 encoder block, the level-1
  MB5 after the up-branch, the last level-1 MB3 or level 0. Kim2020 uses the same blocks.
  ``norm_position="every_conv"`` (PyNET port): IN after both convs of a branch, conv biases kept
  (they are redundant before IN but counted in the port's 47.55 M). ``"second_conv"`` (PyNET-CA):
  IN only after the second conv, whose bias is dropped.
* ``channel_attention=True`` (PyNET-CA): squeeze-excitation after every multi-conv block, including
  the sub-pixel head's: global average pool, 1x1 conv C -> C / r (r = number of branches), ReLU,
  1x1 conv -> C, sigmoid, rescale.

Reduced configurations (learned_backends.md Sec. 7.2 B): ``width`` scales every level;
``kernels="dilated"`` replaces each k x k conv of a multi-conv branch by a 3x3 conv with dilation
(k - 1) / 2 (same receptive field, 3x3 cost); ``kernels="cap5"`` caps branch kernels at 5 (the block
keeps its branch count, so widths and concatenations are unchanged). Heads and up-branches are 3x3
in every configuration.

Deviations from the reference code, on purpose:
    * Bilinear up-sampling uses ``align_corners=False``: with ``True`` (both references) the sampling
      grid depends on the tile size, so tiled inference could never match whole-image inference.
    * No output activation (the port has sigmoid, PyNET-CA tanh) and only the requested level's head
      is evaluated (the port also computes the coarser heads and discards them).
    * Inputs must be at least 32 x 32: level 5 is then 2 x 2, the smallest map a 3x3 reflection pad
      accepts (the references fail at 16 x 16 inside ``ReflectionPad2d``).
    * Parameter names are ours (``l4_d3`` is the port's ``conv_l4_d3``); no released weights are
      reachable offline, so no key compatibility is attempted.

References:
    Ignatov2020: A. Ignatov, L. Van Gool, R. Timofte. "Replacing Mobile Camera ISP with a Single Deep
    Learning Model". CVPR Workshops 2020. Code: https://github.com/aiff22/PyNET-PyTorch.
    Kim2020: B.-H. Kim, J. Song, J. C. Ye, J. Baek. "PyNET-CA: Enhanced PyNET with Channel Attention
    for End-to-End Mobile Image Signal Processing". ECCV Workshops (AIM) 2020.
    Code: https://github.com/egyptdj/skyb-aim2020-public.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PyNET", "make_pynet", "make_pynet_ca", "MultiConvBlock"]

Kernels = Literal["full", "dilated", "cap5"]
NormPosition = Literal["every_conv", "second_conv"]

_LRELU_SLOPE = 0.2
_IN_EPS = 1e-5  # nn.InstanceNorm2d's default, used by both references


class _Tape:
    """The shared state of one record_stats / replay_stats context."""

    def __init__(self, mode: Literal["record", "replay"], items: list, pooled: bool = False) -> None:
        self.mode = mode
        self.items = items
        self.cursor = 0
        # record over the whole batch at once, as if its samples were parts of one image
        self.dims = (0, 2, 3) if pooled else (2, 3)

    def take(self, what: str) -> object:
        if self.cursor >= len(self.items):
            raise ValueError(
                f"replay_stats: the statistics list ran out at entry {self.cursor} ({what}); it was "
                "recorded from a coarser level or from a network of another configuration"
            )
        item = self.items[self.cursor]
        self.cursor += 1
        return item


def _check_replayed(t: object, x: Tensor, what: str, index: int) -> Tensor:
    """A replayed (n, C, 1, 1) statistic, on x's device and dtype, after checking it fits x."""
    if not isinstance(t, Tensor) or t.dim() != 4 or t.shape[1] != x.shape[1] or t.shape[2:] != (1, 1):
        got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(
            f"replay_stats: entry {index} should be a {what} of shape (N, {x.shape[1]}, 1, 1), "
            f"got {got}; the list does not come from this network"
        )
    if t.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"replay_stats: statistics recorded with batch {t.shape[0]} cannot be applied to batch "
            f"{x.shape[0]} (record with batch 1, or with the same batch)"
        )
    return t.to(device=x.device, dtype=x.dtype)


class _GlobalStatModule(nn.Module):
    """A layer whose output depends on statistics of its whole input (see PyNET.record_stats)."""

    _tape: _Tape | None = None  # set only inside a record_stats / replay_stats context


class _InstanceNorm(_GlobalStatModule):
    """Affine instance norm (as ``nn.InstanceNorm2d(C, affine=True)``) whose statistics can be
    recorded and replayed."""

    def __init__(self, channels: int, eps: float = _IN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        tape = self._tape
        if tape is None:
            # the fused kernel: fewer autograd intermediates than the explicit formula below
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        if tape.mode == "record":
            var, mean = torch.var_mean(x, dim=tape.dims, keepdim=True, correction=0)
            tape.items.append((mean.detach(), var.detach()))
        else:
            index = tape.cursor
            item = tape.take("instance-norm (mean, var)")
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValueError(
                    f"replay_stats: entry {index} should be an instance-norm (mean, var) pair, got "
                    f"{type(item).__name__}; the list does not come from this network"
                )
            mean = _check_replayed(item[0], x, "mean", index)
            var = _check_replayed(item[1], x, "variance", index)
        scale = torch.rsqrt(var + self.eps) * self.weight.view(1, -1, 1, 1)
        return (x - mean) * scale + self.bias.view(1, -1, 1, 1)


class _ChannelAttention(_GlobalStatModule):
    """Squeeze-excitation gate of Kim2020: x * sigmoid(conv1x1(relu(conv1x1(avgpool(x)))))."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(channels, channels // reduction, 1)
        self.excite = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        tape = self._tape
        if tape is not None and tape.mode == "replay":
            index = tape.cursor
            gate = _check_replayed(tape.take("channel-attention gate"), x, "channel-attention gate", index)
        else:
            pooled = x.mean(dim=(2, 3) if tape is None else tape.dims, keepdim=True)
            gate = torch.sigmoid(self.excite(F.relu(self.squeeze(pooled))))
            if tape is not None:
                tape.items.append(gate.detach())
        return x * gate


def _branch_conv(in_ch: int, out_ch: int, k: int, kernels: Kernels, bias: bool) -> nn.Conv2d:
    """One k x k conv of a multi-conv branch, as the ``kernels`` option re-states it."""
    if kernels == "full":
        return nn.Conv2d(in_ch, out_ch, k, padding=k // 2, padding_mode="reflect", bias=bias)
    if kernels == "cap5":
        kc = min(k, 5)
        return nn.Conv2d(in_ch, out_ch, kc, padding=kc // 2, padding_mode="reflect", bias=bias)
    if kernels == "dilated":
        d = (k - 1) // 2  # 3x3 with dilation d spans 2d + 1 = k pixels
        return nn.Conv2d(in_ch, out_ch, 3, padding=d, dilation=d, padding_mode="reflect", bias=bias)
    raise ValueError(f"kernels must be 'full', 'dilated' or 'cap5', got {kernels!r}")


class MultiConvBlock(nn.Module):
    """Ignatov2020's multi-conv block: parallel branches of kernel 3, 5, .., ``max_kernel``.

    Each branch: conv -> [IN] -> LeakyReLU -> conv -> [IN] -> LeakyReLU; the IN positions follow
    ``norm_position`` (see the module docstring). Output: ``out_channels`` per branch, concatenated
    in order of kernel size, then the optional channel-attention gate.
    """

    def __init__(self, in_channels: int, out_channels: int, max_kernel: int, *, kernels: Kernels,
                 instance_norm: bool, norm_position: NormPosition, channel_attention: bool) -> None:
        super().__init__()
        if norm_position not in ("every_conv", "second_conv"):
            raise ValueError(f"norm_position must be 'every_conv' or 'second_conv', got {norm_position!r}")
        self.branches = nn.ModuleList()
        for k in range(3, max_kernel + 1, 2):
            norm_first = instance_norm and norm_position == "every_conv"
            # PyNET-CA drops the second conv's bias under IN (IN removes it); the port keeps both
            second_bias = not (instance_norm and norm_position == "second_conv")
            layers: list[nn.Module] = [_branch_conv(in_channels, out_channels, k, kernels, True)]
            if norm_first:
                layers.append(_InstanceNorm(out_channels))
            layers.append(nn.LeakyReLU(_LRELU_SLOPE))
            layers.append(_branch_conv(out_channels, out_channels, k, kernels, second_bias))
            if instance_norm:
                layers.append(_InstanceNorm(out_channels))
            layers.append(nn.LeakyReLU(_LRELU_SLOPE))
            self.branches.append(nn.Sequential(*layers))
        n = len(self.branches)
        self.out_channels = out_channels * n
        # Kim2020: reduction ratio = number of branches, so the bottleneck is out_channels wide
        self.attention = _ChannelAttention(self.out_channels, n) if channel_attention else None

    def forward(self, x: Tensor) -> Tensor:
        y = torch.cat([branch(x) for branch in self.branches], dim=1)
        return y if self.attention is None else self.attention(y)


class _UpConv(nn.Module):
    """The port's up-branch: bilinear x2 (align_corners=False, see the module docstring), reflection
    padded conv 3x3, LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return F.leaky_relu(self.conv(x), _LRELU_SLOPE)


def _head(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A level's output conv: 3x3, reflection padded, linear."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")


class PyNET(nn.Module):
    """PyNET of Ignatov2020 (PyTorch-port topology), with the PyNET-CA options of Kim2020.

    Args:
        in_channels: packed input planes (4 for Bayer).
        out_channels: output channels (3 for RGB).
        width: level-1 width; levels 1..5 are width, 2w, 4w, 8w, 16w (32 in both papers).
        kernels: ``"full"`` (branches 3/5/7/9), ``"dilated"`` (3x3 with dilation (k-1)/2) or
            ``"cap5"`` (kernels capped at 5).
        channel_attention: squeeze-excitation after every multi-conv block (PyNET-CA).
        instance_norm: affine instance norm in the blocks the references put it in; False removes
            every IN (the output is then local, and tiled inference exact given enough margin,
            unless channel attention is on).
        head: level-0 head, ``"upsample"`` (PyNET) or ``"subpixel"`` (PyNET-CA).
        norm_position: ``"every_conv"`` (PyNET port) or ``"second_conv"`` (PyNET-CA); see the module
            docstring.
    """

    def __init__(self, in_channels: int = 4, out_channels: int = 3, width: int = 32,
                 kernels: Kernels = "full", channel_attention: bool = False,
                 instance_norm: bool = True, head: Literal["upsample", "subpixel"] = "upsample",
                 norm_position: NormPosition = "every_conv") -> None:
        super().__init__()
        if kernels not in ("full", "dilated", "cap5"):
            raise ValueError(f"kernels must be 'full', 'dilated' or 'cap5', got {kernels!r}")
        if head not in ("upsample", "subpixel"):
            raise ValueError(f"head must be 'upsample' or 'subpixel', got {head!r}")
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even integer >= 2, got {width}")  # c1/2 in the L0 head
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.width = int(width)
        self.kernels = kernels
        self.channel_attention = bool(channel_attention)
        self.instance_norm = bool(instance_norm)
        self.head = head
        self.norm_position = norm_position
        self._tape: _Tape | None = None

        c1, c2, c3, c4, c5 = (self.width * 2**i for i in range(5))
        IN = self.instance_norm

        def mb(cin: int, cout: int, k: int, norm: bool = IN) -> MultiConvBlock:
            return MultiConvBlock(cin, cout, k, kernels=kernels, instance_norm=norm,
                                  norm_position=norm_position, channel_attention=self.channel_attention)

        # encoder (the port's conv_lL_d1), pooled by 2 after each
        self.l1_d1 = mb(self.in_channels, c1, 3, norm=False)
        self.l2_d1 = mb(c1, c2, 3)
        self.l3_d1 = mb(c2, c3, 3)
        self.l4_d1 = mb(c3, c4, 3)
        # level 5: no residuals in the PyTorch port
        self.l5_d1 = mb(c4, c5, 3)
        self.l5_d2 = mb(c5, c5, 3)
        self.l5_d3 = mb(c5, c5, 3)
        self.l5_d4 = mb(c5, c5, 3)
        self.l5_up_a, self.l5_up_b = _UpConv(c5, c4), _UpConv(c5, c4)
        self.l5_out = _head(c5, self.out_channels)
        # level 4
        self.l4_d3 = mb(2 * c4, c4, 3)
        self.l4_d4 = mb(c4, c4, 3)
        self.l4_d5 = mb(c4, c4, 3)
        self.l4_d6 = mb(c4, c4, 3)
        self.l4_d8 = mb(2 * c4, c4, 3)
        self.l4_up_a, self.l4_up_b = _UpConv(c4, c3), _UpConv(c4, c3)
        self.l4_out = _head(c4, self.out_channels)
        # level 3: {3,5} blocks output 2 * c3
        self.l3_d3 = mb(2 * c3, c3, 5)
        self.l3_d4 = mb(2 * c3, c3, 5)
        self.l3_d5 = mb(2 * c3, c3, 5)
        self.l3_d6 = mb(2 * c3, c3, 5)
        self.l3_d8 = mb(4 * c3, c3, 3)
        self.l3_up_a, self.l3_up_b = _UpConv(c3, c2), _UpConv(c3, c2)
        self.l3_out = _head(c3, self.out_channels)
        # level 2
        self.l2_d3 = mb(2 * c2, c2, 5)
        self.l2_d5 = mb(3 * c2, c2, 7)
        self.l2_d6 = mb(3 * c2, c2, 7)
        self.l2_d7 = mb(3 * c2, c2, 7)
        self.l2_d8 = mb(3 * c2, c2, 7)
        self.l2_d10 = mb(4 * c2, c2, 5)
        self.l2_d12 = mb(3 * c2, c2, 3)
        self.l2_up_a, self.l2_up_b = _UpConv(c2, c1), _UpConv(c2, c1)
        self.l2_out = _head(c2, self.out_channels)
        # level 1: IN on from d5 to d12 (the port's instance_norm_level_1=True, Kim2020's conv3..9)
        self.l1_d3 = mb(2 * c1, c1, 5, norm=False)
        self.l1_d5 = mb(3 * c1, c1, 7)
        self.l1_d6 = mb(3 * c1, c1, 9)
        self.l1_d7 = mb(4 * c1, c1, 9)
        self.l1_d8 = mb(4 * c1, c1, 9)
        self.l1_d9 = mb(4 * c1, c1, 9)
        self.l1_d10 = mb(4 * c1, c1, 7)
        self.l1_d12 = mb(4 * c1, c1, 5)
        self.l1_d14 = mb(4 * c1, c1, 3, norm=False)
        self.l1_out = _head(c1, self.out_channels)
        # level 0 (no IN in either reference)
        if head == "upsample":
            self.l0_up = _UpConv(c1, c1 // 2)
            self.l0_out = _head(c1 // 2, self.out_channels)
        else:
            self.l0_block = mb(c1, c1, 9, norm=False)
            self.l0_out = nn.Conv2d(self.l0_block.out_channels, 4 * self.out_channels, 1)
            self.l0_shuffle = nn.PixelShuffle(2)

    # ------------------------------------------------------------------ statistics contexts

    def _set_tape(self, tape: _Tape | None) -> None:
        self._tape = tape
        for m in self.modules():
            if isinstance(m, _GlobalStatModule):
                m._tape = tape

    @contextmanager
    def record_stats(self, pooled: bool = False) -> Iterator[list]:
        """Record the global statistics of the forward passes run inside the context.

        Yields the list that receives, in call order, ``(mean, var)`` (each (N, C, 1, 1), biased
        variance, detached) from every instance-norm layer and the gate (N, C, 1, 1, detached) from
        every channel-attention module. Record one forward pass per list: ``replay_stats`` reads
        the list from its start at each pass.

        ``pooled=True``: the statistics are taken over the batch and the pixels together, and the
        forward uses them for every sample, as if the samples were crops of one image; entries are
        then (1, C, 1, 1). Tiled inference records the statistics of a large image this way from
        full-resolution crops, so that they are measured at the scale the network was trained at.
        """
        if self._tape is not None:
            raise RuntimeError("record_stats/replay_stats contexts of one PyNET cannot be nested")
        stats: list = []
        self._set_tape(_Tape("record", stats, pooled=pooled))
        try:
            yield stats
        finally:
            self._set_tape(None)

    @contextmanager
    def replay_stats(self, stats: list) -> Iterator[None]:
        """Run the forward passes inside the context with recorded statistics (see record_stats).

        Instance norms normalise with the recorded mean and variance and channel attention applies
        the recorded gate, whatever the input, so tiles of an image all see the image's statistics.
        Raises ValueError during the forward pass if ``stats`` does not fit the network or batch.
        """
        if self._tape is not None:
            raise RuntimeError("record_stats/replay_stats contexts of one PyNET cannot be nested")
        self._set_tape(_Tape("replay", list(stats)))
        try:
            yield
        finally:
            self._set_tape(None)

    # ------------------------------------------------------------------ forward

    def _check_input(self, x: Tensor, level: int) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 5:
            raise ValueError(f"level must be an integer in 0..5, got {level!r}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, h, w), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 16 or w % 16:
            raise ValueError(f"input height and width must be multiples of 16 (4 poolings), got {h}x{w}")
        if h < 32 or w < 32:
            # level 5 must be at least 2x2 for its 3x3 reflection padding
            raise ValueError(f"input height and width must be at least 32, got {h}x{w}")

    def forward(self, x: Tensor, level: int = 0) -> Tensor:
        """Develop packed Bayer planes; see the module docstring for shapes and ``level``."""
        self._check_input(x, level)
        if self._tape is not None and self._tape.mode == "replay":
            self._tape.cursor = 0  # every forward pass replays the list from its start

        e1 = self.l1_d1(x)
        e2 = self.l2_d1(F.max_pool2d(e1, 2))
        e3 = self.l3_d1(F.max_pool2d(e2, 2))
        e4 = self.l4_d1(F.max_pool2d(e3, 2))

        y = self.l5_d4(self.l5_d3(self.l5_d2(self.l5_d1(F.max_pool2d(e4, 2)))))
        if level == 5:
            return self.l5_out(y)
        up_a, up_b = self.l5_up_a(y), self.l5_up_b(y)

        y = self.l4_d3(torch.cat([e4, up_a], 1))
        y = self.l4_d4(y) + y
        y = self.l4_d5(y) + y
        y = self.l4_d6(y)
        y = self.l4_d8(torch.cat([y, up_b], 1))
        if level == 4:
            return self.l4_out(y)
        up_a, up_b = self.l4_up_a(y), self.l4_up_b(y)

        y = torch.cat([e3, up_a], 1)
        y = self.l3_d3(y) + y
        y = self.l3_d4(y) + y
        y = self.l3_d5(y) + y
        y = self.l3_d6(y)
        y = self.l3_d8(torch.cat([y, e3, up_b], 1))
        if level == 3:
            return self.l3_out(y)
        up_a, up_b = self.l3_up_a(y), self.l3_up_b(y)

        y = self.l2_d3(torch.cat([e2, up_a], 1))
        y = torch.cat([y, e2], 1)
        y = self.l2_d5(y) + y
        y = self.l2_d6(y) + y
        y = self.l2_d7(y) + y
        y = self.l2_d8(y)
        y = self.l2_d10(torch.cat([y, e2], 1))
        y = self.l2_d12(torch.cat([y, up_b], 1))
        if level == 2:
            return self.l2_out(y)
        up_a, up_b = self.l2_up_a(y), self.l2_up_b(y)

        y = self.l1_d3(torch.cat([e1, up_a], 1))
        y = self.l1_d5(torch.cat([y, e1], 1))
        y = self.l1_d6(y)
        y = self.l1_d7(y) + y
        y = self.l1_d8(y) + y
        y = self.l1_d9(y) + y
        y = self.l1_d10(y)
        y = self.l1_d12(torch.cat([y, e1], 1))
        y = self.l1_d14(torch.cat([y, up_b, e1], 1))
        if level == 1:
            return self.l1_out(y)

        if self.head == "upsample":
            return self.l0_out(self.l0_up(y))
        return self.l0_shuffle(self.l0_out(self.l0_block(y)))


def make_pynet(width: int = 32, **kw) -> PyNET:
    """PyNET as the PyTorch port trains it: IN after every branch conv, no channel attention,
    up-sample + conv level-0 head. 47,554,738 parameters at width 32."""
    kw.setdefault("channel_attention", False)
    kw.setdefault("instance_norm", True)
    kw.setdefault("head", "upsample")
    kw.setdefault("norm_position", "every_conv")
    return PyNET(width=width, **kw)


def make_pynet_ca(width: int = 32, **kw) -> PyNET:
    """PyNET-CA of Kim2020: channel attention after every multi-conv block, IN after the second conv
    of each branch, sub-pixel level-0 head. 51,303,515 parameters at width 32."""
    kw.setdefault("channel_attention", True)
    kw.setdefault("instance_norm", True)
    kw.setdefault("head", "subpixel")
    kw.setdefault("norm_position", "second_conv")
    return PyNET(width=width, **kw)
