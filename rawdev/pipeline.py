"""The developer: decode -> normalise -> white balance -> highlights -> demosaic (back-end) -> colour
-> exposure -> tone -> quantise -> orientation.

Work is streamed in bands of rows: each band is normalised, white-balanced and demosaicked with a
margin of real neighbouring rows (the back-end's declared receptive field), so that peak memory is
set by the band, not the image, and the result equals a whole-image run for back-ends that declare
``tile_exact``. Back-ends that are not exact under tiling get the whole mosaic and blend their own
tiles (see :mod:`rawdev.tiling`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .backends import registry
from .cfa import pattern_after_crop
from .io.raw import read_raw, render_libraw
from .stages.colour import apply_matrix
from .stages.highlights import blend_highlights, check_mode
from .stages.normalise import normalise
from .stages.orientation import apply_orientation
from .stages.tone import (auto_bright_gain, quantise, quantise_scale, srgb_decode, srgb_decode_unclipped,
                          srgb_encode, srgb_encode_unclipped)
from .stages.white_balance import WhiteBalance, apply_gains_mosaic, choose_gains, grey_world_gains
from .tiling import resolve_device
from .types import RawImage

__all__ = ["PipelineConfig", "DevelopResult", "develop_raw", "develop", "develop_libraw", "develop_to_file"]

_LIBRAW_HIGHLIGHT = {"clip": 0, "unclip": 1, "blend": 2}


@dataclass(frozen=True)
class PipelineConfig:
    """Every choice the developer makes. Defaults give a neutral render comparable with LibRaw's
    ``postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True)``."""

    backend: str = "malvar"
    wb: str | tuple[float, ...] = "camera"
    highlights: str = "clip"
    exposure_ev: float = 0.0
    auto_bright: bool = False
    curve: Literal["srgb", "linear"] = "srgb"
    apply_orientation: bool = True
    output_bits: int | None = 8  # 8 -> uint8, 16 -> uint16, None -> float32 in [0, 1]
    device: str = "auto"
    tile: int | None = None  # learned back-ends: tile side in pixels; None = the back-end default
    noise: float | None = None  # noise sigma for noise-aware back-ends, in their input domain
    band_rows: int = 256


@dataclass
class DevelopResult:
    """The developed image ``(H, W, 3)`` and what was decided on the way."""

    image: np.ndarray
    raw: RawImage
    wb: WhiteBalance
    backend: str
    orientation: int  # the EXIF orientation that was applied to the pixels (1 = none)
    notices: list[str] = field(default_factory=list)
    noise_sigma: float | None = None


def _wb_for(raw: RawImage, mode) -> WhiteBalance:
    meta = raw.meta

    def grey():
        if raw.colors is None or raw.data.size == 0:
            return (1.0, 1.0, 1.0)
        m = normalise(raw.data[::1], np.asarray(raw.black_map), meta.white_level)
        return grey_world_gains(m, torch.from_numpy(np.asarray(raw.colors)))

    wb = choose_gains(mode, camera=meta.camera_wb, daylight=meta.daylight_wb, grey_world=grey)
    # LibRaw's convention: the smallest multiplier is 1, so every channel's clip point is >= 1.0
    # and clipped highlights come out white, not grey.
    lo = min(wb.gains)
    return replace(wb, gains=tuple(g / lo for g in wb.gains))


def _cfa_for_band(raw: RawImage, top: int):
    cfa = raw.meta.cfa
    if cfa.kind == "bayer":
        return pattern_after_crop(cfa.bayer_pattern, top, 0)
    return np.roll(cfa.cell, -top, axis=0)


def _preview_linear(raw: RawImage, gains, matrix) -> torch.Tensor:
    """A cheap half-size linear sRGB image from the 2x2 cells (for auto exposure statistics)."""
    meta = raw.meta
    h, w = raw.data.shape[0] // 2 * 2, raw.data.shape[1] // 2 * 2
    acc = torch.zeros(3, h // 2, w // 2)
    cnt = torch.zeros(3, 1, 1)
    for dy in (0, 1):
        for dx in (0, 1):
            c = int(raw.colors[dy % raw.colors.shape[0], dx % raw.colors.shape[1]])
            plane = normalise(raw.data[dy:h:2, dx:w:2], raw.black_map[dy:h:2, dx:w:2], meta.white_level)
            acc[c] += plane * gains[c]
            cnt[c] += 1
    rgb = (acc / cnt.clamp(min=1)).clamp_(max=1.0)
    return apply_matrix(rgb, matrix)


def _noise_sigma(raw: RawImage, cfg: PipelineConfig, spec, gains) -> float | None:
    """Noise level for noise-aware back-ends, in the back-end's input domain.

    ``--noise`` wins; else the DNG NoiseProfile (var = S x + O on normalised data) evaluated at 18 %
    grey and carried through the sRGB curve's slope there; else an estimate from the data.
    """
    if not spec.uses_noise:
        return None
    if cfg.noise is not None:
        return float(cfg.noise)
    from .stages.noise import SIGMA_GREY as x, estimate_sigma_linear, srgb_slope

    if raw.meta.noise_profile is not None:
        s, o = raw.meta.noise_profile
        sigma_lin = float(np.sqrt(max(s * x + o, 0.0))) * gains[1]
    else:
        sigma_lin = estimate_sigma_linear(raw)
    if spec.input_domain == "mosaic_srgb_wb":
        return sigma_lin * srgb_slope(x)
    return sigma_lin


def _develop_cfa(raw: RawImage, cfg: PipelineConfig, spec, wb: WhiteBalance, notices: list[str]) -> tuple[np.ndarray, float | None]:
    meta = raw.meta
    device = resolve_device(cfg.device) if spec.kind == "learned" else torch.device("cpu")
    runner = spec.build(device=str(device), tile=cfg.tile)
    gains = wb.gains
    matrix = meta.rgb_cam
    if matrix is None:
        notices.append("the file has no colour matrix; camera RGB is taken as sRGB")
    check_mode(cfg.highlights)
    ev = cfg.exposure_ev
    if cfg.auto_bright:
        ev += float(np.log2(auto_bright_gain(_preview_linear(raw, gains, matrix) * 2.0**ev)))
    sigma = _noise_sigma(raw, cfg, spec, gains)
    noise = None if sigma is None else torch.tensor([sigma], dtype=torch.float32)

    H, W = raw.data.shape
    bits = cfg.output_bits
    out = np.empty((H, W, 3), dtype={8: np.uint8, 16: np.uint16, None: np.float32}[bits])
    margin = spec.margin + (spec.margin % 2)
    band = max(cfg.band_rows, 8 * margin) if spec.tile_exact else H
    srgb_in = spec.input_domain == "mosaic_srgb_wb"
    # Classical methods take any real value: the unclipped curve keeps negative noise and (with
    # --highlights unclip/blend) values above the clip point. demosaicnet was trained on [0, 1].
    unclipped = spec.kind == "classical"
    encode, decode = (srgb_encode_unclipped, srgb_decode_unclipped) if unclipped else (srgb_encode, srgb_decode)
    # Exposure is folded into the colour matrix: one pass instead of two.
    m_out = (np.eye(3) if matrix is None else np.asarray(matrix)) * 2.0**ev
    with torch.inference_mode():
        for y0 in range(0, H, band):
            y1 = min(H, y0 + band)
            a, b = max(0, y0 - margin), min(H, y1 + margin)
            m = _linear_wb_band(raw, a, b, gains)
            if cfg.highlights == "clip" or (srgb_in and not unclipped):
                m.clamp_(max=1.0)
            if srgb_in:
                m = encode(m)
            rgb = runner(m[None, None].to(device), _cfa_for_band(raw, a), noise=noise)[0]
            rgb = rgb[:, y0 - a : y1 - a].float().cpu()
            if srgb_in:
                rgb = decode(rgb)
            if cfg.highlights == "clip":
                rgb.clamp_(max=1.0)
            elif cfg.highlights == "blend":
                rgb = blend_highlights(rgb, 1.0)
            out[y0:y1] = _encode(rgb, m_out, bits, cfg.curve)
    return out, sigma


def _noise_coefficients(raw: RawImage, cfg: PipelineConfig, gains) -> tuple[float, float]:
    """(shot, read) variance coefficients on the white-balanced, normalised mosaic, as the green
    channel sees them: from ``--noise`` (a read-noise sigma), the DNG NoiseProfile (var = S x + O on
    normalised data), or an estimate from the data (taken as read noise)."""
    if cfg.noise is not None:
        return 0.0, float(cfg.noise) ** 2
    g = float(gains[1])
    if raw.meta.noise_profile is not None:
        s, o = raw.meta.noise_profile
        # x_wb = g x: var_wb = g^2 (S x + O) = g S x_wb + g^2 O
        return max(g * float(s), 0.0), max(g * g * float(o), 0.0)
    from .stages.noise import estimate_sigma_linear

    return 0.0, float(estimate_sigma_linear(raw)) ** 2 * g * g


def _develop_isp(raw: RawImage, cfg: PipelineConfig, spec, wb: WhiteBalance, notices: list[str]) -> tuple[np.ndarray, float | None]:
    """End-to-end learned ISPs: the whole white-balanced mosaic in, display sRGB out (the back-end
    tiles and blends itself); the file's colour matrix and the exposure are handed to it."""
    meta = raw.meta
    if cfg.highlights != "clip":
        notices.append(f"back-end {spec.name!r} renders highlights itself; --highlights {cfg.highlights} ignored")
    device = resolve_device(cfg.device)
    runner = spec.build(device=str(device), tile=cfg.tile)
    gains = wb.gains
    matrix = meta.rgb_cam
    if matrix is None:
        notices.append("the file has no colour matrix; camera RGB is taken as sRGB")
    ev = cfg.exposure_ev
    if cfg.auto_bright:
        ev += float(np.log2(auto_bright_gain(_preview_linear(raw, gains, matrix) * 2.0**ev)))
    m_out = (np.eye(3) if matrix is None else np.asarray(matrix)) * 2.0**ev
    shot, read = _noise_coefficients(raw, cfg, gains)
    H = raw.data.shape[0]
    with torch.inference_mode():
        m = _linear_wb_band(raw, 0, H, gains).clamp_(max=1.0)
        disp = runner(m[None, None], _cfa_for_band(raw, 0), noise=torch.tensor([shot, read]),
                      matrix=m_out)[0].float().cpu()
        del m
        hwc = disp.permute(1, 2, 0)
        if cfg.curve == "linear":
            hwc = srgb_decode(hwc)
        if cfg.output_bits is None:
            out = hwc.contiguous().numpy()
        else:  # already encoded: plain rounding to codes, which is quantise's "linear" mode
            out = quantise(hwc * quantise_scale(cfg.output_bits, "linear"), cfg.output_bits, "linear").numpy()
    return out, float(np.sqrt(shot * 0.18 + read))


