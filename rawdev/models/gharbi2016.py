"""Deep joint demosaicking networks of Gharbi et al. 2016, re-stated so the released weights load.

Public, stable API (other modules and the training command import these names)::

    BayerDemosaicNet(depth: int = 15, width: int = 64, noise_input: bool = False)
        forward(mosaic3, noise=None) -> image
            mosaic3: (N, 3, H, W) float, zero-filled 3-channel mosaic whose pixel (0, 0) is the G of a
                     G-R row (GRBG), H and W even, values sRGB-encoded in [0, 1]
            noise:   (N,) float, the noise standard deviation in the same sRGB-encoded [0, 1] units;
                     required when ``noise_input=True``, ignored (must be None) otherwise
            image:   (N, 3, H - 62, W - 62): valid convolutions, the output pixel (i, j) is the input
                     pixel (i + 31, j + 31). Same encoding as the input, not clipped.
        BayerDemosaicNet.from_pretrained_noise_free(state_dict, depth=15, width=64)
            a ``noise_input=True`` model initialised from a noise-free state dict; the weights of the
            extra noise channel start at zero, so it computes exactly what the noise-free model does.
    XTransDemosaicNet(depth: int = 11, width: int = 64)
        forward(mosaic3) -> image: (N, 3, H, W) zero-filled X-Trans mosaic, any size and phase,
            -> (N, 3, H - 24, W - 24); output pixel (i, j) is input pixel (i + 12, j + 12).

The parameter names equal those of the released PyTorch checkpoints (``demosaicnet`` 0.0.14, files
``data/bayer.pth`` and ``data/xtrans.pth``), so ``load_state_dict`` takes them unchanged and no
key mapping is needed. The ``demosaicnet`` package itself is never imported (its ``modules.py``
needs ``pkg_resources``, gone from recent setuptools).

Architecture (Bayer, as released; it adds a mask/filter product to the paper's network):

1. ``main_processor.pack_mosaic``: conv 2x2 stride 2, 3 -> 4 (learned one-hot packing + bias).
2. [``noise_input`` only] a constant plane holding the noise level is concatenated: 5 channels
   (Gharbi2016 Sec. 4, "noise-aware" model; also the released Caffe ``bayer_noise`` deploy file).
3. ``main_processor.conv1..conv{depth}``: conv 3x3 valid + ReLU at half resolution;
   widths 4(5) -> 64 -> ... -> 64 -> 128.
4. filters = features[:, :64], masks = features[:, 64:]; ``residual_predictor``: conv 1x1 on
   filters * masks, 64 -> 12.
5. ``upsampler``: transposed conv 2x2 stride 2, groups 3, 12 -> 3 at full resolution.
6. ``fullres_processor``: the input mosaic, centre-cropped, concatenated with the up-sampled residual
   (6 channels) -> conv 3x3 -> ReLU -> conv 1x1 -> 3 channels.

Shape:
    Bayer: (N, 3, H, W) -> (N, 3, H - 62, W - 62), H and W even and >= 64.
    X-Trans: (N, 3, H, W) -> (N, 3, H - 24, W - 24), H and W >= 25.

References:
    Gharbi2016: M. Gharbi, G. Chaurasia, S. Paris, F. Durand. "Deep Joint Demosaicking and
    Denoising". ACM Transactions on Graphics 35(6), 191 (SIGGRAPH Asia 2016).
    Code and weights: https://github.com/mgharbi/demosaicnet (MIT licence).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["BayerDemosaicNet", "XTransDemosaicNet", "BAYER_BORDER", "XTRANS_BORDER"]

BAYER_BORDER = 31  # pixels lost per side by the valid-conv Bayer network (even input size)
XTRANS_BORDER = 12  # pixels lost per side by the valid-conv X-Trans network


def _crop_like(src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Centre-crop ``src`` spatially to the size of ``tgt`` (top/left get the smaller half)."""
    dh = src.shape[-2] - tgt.shape[-2]
    dw = src.shape[-1] - tgt.shape[-1]
    if dh == 0 and dw == 0:
        return src
    top, left = dh // 2, dw // 2
    return src[..., top : top + tgt.shape[-2], left : left + tgt.shape[-1]]


