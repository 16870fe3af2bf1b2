"""Post-training int8 quantisation and magnitude sparsity of a :class:`~.li2020.StudentJDD`.

int8 (static, calibrated): the half-resolution trunk (3x3 conv + ReLU pairs and the 1x1 head, all but
a few percent of the multiply-accumulates) runs on PyTorch's quantised x86 kernels (oneDNN/FBGEMM):
per-channel symmetric int8 weights, per-tensor affine uint8 activations whose ranges come from
calibration data (min/max observers), conv + ReLU fused. Calibration uses FX graph-mode quantisation
(:func:`calibrate_ranges`); loading does not: :func:`quantised_trunk` builds the same quantised modules
directly from the stored ranges, because FX's symbolic trace alone took 2.0 s of a 9.5 s 24 MP develop
(its first use imports torch.fx's shape machinery), and the two agree bit for bit
(``tests/test_compress.py``). The packing
layer, the noise plane, the up-sampling, the full-resolution ``post`` layers and the Malvar base stay
in float32: they are cheap and the output needs their precision. The observed ranges are stored next
to the float weights, so the int8 network is rebuilt identically without the calibration data.

Sparsity: :func:`magnitude_sparsify` zeroes the smallest-magnitude weights of every 3x3 layer
(Gale, Elsen & Hooker 2019, "magnitude pruning"); dense CPU kernels multiply the zeros all the same,
so it is a quality-versus-sparsity measurement, not a speed-up by itself.

References:
    Jacob2018: B. Jacob et al. "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference". CVPR 2018 (the affine uint8/int8 scheme).
    Gale2019: T. Gale, E. Elsen, S. Hooker. "The State of Sparsity in Deep Neural Networks". arXiv
    1902.09574 (2019).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Iterable

import torch
from torch import nn

__all__ = ["Int8Student", "calibrate_ranges", "magnitude_sparsify", "quantised_trunk", "sparsity"]

_BACKEND = "x86"


def _prepare(student: nn.Module, example: torch.Tensor) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    torch.backends.quantized.engine = _BACKEND
    trunk = copy.deepcopy(student.trunk()).eval()
    return prepare_fx(trunk, get_default_qconfig_mapping(_BACKEND), (example,))


def _observers(prepared: nn.Module) -> dict[str, nn.Module]:
    from torch.ao.quantization.observer import ObserverBase

    return {name: m for name, m in prepared.named_modules() if isinstance(m, ObserverBase)}


def calibrate_ranges(student: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Activation ranges of the trunk over calibration ``(mosaic3, sigma)`` batches:
    ``{"<observer>.min_val": t, "<observer>.max_val": t}`` (float32 scalars)."""
    prepared = None
    with torch.no_grad():
        for m3, sigma in batches:
            x = student.features(m3, sigma)
            if prepared is None:
                prepared = _prepare(student, x)
            prepared(x)
    if prepared is None:
        raise ValueError("calibration needs at least one batch")
    out = {}
    for name, obs in _observers(prepared).items():
        out[f"{name}.min_val"] = obs.min_val.detach().clone().float()
        out[f"{name}.max_val"] = obs.max_val.detach().clone().float()
    return out


class Int8Student(nn.Module):
    """A plain student whose trunk runs in int8 (see the module docstring); same call contract.

    Args:
        student: the float32 plain student (kept for the float parts).
        ranges: :func:`calibrate_ranges`' output for this student.
    """

    def __init__(self, student: nn.Module, ranges: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.student = student.eval()
        self.border = student.border
        self.depth = student.depth
        self.qtrunk = quantised_trunk(student, ranges)

    def forward(self, mosaic3: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        x = self.student.features(mosaic3, noise).contiguous()
        return self.student.finish(mosaic3, self.qtrunk(x))


class _QuantisedTrunk(nn.Module):
    """quantize -> fused conv+ReLU layers -> head -> dequantize: the graph FX's ``convert_fx`` makes of
    the trunk, written out."""

    def __init__(self, scale: float, zero_point: int, layers: list[nn.Module]) -> None:
        super().__init__()
        self.scale, self.zero_point = scale, zero_point
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.quantize_per_tensor(x, self.scale, self.zero_point, torch.quint8)
        return self.layers(q).dequantize()


@contextlib.contextmanager
def _quiet_deprecations():
    """Hide the two warnings PyTorch 2.13 gives for every quantised module it builds (its quantised
    tensor types and ``reduce_range`` are deprecated in favour of torchao): they printed on every
    ``jdd-fast-int8`` and ``cameranet-fast`` develop, where they mean nothing to the user; what the
    deprecation means for the project is in docs/compression.md."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Please use quant_min and quant_max", category=UserWarning)
        yield


@_quiet_deprecations()
def quantised_trunk(student: nn.Module, ranges: dict[str, torch.Tensor]) -> nn.Module:
    """The student's trunk as int8 modules, from :func:`calibrate_ranges`' stored ranges.

    FX names the observers in graph order: ``activation_post_process_0`` is the trunk's input, ``i``
    (1..depth) the output of fused layer ``i``, ``depth + 1`` the head's. Weights are quantised as
    ``convert_fx`` does (the x86 default qconfig's per-channel observer, then ``_quantize_weight``).

    Raises:
        ValueError: ranges that do not fit this student.
    """
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq
    from torch.ao.nn.quantized.modules.utils import _quantize_weight
    from torch.ao.quantization import get_default_qconfig

    torch.backends.quantized.engine = _BACKEND
    qconfig = get_default_qconfig(_BACKEND)
    n = student.depth + 2
    expected = {f"activation_post_process_{i}.{k}" for i in range(n) for k in ("min_val", "max_val")}
    if set(ranges) != expected:
        missing = sorted(expected - set(ranges)) or sorted(set(ranges) - expected)
        raise ValueError(f"calibration ranges do not fit this student: {missing[:3]}")

    def activation(i: int) -> tuple[float, int]:
        obs = qconfig.activation()
        scale, zero = obs._calculate_qparams(ranges[f"activation_post_process_{i}.min_val"],
                                             ranges[f"activation_post_process_{i}.max_val"])
        return float(scale), int(zero)

    layers: list[nn.Module] = []
    with torch.no_grad():
        for i, conv in enumerate([*student.convs, student.head], start=1):
            wobs = qconfig.weight()
            wobs(conv.weight)
            cls = nniq.ConvReLU2d if i <= student.depth else nnq.Conv2d
            q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
            q.set_weight_bias(_quantize_weight(conv.weight.float(), wobs), conv.bias.float())
            q.scale, q.zero_point = activation(i)
            layers.append(q)
    return _QuantisedTrunk(*activation(0), layers)


def magnitude_sparsify(student: nn.Module, amount: float) -> nn.Module:
    """A copy of ``student`` with the ``amount`` fraction of smallest-magnitude weights of each 3x3
    layer set to zero (unstructured, layer-wise; Gale2019)."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must lie in [0, 1), got {amount}")
    net = copy.deepcopy(student)
    with torch.no_grad():
        for conv in net.convs:
            w = conv.weight
            k = int(round(amount * w.numel()))
            if k == 0:
                continue
            thr = w.abs().flatten().kthvalue(k).values
            w.mul_((w.abs() > thr).to(w.dtype))
    return net


def sparsity(student: nn.Module) -> float:
    """Fraction of zero weights over the 3x3 layers."""
    z = sum(int((c.weight == 0).sum()) for c in student.convs)
    n = sum(c.weight.numel() for c in student.convs)
    return z / n
