"""Post-training int8 quantisation and magnitude sparsity of a :class:`~.li2020.StudentJDD`.

int8 (static, calibrated): the half-resolution trunk (3x3 conv + ReLU pairs and the 1x1 head, all but
a few percent of the multiply-accumulates) is converted with PyTorch's FX graph-mode quantisation for
the x86 back-end (oneDNN/FBGEMM kernels): per-channel symmetric int8 weights, per-tensor affine uint8
activations whose ranges come from calibration data (min/max observers), conv + ReLU fused. The packing
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

import copy
from typing import Iterable

import torch
from torch import nn

__all__ = ["Int8Student", "calibrate_ranges", "magnitude_sparsify", "sparsity"]

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
        from torch.ao.quantization.quantize_fx import convert_fx

        self.student = student.eval()
        self.border = student.border
        self.depth = student.depth
        example = torch.zeros(1, student.convs[0].in_channels, 8, 8)
        prepared = _prepare(student, example)
        observers = _observers(prepared)
        missing = {f"{n}.{k}" for n in observers for k in ("min_val", "max_val")} - set(ranges)
        if missing:
            raise ValueError(f"calibration ranges do not fit this student: missing {sorted(missing)[:3]}")
        with torch.no_grad():
            for name, obs in observers.items():
                obs.min_val = ranges[f"{name}.min_val"].clone()
                obs.max_val = ranges[f"{name}.max_val"].clone()
                obs.calculate_qparams = _stored_range_qparams(obs)
        self.qtrunk = convert_fx(prepared)

    def forward(self, mosaic3: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        x = self.student.features(mosaic3, noise).contiguous()
        return self.student.finish(mosaic3, self.qtrunk(x))


def _stored_range_qparams(obs: nn.Module):
    """``calculate_qparams`` of an observer rebuilt from stored ranges: the affine parameters of its
    [min, max] range.

    The x86 default's HistogramObserver would search its histogram for the range with the least L2
    quantisation error (0.9 s per observer, 7 of the 10 s it took to build the int8 back-end). Only
    min and max are stored, so its histogram is empty here and that search returns [min, max]
    unchanged: the same parameters, without the search (``tests/test_compress.py`` checks both agree).
    """
    return lambda: obs._calculate_qparams(obs.min_val, obs.max_val)


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