def _linear_wb_band(raw: RawImage, a: int, b: int, gains) -> torch.Tensor:
    """Rows ``a:b`` of the mosaic, black-subtracted, scaled to the clip point and white-balanced.

    ``(counts - black_c) * gain_c / (white - black_c)`` in one multiply-add per sample: per CFA cell
    position for Bayer sensors, per pixel through the colour map otherwise.
    """
    meta = raw.meta
    counts = torch.from_numpy(raw.data[a:b].astype(np.float32))
    if meta.cfa.kind == "bayer":
        for dy in range(min(2, b - a)):
            # Row-parity views keep the inner dimension contiguous; the per-column pattern of
            # scale and offset alternates with the column parity.
            black = torch.from_numpy(raw.black_map[a + dy].astype(np.float32))
            gain = torch.tensor(gains, dtype=torch.float32)[torch.from_numpy(raw.colors[a + dy].astype(np.int64))]
            scale = gain / torch.clamp(meta.white_level - black, min=1.0)
            counts[dy::2].mul_(scale).sub_(black * scale)
        return counts
    m = normalise(counts, raw.black_map[a:b], meta.white_level)
    return apply_gains_mosaic(m, torch.from_numpy(raw.colors[a:b]), gains)


def _encode(rgb: torch.Tensor, matrix: np.ndarray, bits: int | None, curve: str) -> np.ndarray:
    """``(3, h, W)`` white-balanced camera RGB -> ``(h, W, 3)`` output codes (or display-encoded
    floats): the colour matrix and the change of layout in one matrix product, then the curve."""
    scale = 1.0 if bits is None else quantise_scale(bits, curve)
    m = torch.as_tensor(np.asarray(matrix) * scale, dtype=rgb.dtype)
    hwc = torch.matmul(rgb.permute(1, 2, 0), m.T)
    if bits is None:
        return (srgb_encode(hwc) if curve == "srgb" else hwc.clamp_(0, 1)).numpy()
    return quantise(hwc, bits, curve).numpy()