class BayerDemosaicNet(nn.Module):
    """The Bayer joint demosaicking network of Gharbi2016, as released (valid convolutions).

    Args:
        depth: number of 3x3 convs at half resolution (15 for the released weights).
        width: feature width (64 for the released weights).
        noise_input: the noise-aware variant of Gharbi2016 Sec. 4: a constant plane holding the noise
            standard deviation is concatenated after packing, so ``conv1`` has 5 input channels.

    The module holds no padding and no clipping; see the module docstring for the geometry.
    """

    def __init__(self, depth: int = 15, width: int = 64, noise_input: bool = False) -> None:
        super().__init__()
        self.depth = int(depth)
        self.width = int(width)
        self.noise_input = bool(noise_input)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["pack_mosaic"] = nn.Conv2d(3, 4, 2, stride=2)
        for i in range(self.depth):
            n_in = (5 if self.noise_input else 4) if i == 0 else self.width
            n_out = 2 * self.width if i == self.depth - 1 else self.width
            layers[f"conv{i + 1}"] = nn.Conv2d(n_in, n_out, 3)
            layers[f"relu{i + 1}"] = nn.ReLU(inplace=True)
        self.main_processor = nn.Sequential(layers)
        self.residual_predictor = nn.Conv2d(self.width, 12, 1)
        self.upsampler = nn.ConvTranspose2d(12, 3, 2, stride=2, groups=3)
        self.fullres_processor = nn.Sequential(OrderedDict([
            ("post_conv", nn.Conv2d(6, self.width, 3)),
            ("post_relu", nn.ReLU(inplace=True)),
            ("output", nn.Conv2d(self.width, 3, 1)),
        ]))

    @classmethod
    def from_pretrained_noise_free(
        cls, state_dict: dict[str, torch.Tensor], depth: int = 15, width: int = 64
    ) -> "BayerDemosaicNet":
        """A ``noise_input=True`` network that starts equal to a noise-free one.

        Every weight is copied from ``state_dict`` (the released ``bayer.pth`` layout); the new
        input channel of ``conv1`` (the noise plane, Gharbi2016 Sec. 4) gets zero weights, so the
        output does not depend on the noise level until the model is fine-tuned.

        Raises:
            RuntimeError: ``state_dict`` does not fit a noise-free network of this depth and width.
        """
        sd = dict(state_dict)
        w = sd["main_processor.conv1.weight"]
        if w.shape[1] != 4:
            raise RuntimeError(f"conv1 of a noise-free model has 4 inputs, got {tuple(w.shape)}")
        sd["main_processor.conv1.weight"] = torch.cat([w, torch.zeros_like(w[:, :1])], dim=1)
        net = cls(depth=depth, width=width, noise_input=True)
        net.load_state_dict(sd, strict=True)
        return net

    def trunk(self, mosaic3: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Half-resolution features after the mask/filter product: (N, width, H/2 - 15*2, ...)."""
        mp = self.main_processor
        x = mp.pack_mosaic(mosaic3)
        if self.noise_input:
            if noise is None:
                raise ValueError("this BayerDemosaicNet has a noise input: pass noise=(N,) sigmas")
            sigma = torch.as_tensor(noise, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
            sigma = sigma.expand(x.shape[0], 1, x.shape[2], x.shape[3])
            x = torch.cat([x, sigma], dim=1)
        elif noise is not None:
            raise ValueError("this BayerDemosaicNet has no noise input; pass noise=None")
        for i in range(self.depth):
            x = getattr(mp, f"relu{i + 1}")(getattr(mp, f"conv{i + 1}")(x))
        return x[:, : self.width] * x[:, self.width :]

    def forward(self, mosaic3: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Demosaic a GRBG-aligned, zero-filled 3-channel mosaic.

        Args:
            mosaic3: (N, 3, H, W) float, H and W even, sRGB-encoded values in [0, 1], zeros at the
                colours a pixel does not sample; pixel (0, 0) is the G of a G-R row.
            noise: (N,) noise standard deviations (sRGB-encoded [0, 1] units) for the noise-aware
                model; None for the noise-free one.

        Returns:
            (N, 3, H - 62, W - 62), aligned with ``mosaic3[..., 31:-31, 31:-31]``; not clipped.
        """
        residual = self.residual_predictor(self.trunk(mosaic3, noise))
        upsampled = self.upsampler(residual)
        packed = torch.cat([_crop_like(mosaic3, upsampled), upsampled], dim=1)
        return self.fullres_processor(packed)


class XTransDemosaicNet(nn.Module):
    """The X-Trans demosaicking network released with Gharbi2016 (no down-sampling, valid convs).

    Args:
        depth: number of full-resolution 3x3 convs (11 for the released weights).
        width: feature width (64 for the released weights).
    """

    def __init__(self, depth: int = 11, width: int = 64) -> None:
        super().__init__()
        self.depth = int(depth)
        self.width = int(width)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i in range(self.depth):
            layers[f"conv{i + 1}"] = nn.Conv2d(3 if i == 0 else self.width, self.width, 3)
            layers[f"relu{i + 1}"] = nn.ReLU(inplace=True)
        self.main_processor = nn.Sequential(layers)
        self.fullres_processor = nn.Sequential(OrderedDict([
            ("post_conv", nn.Conv2d(3 + self.width, self.width, 3)),
            ("post_relu", nn.ReLU(inplace=True)),
            ("output", nn.Conv2d(self.width, 3, 1)),
        ]))

    def forward(self, mosaic3: torch.Tensor) -> torch.Tensor:
        """Demosaic a zero-filled 3-channel X-Trans mosaic (any phase).

        Args:
            mosaic3: (N, 3, H, W) float, sRGB-encoded values in [0, 1], zeros at unsampled colours.

        Returns:
            (N, 3, H - 24, W - 24), aligned with ``mosaic3[..., 12:-12, 12:-12]``; not clipped.
        """
        features = self.main_processor(mosaic3)
        packed = torch.cat([_crop_like(mosaic3, features), features], dim=1)
        return self.fullres_processor(packed)