def _develop_libraw(raw: RawImage, cfg: PipelineConfig, wb: WhiteBalance, notices: list[str]) -> np.ndarray:
    """Sensors rawdev does not demosaic itself go through LibRaw's demosaic, then our tone and output."""
    meta = raw.meta
    check_mode(cfg.highlights)
    g = wb.gains
    lin = render_libraw(meta.path, wb=(g[0], g[1], g[2], g[1]), highlight_mode=_LIBRAW_HIGHLIGHT[cfg.highlights])
    rgb = torch.from_numpy(lin).permute(2, 0, 1)
    ev = cfg.exposure_ev
    if cfg.auto_bright:
        ev += float(np.log2(auto_bright_gain(rgb[:, ::2, ::2] * 2.0**ev)))
    H, W = lin.shape[:2]
    out = np.empty((H, W, 3), dtype={8: np.uint8, 16: np.uint16, None: np.float32}[cfg.output_bits])
    for y0 in range(0, H, cfg.band_rows):
        y1 = min(H, y0 + cfg.band_rows)
        out[y0:y1] = _encode(rgb[:, y0:y1], np.eye(3) * 2.0**ev, cfg.output_bits, cfg.curve)
    return out


def develop_raw(raw: RawImage, cfg: PipelineConfig = PipelineConfig()) -> DevelopResult:
    """Develop a decoded :class:`RawImage` with ``cfg``."""
    meta = raw.meta
    notices: list[str] = []
    if meta.num_colors < 3:
        from .errors import UnsupportedFileError

        raise UnsupportedFileError(f"{meta.num_colors}-colour sensor data (monochrome or damaged header); rawdev develops colour RAWs only", meta.path)
    spec = registry.get(cfg.backend)
    if meta.cfa.kind == "linear" or raw.colors is None:
        wb = choose_gains(cfg.wb if cfg.wb != "auto" else "camera", camera=meta.camera_wb, daylight=meta.daylight_wb)
        lo = min(wb.gains)
        wb = replace(wb, gains=tuple(x / lo for x in wb.gains))
        if meta.cfa.kind == "linear":
            notices.append("linear (already demosaiced) DNG: demosaicking skipped")
        else:
            notices.append(f"{meta.num_colors}-colour CFA ({meta.cfa.color_desc}): demosaicked by LibRaw (AHD)")
        if wb.notice:
            notices.append(wb.notice)
        img = _develop_libraw(raw, cfg, wb, notices)
        backend, sigma = "libraw-ahd", None
    else:
        wb = _wb_for(raw, cfg.wb)
        if wb.notice:
            notices.append(wb.notice)
        if meta.cfa.kind not in spec.cfa_types:
            notices.append(f"{meta.cfa.kind} sensor: back-end {spec.name!r} handles {', '.join(sorted(spec.cfa_types))} only; demosaicked by LibRaw (AHD)")
            img = _develop_libraw(raw, cfg, wb, notices)
            backend, sigma = "libraw-ahd", None
        elif spec.output_domain == "srgb_display":
            img, sigma = _develop_isp(raw, cfg, spec, wb, notices)
            backend = spec.name
        else:
            img, sigma = _develop_cfa(raw, cfg, spec, wb, notices)
            backend = spec.name
    orientation = meta.orientation if cfg.apply_orientation else 1
    if orientation != 1:
        img = apply_orientation(img, orientation)
    return DevelopResult(img, raw, wb, backend, orientation, notices, sigma)


def develop_libraw(raw: RawImage, cfg: PipelineConfig = PipelineConfig()) -> DevelopResult:
    """The reference render: LibRaw's own demosaic (AHD) with rawdev's white balance, LibRaw's colour
    matrix, then rawdev's exposure, curve and orientation (``cfg.backend`` is ignored)."""
    notices: list[str] = []
    wb = _wb_for(raw, cfg.wb) if raw.colors is not None else choose_gains("camera", camera=raw.meta.camera_wb,
                                                                             daylight=raw.meta.daylight_wb)
    if wb.notice:
        notices.append(wb.notice)
    img = _develop_libraw(raw, cfg, wb, notices)
    orientation = raw.meta.orientation if cfg.apply_orientation else 1
    if orientation != 1:
        img = apply_orientation(img, orientation)
    return DevelopResult(img, raw, wb, "libraw-ahd", orientation, notices, None)


def develop(path: str | Path, cfg: PipelineConfig | None = None, **options) -> DevelopResult:
    """Decode and develop the RAW file at ``path``. ``options`` override fields of ``cfg``."""
    cfg = replace(cfg or PipelineConfig(), **options)
    return develop_raw(read_raw(path), cfg)


def develop_to_file(src: str | Path, dst: str | Path, cfg: PipelineConfig | None = None, *, quality: int = 92,
                    overwrite: bool = False, on_notice=None) -> DevelopResult:
    """Develop ``src`` and write it to ``dst`` (format from the suffix) atomically, EXIF and ICC included.

    Refuses to write over the input, and over an existing output unless ``overwrite``. ``on_notice``
    is called with each notice (a str) before the file is written.

    Raises:
        OutputError / OutputExistsError: the output path is the input, or exists.
        UsageError: 16 bits asked of a JPEG. Any error of :func:`develop` or the writer.
    """
    from .errors import OutputError, OutputExistsError, UsageError
    from .io.write import format_for, write_image

    src, dst = Path(src), Path(dst)
    cfg = cfg or PipelineConfig()
    if src.exists() and dst.resolve() == src.resolve():
        raise OutputError("output path is the input file; refusing to overwrite a RAW", dst)
    fmt = format_for(dst)
    if dst.exists() and not overwrite:
        raise OutputExistsError("output exists (use --overwrite to replace it)", dst)
    if fmt == "jpeg" and cfg.output_bits == 16:
        raise UsageError("JPEG is 8-bit; use --bits 8 or a .png/.tif output", dst)
    res = develop(src, cfg)
    for n in res.notices:
        if on_notice is not None:
            on_notice(n)
    write_image(dst, res.image, exif=res.raw.meta.exif, quality=quality, overwrite=overwrite)
    return res
