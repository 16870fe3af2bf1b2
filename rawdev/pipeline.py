"""The developer: decode -> normalise -> white balance -> highlights -> demosaic (back-end) -> colour
-> exposure -> tone -> quantise -> orientation.

Work is streamed in bands of the *output's* rows: each band is cut from the mosaic (rows, or
columns when the orientation turns the picture by 90 degrees), normalised, white-balanced and
demosaicked with a margin of real neighbouring samples (the back-end's declared receptive field),
turned to the output orientation and handed on, so that the developer's peak memory is set by the
band, not the image, and a writer can take the bands one by one (:func:`develop_to_file`). The
result equals a whole-image run for back-ends that declare ``tile_exact``. Back-ends that are not
exact under tiling get the whole mosaic and blend their own tiles (see :mod:`rawdev.tiling`).

The developer's own stages work on numpy arrays; torch is imported only for back-ends whose runner
takes tensors (the spec's ``arrays``), so a develop with a numpy back-end (the default) never pays
for it: the import alone takes longer than LibRaw's whole develop of a 24 MP file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum, auto
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .backends import registry
from .backends.registry import (DEFAULT_BACKEND, HALF_SIZE, LIBRAW, LIBRAW_FALLBACK, LIBRAW_LINEAR, LIBRAW_MONO,
                                BackendSpec)
from .config import PipelineConfig
from .io.raw import check_decoded, read_raw
from .stages.colour import apply_matrix
from .stages.highlights import blend_highlights, check_mode
from .stages.noise import NoiseModel, backend_sigma, choose_noise_model
from .stages.normalise import normalise
from .stages.orientation import apply_orientation, oriented_size, stored_box
from .stages.resize import fit_within, resize_linear, shrink_axis
from .stages.tone import (auto_bright_gain, quantise, quantise_scale, srgb_decode,
                          srgb_decode_unclipped, srgb_encode, srgb_encode_unclipped)
from .stages.white_balance import (LibRawWB, WhiteBalance, apply_gains_mosaic, area_gains, cfa_white_balance,
                                   libraw_white_balance, parse_area)
from .types import CellMap, CFALayout, RawImage

if TYPE_CHECKING:
    import torch

__all__ = ["PipelineConfig", "DevelopResult", "DevelopStream", "DevelopPlan", "Route", "plan_develop", "develop_raw",
           "develop_stream", "develop", "develop_to_file", "keep_runners", "output_dtype"]

# LibRaw's rebuild modes are 3..9 (dcraw -H: low numbers favour white, high ones colour); dcraw's
# manual suggests 5 as the compromise.
_LIBRAW_HIGHLIGHT = {"clip": 0, "unclip": 1, "blend": 2, "reconstruct": 5}
#: Length of the regions a band is made of, along the band: learned back-ends in tiles, classical
#: ones in samples (with the band's rows: about 1 MP or 0.5 MP, whatever the image's size).
_LEARNED_CHUNK_TILES = 4
_CLASSICAL_CHUNK = 2048
#: Output samples per band of a learned back-end (a band's codes are held while it is written).
_LEARNED_BAND_PIXELS = 2 << 20


@dataclass
class DevelopResult:
    """The developed image ``(H, W, 3)`` and what was decided on the way.

    ``image`` is ``None`` in :func:`develop_to_file`'s result: the pixels went to the file band by
    band and were not kept; ``shape`` still tells the output's size.
    """

    image: np.ndarray | None
    raw: RawImage
    wb: WhiteBalance
    backend: str
    orientation: int  # the EXIF orientation that was applied to the pixels (1 = none)
    notices: list[str] = field(default_factory=list)
    noise_sigma: float | None = None
    written_shape: tuple[int, int, int] | None = None  # set by develop_to_file
    noise_model: NoiseModel | None = None  # the model a noise-aware back-end was given, and its source
    requested: str | None = None  # the back-end asked for (``backend`` is the one that ran)

    @property
    def shape(self) -> tuple[int, ...]:
        """The output's shape ``(H, W, 3)``, orientation applied."""
        return self.written_shape or tuple(self.image.shape)


@dataclass
class DevelopStream:
    """A develop under way: every decision is made (and every notice known), the pixels are not.

    ``bands`` yields the output's rows top to bottom, orientation applied, as ``(h, W, 3)`` arrays
    of ``dtype``; it can be consumed once. :meth:`collect` gathers them into a
    :class:`DevelopResult`; :func:`develop_to_file` hands them to the writer one by one.
    """

    raw: RawImage
    wb: WhiteBalance
    backend: str
    orientation: int
    notices: list[str]
    noise_sigma: float | None
    shape: tuple[int, int, int]
    dtype: np.dtype
    bands: Iterator[np.ndarray]
    noise_model: NoiseModel | None = None
    requested: str | None = None  # the back-end asked for (``backend`` is the one that ran)

    def collect(self) -> DevelopResult:
        from .io.write import gather_bands

        out = gather_bands(self.bands, self.shape, self.dtype)
        return DevelopResult(out, self.raw, self.wb, self.backend, self.orientation, self.notices, self.noise_sigma,
                             noise_model=self.noise_model, requested=self.requested)


#: Built back-end runners kept for the life of the process, by (back-end, device, tile); None: build
#: one per file. A batch worker keeps them so that learned weights are read once per worker.
_kept_runners: dict[tuple[str, str, int | None], Callable] | None = None


def keep_runners(enabled: bool = True) -> None:
    """Keep every back-end runner this process builds (weights loaded, networks on their device) and
    hand the same one to later files with the same back-end, device and tile; ``False`` drops them.

    Batch workers call this once: a runner holds no per-image state, so reusing it changes no
    pixel, and loading weights (and moving them to a GPU) once per worker instead of once per file
    is what makes many small files cheap.
    """
    global _kept_runners
    _kept_runners = {} if enabled else None


def _runner(spec, device: torch.device | None, tile: int | None) -> Callable:
    if _kept_runners is None:
        return spec.build(device=str(device), tile=tile)
    key = (spec.name, str(device), tile)
    if key not in _kept_runners:
        _kept_runners[key] = spec.build(device=str(device), tile=tile)
    return _kept_runners[key]


def _output_transform(cfg: PipelineConfig) -> tuple[np.ndarray, str]:
    """The matrix from linear sRGB to the output space's linear values, and the name of the curve
    :func:`_encode` applies (the space's own transfer function, or ``"linear"``)."""
    if cfg.colorspace == "srgb":
        return np.eye(3), cfg.curve
    from .stages.output_space import get_space

    space = get_space(cfg.colorspace)
    return space.matrix_from_srgb(), ("linear" if cfg.curve == "linear" else space.name)


def _round_up(n: int, step: int) -> int:
    return -(-int(n) // step) * step


def output_dtype(bits: int | None) -> np.dtype:
    """The output's sample type: 8 or 16-bit codes, or float32 (32: kept above white; ``None``: in [0, 1])."""
    return np.dtype({8: np.uint8, 16: np.uint16, 32: np.float32, None: np.float32}[bits])


def _float_output(bits: int | None) -> bool:
    """Whether ``bits`` asks for float samples rather than integer codes."""
    return bits is None or bits == 32


def _oriented_bands(height: int, width: int, orientation: int, band: int,
                    region: Callable[[slice, slice], np.ndarray], chunk: int | None = None,
                    workers: int = 1) -> Iterator[np.ndarray]:
    """The output's rows, top to bottom, ``band`` at a time, from ``region(rows, cols)``, which
    develops that part of the (unoriented) image; each band is made ``chunk`` samples at a time
    along its length (default: at once), by up to ``workers`` threads at once (regions are
    independent; ``region`` must be thread-safe and release the GIL to gain from it).

    An output band of rows is a band of the image's rows for orientations 1-4, of its columns for
    5-8 (a quarter turn or a transpose), taken from the far end for 3, 4, 7 and 8; turning the
    developed band with :func:`apply_orientation` gives those output rows exactly.
    """
    transposed = orientation in (5, 6, 7, 8)
    n, length = (width, height) if transposed else (height, width)
    chunk = length if chunk is None else chunk
    starts = list(range(0, n, band))
    if orientation in (3, 4, 7, 8):
        starts.reverse()
    parts = [(slice(s0, min(n, s0 + band)), slice(c0, min(length, c0 + chunk)))
             for s0 in starts for c0 in range(0, length, chunk)]

    def develop(part: slice, along: slice) -> np.ndarray:
        return region(along, part) if transposed else region(part, along)

    if workers > 1:  # at most `workers` regions in flight, taken in order: memory stays bounded
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        def pieces() -> Iterator[np.ndarray]:
            with ThreadPoolExecutor(workers, thread_name_prefix="rawdev-region") as pool:
                pending: deque = deque()
                for p in parts:
                    pending.append(pool.submit(develop, *p))
                    if len(pending) >= workers:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
    else:
        def pieces() -> Iterator[np.ndarray]:
            for p in parts:
                yield develop(*p)

    made = pieces()
    img = None
    for part, along in parts:
        piece = next(made)
        if chunk >= length:
            img = piece
        else:
            if along.start == 0:  # the band is filled in place: no list of pieces and no concatenation
                shape = (length, part.stop - part.start) if transposed else (part.stop - part.start, length)
                img = np.empty(shape + piece.shape[2:], piece.dtype)
            if transposed:
                img[along] = piece
            else:
                img[:, along] = piece
        del piece
        if along.stop < length:
            continue
        if orientation != 1:
            img = apply_orientation(img, orientation)
        yield img
        img = None  # handed on: do not hold it while the next band is made


def _bands_of(img: np.ndarray, orientation: int, band: int) -> Iterator[np.ndarray]:
    """A whole developed image as output bands (orientation applied a band at a time)."""
    if orientation == 1:
        yield img
        return
    H, W = img.shape[:2]
    yield from _oriented_bands(H, W, orientation, band, lambda rows, cols: img[rows, cols])


def _cfa_for_band(raw: RawImage, top: int, left: int = 0) -> CFALayout:
    """The CFA layout of ``raw.data[top:, left:]``, as runners take it."""
    return raw.meta.cfa.shifted(top, left)


def _binned_camera_rgb(raw: RawImage, gains) -> np.ndarray:
    """The whole white-balanced mosaic, not clipped, as camera RGB with one pixel per CFA block
    (:mod:`rawdev.stages.demosaic.half_size`): ``(3, h, w)`` float32, read a band at a time."""
    h, w, region = _binned_regions(raw, _mosaic_reader(raw, gains, clip=False))
    out = np.empty((3, h, w), np.float32)
    for r0 in range(0, h, 128):
        out[:, r0 : r0 + 128] = region(slice(r0, min(h, r0 + 128)), slice(0, w))
    return out


def _binned_regions(raw: RawImage, read) -> tuple[int, int, Callable[[slice, slice], np.ndarray]]:
    """``(h, w, region)``: the size of the mosaic binned one pixel per CFA block, and
    ``region(rows, cols)``, that part of it as ``(3, rows, cols)`` camera RGB from ``read`` (a
    :func:`_mosaic_reader`)."""
    from .stages.demosaic.half_size import bin_cfa_blocks, block_grid

    b, oy, ox = block_grid(raw.meta.cfa.cell)
    H, W = raw.data.shape

    def region(rows: slice, cols: slice) -> np.ndarray:
        # Regions start on the block grid, where (0, 0) is the grid's offset for that corner's cell.
        top, left = oy + rows.start * b, ox + cols.start * b
        mosaic = read(top, oy + rows.stop * b, left, ox + cols.stop * b)
        return bin_cfa_blocks(mosaic, _cfa_for_band(raw, top, left).cell)

    return (H - oy) // b, (W - ox) // b, region


_WB_SOURCE = {"camera": "as shot", "preview": "fitted to the embedded preview", "auto": "grey-edge (automatic)",
              "daylight": "daylight multipliers", "custom": "user multipliers", "temperature": "a colour temperature",
              "monochrome": "none (monochrome)", "area": "the neutral area given (--wb area)"}
_NOISE_SOURCE = {"--noise": "--noise", "profile": "the DNG NoiseProfile", "estimate": "the data (no NoiseProfile)"}


class Route(Enum):
    """How a file is developed, chosen from the back-end's spec and the sensor."""

    #: LibRaw renders the file (its own pipeline asked for, or a sensor the back-end cannot take),
    #: then rawdev's exposure, curve and output space.
    LIBRAW = auto()
    #: An end-to-end ISP (``output_domain="srgb_display"``): white-balanced mosaic in, display sRGB out.
    DISPLAY = auto()
    #: A demosaicking back-end, streamed in bands, then rawdev's colour, exposure and tone.
    DEMOSAIC = auto()
    #: ``--half-size``: CFA blocks binned into pixels instead of a back-end, then as DEMOSAIC, in bands.
    HALF = auto()


@dataclass(frozen=True)
class DevelopPlan:
    """Every decision of one file's develop, made once (:func:`plan_develop`) before any pixel.

    ``spec`` is the back-end asked for and ``backend`` the one that runs (``spec.name``, or LibRaw's
    fallback for a sensor the back-end cannot take); ``wb`` the gains (for LibRaw-rendered sensors
    ``libraw_wb`` says how LibRaw is asked); ``matrix`` camera RGB -> linear sRGB (None: the file
    has none); ``exposure_ev`` the exposure, auto-brightening included where it is measured on the
    mosaic (LibRaw renders measure it on the render); ``noise_model`` the model a noise-aware
    back-end is told about, as ``sigma`` (its input domain, one value; for an ISP, the figure its
    jdd-noise start is told) and, for an ISP, ``noise_coefficients`` (shot, read); ``device`` and ``runner`` the built back-end; ``to_space`` / ``curve``
    the output transform; ``dtype`` the output's samples.
    """

    route: Route
    spec: BackendSpec
    backend: str
    orientation: int
    wb: WhiteBalance
    notices: tuple[str, ...]
    to_space: np.ndarray
    curve: str
    dtype: np.dtype
    exposure_ev: float
    libraw_wb: LibRawWB | None = None
    matrix: np.ndarray | None = None
    noise_model: NoiseModel | None = None
    sigma: float | None = None
    noise_coefficients: tuple[float, float] | None = None
    device: torch.device | None = None  # None: a numpy runner, on the CPU
    runner: Callable | None = None
    denoise_sigma: float | None = None  # the noise reduction stage's figure (None: it does not run)
    highlight_chroma: np.ndarray | None = None  # --highlights reconstruct: stages.highlights.opposed_chroma


def _noise_sigma(raw: RawImage, cfg: PipelineConfig, spec, gains, notices: list[str]) -> tuple[float | None, NoiseModel | None]:
    """Noise level for noise-aware back-ends, in the back-end's input domain, and the model it came
    from (:func:`rawdev.stages.noise.choose_noise_model`: ``--noise``, else the DNG NoiseProfile,
    else an estimate from the data); the notice says which."""
    if not spec.uses_noise:
        return None, None
    model = choose_noise_model(raw, cfg.noise)
    sigma = backend_sigma(raw, model, gains, encoded=spec.input_domain == "mosaic_srgb_wb")
    notices.append(f"noise model from {_NOISE_SOURCE[model.source]}: {model.describe()}; back-end told sigma {sigma * 255:.2f}/255")
    return sigma, model


def _denoise_figure(raw: RawImage, cfg: PipelineConfig, gains) -> tuple[NoiseModel | None, float]:
    """The noise model and figure (sRGB-encoded RMS std) the noise reduction would work with.

    Without ``--noise`` or a NoiseProfile the model is estimated, first from a quarter of the
    estimator's patches (0.025 s on 24 MP instead of 0.09: the figure within 1 % on the files
    measured): a file clearly below the noise reduction's threshold (most files: low ISO, good
    light) stops there, the others get the full estimate, as ``rawdev info`` shows it.
    """
    from .stages.denoise import MIN_SIGMA
    from .stages.noise import MAX_PATCHES, estimate_noise_model

    if cfg.noise is None and raw.meta.noise_profile is None:
        quick = estimate_noise_model(raw, max_patches=MAX_PATCHES // 4)
        if backend_sigma(raw, quick, gains, encoded=True) < MIN_SIGMA / 2:
            return None, 0.0
    model = choose_noise_model(raw, cfg.noise)
    return model, backend_sigma(raw, model, gains, encoded=True)


def _noise_coefficients(raw: RawImage, cfg: PipelineConfig, gains, notices: list[str]) -> tuple[tuple[float, float], NoiseModel]:
    """(shot, read) variance coefficients on the white-balanced, normalised mosaic, as the green
    channel sees them (x_wb = g x: var_wb = g a x_wb + g^2 b), from the chosen model; ``--noise``
    is a read-noise sigma there."""
    model = choose_noise_model(raw, cfg.noise)
    notices.append(f"noise model from {_NOISE_SOURCE[model.source]}: {model.describe()}")
    if model.source == "--noise":
        return (0.0, float(cfg.noise) ** 2), model
    wb = model.white_balanced(gains)
    return (wb.shot[1], wb.read[1]), model


_LIBRAW_HALF_NOTICE = "--half-size: LibRaw's render halved (each 2x2 block of pixels averaged)"


def _opcode_notices(meta, *, applied: bool) -> list[str]:
    """What became of the lens shading in the DNG's OpcodeList2: applied to the mosaic (rawdev's
    routes), or not by rawdev (LibRaw renders the file). Its other opcodes are not mentioned here:
    LibRaw's decoder applies some of them itself (the MapPolynomial of lossy DNGs, measured on the
    Canon 6D file), so rawdev cannot say they were left out (``rawdev info`` lists them)."""
    if not meta.gain_maps:
        return []
    return [f"lens shading corrected with the DNG's {len(meta.gain_maps)} GainMap opcode(s)" if applied
            else "the DNG's lens shading (GainMap opcodes) is not applied by rawdev: LibRaw renders this file"]


def _matrix_or_notice(meta, notices: list[str]) -> np.ndarray | None:
    """The file's camera RGB -> linear sRGB matrix; None, with a notice, when it has none."""
    if meta.rgb_cam is None:
        notices.append("the file has no colour matrix; camera RGB is taken as sRGB")
    return meta.rgb_cam


def _binned_once(raw: RawImage, wb: WhiteBalance) -> Callable[[], np.ndarray]:
    """:func:`_binned_camera_rgb` of ``raw`` with ``wb``'s gains, made on the first call only (auto
    exposure and highlight reconstruction both measure on it)."""
    import functools

    return functools.cache(lambda: _binned_camera_rgb(raw, wb.gains))


def _highlight_chroma(cfg: PipelineConfig, wb: WhiteBalance, binned: Callable[[], np.ndarray]) -> np.ndarray | None:
    """With ``--highlights reconstruct``, the image-wide correction per colour of the rebuilt
    photosites, measured on the whole mosaic binned one pixel per CFA block; else None."""
    if cfg.highlights != "reconstruct":
        return None
    from .stages.highlights import opposed_chroma

    return opposed_chroma(binned(), wb.gains)


def _exposure(cfg: PipelineConfig, matrix, binned: Callable[[], np.ndarray]) -> float:
    """The exposure in EV: ``--exposure``, plus with ``--auto-bright`` the gain measured on the binned
    mosaic as linear sRGB, clipped at 1.0."""
    ev = cfg.exposure_ev
    if cfg.auto_bright:
        preview = apply_matrix(np.minimum(binned(), 1.0), matrix)
        ev += float(np.log2(auto_bright_gain(preview * 2.0**ev)))
    return ev


def _area_white_balance(raw: RawImage, area: tuple[int, int, int, int], orientation: int) -> WhiteBalance:
    """``--wb area:X,Y,W,H`` on a mosaic: the gains that make the area's mean neutral, from its
    samples (lens shading corrected where the file has a gain map), smallest gain 1."""
    y0, y1, x0, x1 = stored_box(area, raw.data.shape[:2], orientation, "--wb area:")
    values = _mosaic_reader(raw, (1.0, 1.0, 1.0), clip=False)(y0, y1, x0, x1)
    gains = area_gains(values, raw.colors[y0:y1, x0:x1])
    return WhiteBalance(tuple(g / min(gains) for g in gains), "area")


def _libraw_area_white_balance(raw: RawImage, area: tuple[int, int, int, int], orientation: int,
                               highlight_mode: int) -> LibRawWB:
    """``--wb area:X,Y,W,H`` on a sensor LibRaw renders itself (4-colour, linear DNG): its as-shot
    (else daylight) render, then per-channel gains on that linear sRGB render that make the area's
    mean neutral (LibRaw takes no grey box; the render is reused by the develop)."""
    render = registry.get(LIBRAW).build()
    camera = raw.meta.camera_wb is not None
    lin = render(raw.meta.path, wb=None, camera_wb=camera, highlight_mode=highlight_mode)
    y0, y1, x0, x1 = stored_box(area, lin.shape[:2], orientation, "--wb area:")
    post = area_gains(lin[y0:y1, x0:x1], None)
    return LibRawWB(WhiteBalance(post, "area"), camera=camera, post=post, highlight_mode=highlight_mode, render=lin)


def plan_develop(raw: RawImage, cfg: PipelineConfig = PipelineConfig()) -> DevelopPlan:
    """The :class:`DevelopPlan` of ``raw`` under ``cfg`` (:func:`_plan`), its notices led by what
    became of the DNG's OpcodeList2 on the route chosen."""
    plan = _plan(raw, cfg)
    opcodes = _opcode_notices(raw.meta, applied=plan.route is not Route.LIBRAW)
    return replace(plan, notices=(*opcodes, *plan.notices)) if opcodes else plan


def _plan(raw: RawImage, cfg: PipelineConfig) -> DevelopPlan:
    """The :class:`DevelopPlan` of ``raw`` under ``cfg``: the route from the spec (what it consumes
    and produces) and the sensor, the white balance, and for rawdev's own routes the set-up both
    share (device and runner, colour matrix, exposure, noise model).

    Raises:
        UnsupportedFileError: fewer than three colours.
        UsageError: bad options (highlight mode, an output space an ISP cannot give).
        Errors of building the back-end (weights, device).
    """
    meta = raw.meta
    if meta.num_colors == 2:
        from .errors import UnsupportedFileError

        raise UnsupportedFileError("2-colour sensor data (a damaged header); rawdev develops monochrome and colour RAWs",
                                   meta.path)
    spec = registry.get(cfg.backend)
    check_mode(cfg.highlights)
    to_space, curve = _output_transform(cfg)
    common = dict(spec=spec, orientation=cfg.orientation_for(meta.orientation), to_space=to_space,
                  curve=curve, dtype=output_dtype(cfg.output_bits))
    notices: list[str] = []
    if meta.num_colors == 1:  # a monochrome sensor (Leica Monochrom, Pentax K-3 III Monochrome, ...)
        notices.append(f"monochrome sensor: developed as grey by LibRaw (no demosaic, no white balance); "
                       f"back-end {spec.name!r} not used")
        lwb = LibRawWB(WhiteBalance((1.0, 1.0, 1.0), "monochrome"), user_wb=(1.0, 1.0, 1.0, 1.0))
        return DevelopPlan(Route.LIBRAW, backend=LIBRAW_MONO, wb=lwb.wb, libraw_wb=lwb, notices=tuple(notices),
                           exposure_ev=cfg.exposure_ev, **common)
    area = parse_area(cfg.wb) if isinstance(cfg.wb, str) else None
    if raw.rendered_by_libraw:
        lwb = (_libraw_area_white_balance(raw, area, common["orientation"], _LIBRAW_HIGHLIGHT[cfg.highlights])
               if area else libraw_white_balance(raw, cfg.wb, _LIBRAW_HIGHLIGHT[cfg.highlights]))
        if meta.cfa.kind == "linear":
            backend = LIBRAW_LINEAR
            notices.append(f"linear (already demosaiced) DNG: back-end {spec.name!r} not used (nothing to demosaic); "
                           "rendered by LibRaw without demosaicking")
        else:
            backend = LIBRAW_FALLBACK
            notices.append(f"{meta.num_colors}-colour CFA ({meta.cfa.color_desc}): back-end {spec.name!r} cannot "
                           "demosaic it; demosaicked by LibRaw (AHD) instead")
        notices.append("white balance: " + ("LibRaw's automatic estimate" if lwb.auto else _WB_SOURCE[lwb.wb.source])
                       + " (rendered with LibRaw's own settings)")
        if lwb.wb.notice:
            notices.append(lwb.wb.notice)
        if cfg.half_size:
            notices.append(_LIBRAW_HALF_NOTICE)
        return DevelopPlan(Route.LIBRAW, backend=backend, wb=lwb.wb, libraw_wb=lwb, notices=tuple(notices),
                           exposure_ev=cfg.exposure_ev, **common)
    wb = _area_white_balance(raw, area, common["orientation"]) if area else cfa_white_balance(raw, cfg.wb)
    if wb.notice:
        notices.append(wb.notice)
    elif wb.source not in ("camera", "temperature") and not isinstance(cfg.wb, tuple):  # not what was asked
        notices.append(f"white balance: {_WB_SOURCE[wb.source]}")
    if spec.input_domain == "raw_file":  # LibRaw's own pipeline, asked for
        if cfg.half_size:
            notices.append(_LIBRAW_HALF_NOTICE)
        return DevelopPlan(Route.LIBRAW, backend=spec.name, wb=wb, notices=tuple(notices), exposure_ev=cfg.exposure_ev,
                           **common)
    if cfg.half_size:
        if spec.name != DEFAULT_BACKEND:
            notices.append(f"--half-size: back-end {spec.name!r} not used (each CFA block is binned into one pixel; "
                           "nothing is demosaicked)")
        matrix, binned = _matrix_or_notice(meta, notices), _binned_once(raw, wb)
        return DevelopPlan(Route.HALF, backend=HALF_SIZE, wb=wb, notices=tuple(notices), matrix=matrix,
                           exposure_ev=_exposure(cfg, matrix, binned), highlight_chroma=_highlight_chroma(cfg, wb, binned),
                           **common)
    if meta.cfa.kind not in spec.cfa_types:
        notices.append(f"{meta.cfa.kind} sensor: back-end {spec.name!r} handles {', '.join(sorted(spec.cfa_types))} "
                       "only; demosaicked by LibRaw (AHD) instead")
        return DevelopPlan(Route.LIBRAW, backend=LIBRAW_FALLBACK, wb=wb, notices=tuple(notices),
                           exposure_ev=cfg.exposure_ev, **common)
    route = Route.DISPLAY if spec.output_domain == "srgb_display" else Route.DEMOSAIC
    if route is Route.DISPLAY:
        if cfg.highlights != "clip":
            notices.append(f"back-end {spec.name!r} renders highlights itself; --highlights {cfg.highlights} ignored")
        if cfg.colorspace != "srgb":
            from .errors import UsageError

            raise UsageError(f"back-end {spec.name!r} renders display sRGB itself; --colorspace {cfg.colorspace} "
                             f"needs a demosaicking back-end (e.g. {DEFAULT_BACKEND})", meta.path)
    # The set-up both of rawdev's own routes share.
    if spec.arrays == "numpy":
        device = None
    else:
        import torch

        from .tiling import resolve_device

        device = resolve_device(cfg.device) if spec.kind == "learned" else torch.device("cpu")
    runner = _runner(spec, device, cfg.tile)
    matrix = _matrix_or_notice(meta, notices)
    binned = _binned_once(raw, wb)
    ev = _exposure(cfg, matrix, binned)
    coefficients = None
    if route is Route.DISPLAY:
        coefficients, model = _noise_coefficients(raw, cfg, wb.gains, notices)
        # What its jdd-noise start is told: the figure `--backend jdd-noise` gets for this file.
        sigma = backend_sigma(raw, model, wb.gains, encoded=True)
    else:
        sigma, model = _noise_sigma(raw, cfg, spec, wb.gains, notices)
    denoise_sigma = None
    if cfg.denoise == "auto" and spec.kind == "classical" and spec.input_domain == "mosaic_srgb_wb":
        from .stages.denoise import chroma_radius

        nr_model, s = _denoise_figure(raw, cfg, wb.gains)
        if chroma_radius(s):
            denoise_sigma, model = s, nr_model
            notices.append(f"noise reduction for sigma {s * 255:.1f}/255 (noise model from "
                           f"{_NOISE_SOURCE[model.source]}: {model.describe()}); --denoise off to skip it")
    return DevelopPlan(route, backend=spec.name, wb=wb, notices=tuple(notices), exposure_ev=ev, matrix=matrix,
                       noise_model=model, sigma=sigma, noise_coefficients=coefficients, device=device, runner=runner,
                       denoise_sigma=denoise_sigma,
                       highlight_chroma=None if route is Route.DISPLAY else _highlight_chroma(cfg, wb, binned), **common)


def _develop_cfa(raw: RawImage, cfg: PipelineConfig, plan: DevelopPlan,
                 box: tuple[int, int, int, int] | None = None) -> Iterator[np.ndarray]:
    """Demosaicking back-ends (mosaic -> camera RGB), then rawdev's colour, exposure and tone: the
    output bands (:func:`_oriented_bands`); of the mosaic's rows and columns ``box = (y0, y1, x0,
    x1)`` only, when given (each region still reads its real context around it)."""
    meta, spec, runner, device, orientation = raw.meta, plan.spec, plan.runner, plan.device, plan.orientation
    arrays = spec.arrays == "numpy"
    if not arrays:
        import torch
    noise = None if plan.sigma is None else torch.tensor([plan.sigma], dtype=torch.float32)

    H, W = raw.data.shape
    bits = cfg.output_bits
    # Crops start on whole CFA cells, so every crop has the image's pattern; the runner says how
    # much real context a region needs (receptive field plus its own window alignment).
    step = math.lcm(2, meta.cfa.period)
    margin = runner.band_margin(meta.cfa)
    nr = plan.denoise_sigma
    if nr is not None:  # the noise reduction's context, on whole CFA cells
        from .stages.denoise import MARGIN as NR_MARGIN, reduce_noise

        margin += _round_up(NR_MARGIN, step)
    if not runner.exact:
        band = chunk = max(H, W)
    elif spec.kind == "learned":
        # Bands at most one tile high (the runner's tile, 512 on a CPU) and of about
        # _LEARNED_BAND_PIXELS, made four tiles at a time: the runner reads a region's margins as
        # real context, so the only extra work is the network's own margin, and neither a band
        # nor a region grows with the image (wider images get lower bands).
        tile = _round_up(int(getattr(runner, "tile", None) or 512), step)
        length = H if orientation in (5, 6, 7, 8) else W
        band = min(tile, max(4 * step, _LEARNED_BAND_PIXELS // length // step * step))
        chunk = _LEARNED_CHUNK_TILES * tile
    else:
        band = _round_up(max(cfg.band_rows, 8 * margin), step)
        chunk = _round_up(max(_CLASSICAL_CHUNK, margin), step)
    srgb_in = spec.input_domain == "mosaic_srgb_wb"
    # Classical methods take any real value: the unclipped curve keeps negative noise and (with
    # --highlights unclip/blend) values above the clip point. demosaicnet was trained on [0, 1].
    unclipped = spec.kind == "classical"
    encode, decode = (srgb_encode_unclipped, srgb_decode_unclipped) if unclipped else (srgb_encode, srgb_decode)
    read = _plan_reader(raw, cfg, plan, clip=cfg.highlights == "clip" or (srgb_in and not unclipped),
                        curve=encode if srgb_in else None)
    curve = plan.curve
    m_out = _output_matrix(plan)

    def grown(part: slice, n: int) -> tuple[int, int, int, int]:
        """``part`` of an axis of length ``n`` and the same with the margin (clipped to the image)."""
        p0, p1, _ = part.indices(n)
        return p0, p1, max(0, p0 - margin), min(n, p1 + margin)

    def demosaicked(m: np.ndarray, a: int, c: int, inner: tuple[int, int, int, int]) -> np.ndarray:
        """The runner on the band's mosaic: ``(3, h, w)`` float32 in its output domain."""
        if arrays:
            return runner(m[None, None], _cfa_for_band(raw, a, c), region=inner)[0]
        with torch.inference_mode():
            t = torch.from_numpy(m)[None, None].to(device)
            return runner(t, _cfa_for_band(raw, a, c), noise=noise, region=inner)[0].float().cpu().numpy()

    def region(rows: slice, cols: slice) -> np.ndarray:
        y0, y1, a, b = grown(rows, H)
        x0, x1, c, d = grown(cols, W)
        m = read(a, b, c, d)
        if nr is None:
            rgb = demosaicked(m, a, c, (y0 - a, y1 - a, x0 - c, x1 - c))
        else:  # demosaicked with the noise reduction's context, reduced, then cut to the region
            ny0, ny1 = max(0, y0 - a - NR_MARGIN), min(b - a, y1 - a + NR_MARGIN)
            nx0, nx1 = max(0, x0 - c - NR_MARGIN), min(d - c, x1 - c + NR_MARGIN)
            rgb = reduce_noise(demosaicked(m, a, c, (ny0, ny1, nx0, nx1)), nr)
            rgb = rgb[:, y0 - a - ny0 : y1 - a - ny0, x0 - c - nx0 : x1 - c - nx0]
        del m
        if srgb_in:
            rgb = decode(rgb)
        return _encode(_highlighted(rgb, cfg.highlights), m_out, bits, curve)

    # Numpy regions release the GIL (OpenCV, numpy): as many at once as OpenCV has threads (the
    # cores, or a batch worker's share). Torch runners use torch's own threads.
    if arrays:
        import cv2

        workers = max(1, cv2.getNumThreads())
    else:
        workers = 1
    if box is not None:
        y0, y1, x0, x1 = box

        def region_in_box(rows: slice, cols: slice) -> np.ndarray:
            return region(slice(rows.start + y0, rows.stop + y0), slice(cols.start + x0, cols.stop + x0))

        return _oriented_bands(y1 - y0, x1 - x0, orientation, band, region_in_box, chunk, workers)
    return _oriented_bands(H, W, orientation, band, region, chunk, workers)


def _output_matrix(plan: DevelopPlan) -> np.ndarray:
    """White-balanced camera RGB -> the output space, with the exposure folded in (one pass, not two)."""
    return plan.to_space @ (np.eye(3) if plan.matrix is None else np.asarray(plan.matrix)) * 2.0**plan.exposure_ev


def _highlighted(rgb: np.ndarray, mode: str) -> np.ndarray:
    """White-balanced camera RGB above the clip point (1.0) clipped, blended or left (``--highlights``)."""
    if mode == "clip":
        np.minimum(rgb, 1.0, out=rgb)
    elif mode == "blend":
        rgb = blend_highlights(rgb, 1.0)
    return rgb


def _develop_half(raw: RawImage, cfg: PipelineConfig, plan: DevelopPlan) -> tuple[tuple[int, int], Iterator[np.ndarray]]:
    """``--half-size``: the white-balanced mosaic binned into one pixel per CFA block
    (:mod:`rawdev.stages.demosaic.half_size`), then the demosaicking route's colour, exposure,
    highlights and tone: the binned image's ``(height, width)`` and its output bands, made a region
    at a time like the demosaicking route's (a whole 24 MP mosaic as float32 would be 96 MB)."""
    import cv2

    h, w, binned = _binned_regions(raw, _plan_reader(raw, cfg, plan))
    m_out = _output_matrix(plan)

    def region(rows: slice, cols: slice) -> np.ndarray:
        return _encode(_highlighted(binned(rows, cols), cfg.highlights), m_out, cfg.output_bits, plan.curve)

    return (h, w), _oriented_bands(h, w, plan.orientation, cfg.band_rows, region, workers=max(1, cv2.getNumThreads()))


def _develop_isp(raw: RawImage, cfg: PipelineConfig, plan: DevelopPlan) -> np.ndarray:
    """End-to-end learned ISPs: the whole white-balanced mosaic in, display sRGB out (the back-end
    tiles and blends itself); the file's colour matrix and the exposure are handed to it."""
    m_out = (np.eye(3) if plan.matrix is None else np.asarray(plan.matrix)) * 2.0**plan.exposure_ev
    H = raw.data.shape[0]
    import torch

    m = torch.from_numpy(_mosaic_reader(raw, plan.wb.gains, clip=True)(0, H))
    with torch.inference_mode():
        disp = plan.runner(m[None, None], _cfa_for_band(raw, 0), noise=torch.tensor(plan.noise_coefficients),
                           matrix=m_out, start_sigma=plan.sigma)[0].float().cpu()
        del m
        hwc = disp.permute(1, 2, 0)
        if cfg.curve == "linear":
            hwc = srgb_decode(hwc)
        if _float_output(cfg.output_bits):
            return hwc.contiguous().numpy()
        # already encoded: plain rounding to codes, which is quantise's "linear" mode
        return quantise(hwc * quantise_scale(cfg.output_bits, "linear"), cfg.output_bits, "linear").numpy()


def _plan_reader(raw: RawImage, cfg: PipelineConfig, plan: DevelopPlan, *, clip: bool | None = None,
                 curve: Callable | None = None) -> Callable[[int, int, int, int | None], np.ndarray]:
    """The mosaic reader of one of rawdev's own develops: :func:`_mosaic_reader` with the plan's white
    balance, cut at 1.0 if ``clip`` (default: for ``--highlights clip``), encoded with ``curve``; with
    ``--highlights reconstruct``, the clipped photosites are rebuilt first
    (:func:`~rawdev.stages.highlights.reconstruct_mosaic`, on the region and the context it needs)."""
    gains = plan.wb.gains
    clip = cfg.highlights == "clip" if clip is None else clip
    if plan.highlight_chroma is None:
        return _mosaic_reader(raw, gains, clip=clip, curve=curve)
    from .stages.highlights import RECONSTRUCT_CONTEXT as C, reconstruct_mosaic

    linear = _mosaic_reader(raw, gains, clip=False)
    H, W = raw.data.shape

    def read(a: int, b: int, c: int = 0, d: int | None = None) -> np.ndarray:
        d = W if d is None else d
        a2, b2, c2, d2 = max(0, a - C), min(H, b + C), max(0, c - C), min(W, d + C)
        m = reconstruct_mosaic(linear(a2, b2, c2, d2), _cfa_for_band(raw, a2, c2).cell, gains, plan.highlight_chroma)
        m = m[a - a2 : b - a2, c - c2 : d - c2]
        if clip:
            m = np.minimum(m, 1.0)
        return m if curve is None else curve(m).astype(np.float32, copy=False)

    return read


def _mosaic_reader(raw: RawImage, gains, *, clip: bool, curve: Callable | None = None
                   ) -> Callable[[int, int, int, int | None], np.ndarray]:
    """``read(a, b, c, d)``: rows ``a:b`` and columns ``c:d`` of the mosaic, ``(b - a, d - c)`` float32,
    black-subtracted, scaled to the clip point, white-balanced, cut at 1.0 if ``clip`` and encoded
    with ``curve`` (None: left linear): ``(count - black_c) * gain_c / (white - black_c)``.

    For a Bayer mosaic of 16-bit counts whose black level repeats with the 2x2 cell (every camera
    LibRaw decodes), that is one lookup per sample in a table of every count's value at each site
    of the cell (``(2, 2, 65536)``, evaluated in float64), which replaces the passes of the
    normalising, white-balancing and encoding stages; other mosaics go through them.
    """
    meta = raw.meta
    if meta.gain_maps:
        return _shaded_reader(raw, gains, clip=clip, curve=curve)
    if (meta.cfa.kind != "bayer" or raw.data.dtype != np.uint16
            or not all(isinstance(mp, CellMap) and 2 % mp.cell.shape[0] == 0 and 2 % mp.cell.shape[1] == 0
                       for mp in (raw.colors, raw.black_map))):
        def read_stages(a: int, b: int, c: int = 0, d: int | None = None) -> np.ndarray:
            cols = slice(c, d)
            m = normalise(raw.data[a:b, cols], raw.black_map[a:b, cols], meta.white_level)
            m = apply_gains_mosaic(m, raw.colors[a:b, cols], gains)
            if clip:
                np.minimum(m, 1.0, out=m)
            return m if curve is None else curve(m).astype(np.float32, copy=False)

        return read_stages
    counts = np.arange(1 << 16, dtype=np.float64)
    tables = np.empty((2, 2, 1 << 16), np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            black = float(raw.black_map[dy, dx])
            v = (counts - black) * (float(gains[int(raw.colors[dy, dx])]) / max(meta.white_level - black, 1.0))
            if clip:
                np.minimum(v, 1.0, out=v)
            tables[dy, dx] = v if curve is None else curve(v)

    def read(a: int, b: int, c: int = 0, d: int | None = None) -> np.ndarray:
        data = raw.data[a:b, c:d]
        out = np.empty(data.shape, np.float32)
        for dy in (0, 1):
            for dx in (0, 1):
                out[dy::2, dx::2] = tables[(a + dy) % 2, (c + dx) % 2][data[dy::2, dx::2]]
        return out

    return read


def _shaded_reader(raw: RawImage, gains, *, clip: bool, curve: Callable | None):
    """:func:`_mosaic_reader` for a file with lens shading gains (DNG GainMap opcodes,
    :mod:`rawdev.stages.gain_map`): the white-balanced samples times their gains, each at most its
    colour's clip point (the sensor's white times its white-balance gain), then cut and encoded."""
    from .stages.gain_map import region_gains

    plain = _mosaic_reader(replace(raw, meta=replace(raw.meta, gain_maps=())), gains, clip=False)
    white = np.asarray(gains, np.float32)
    shape = raw.data.shape

    def read(a: int, b: int, c: int = 0, d: int | None = None) -> np.ndarray:
        d = shape[1] if d is None else d
        m = plain(a, b, c, d)
        g = region_gains(raw.meta.gain_maps, (a, b), (c, d), shape)
        if g is not None:
            m *= g
            np.minimum(m, white[np.asarray(raw.colors[a:b, c:d])], out=m)
        if clip:
            np.minimum(m, 1.0, out=m)
        return m if curve is None else curve(m).astype(np.float32, copy=False)

    return read


def _encode(rgb: np.ndarray, matrix: np.ndarray, bits: int | None, curve: str, *, planes: bool = True) -> np.ndarray:
    """White-balanced camera RGB, ``(3, h, W)`` planes (``(h, W, 3)`` with ``planes=False``) -> ``(h, W,
    3)`` output codes (or display-encoded floats): the change of layout and the colour matrix (one
    threaded OpenCV pass each), then the curve."""
    import cv2

    scale = 1.0 if _float_output(bits) else quantise_scale(bits, curve)
    shape = (rgb.shape[1], rgb.shape[2], 3) if planes else rgb.shape
    if planes:
        hwc = cv2.merge([np.ascontiguousarray(p, np.float32) for p in rgb])
    else:
        hwc = np.ascontiguousarray(rgb, np.float32)
    # OpenCV reads an (h, W, 3) array as h x W pixels of 3 channels; 1-pixel sides are kept by the reshape
    hwc = cv2.transform(hwc.reshape(shape), (np.asarray(matrix, np.float64) * scale).astype(np.float32)).reshape(shape)
    if bits == 32:  # float TIFF: no codes and no ceiling at white (highlights, exposure beyond 1.0)
        if curve == "linear":
            return np.maximum(hwc, 0.0)
        if curve == "srgb":
            return srgb_encode_unclipped(np.maximum(hwc, 0.0))
        from .stages.output_space import get_space

        return get_space(curve).encode_above_white(hwc)
    if bits is None:
        if curve not in ("srgb", "linear"):
            from .stages.output_space import get_space

            return get_space(curve).encode(hwc).astype(np.float32)
        return srgb_encode(hwc) if curve == "srgb" else np.clip(hwc, 0, 1)
    return quantise(hwc, bits, curve)


def _develop_libraw(raw: RawImage, cfg: PipelineConfig, plan: DevelopPlan) -> np.ndarray:
    """The LibRaw route: LibRaw's render with the plan's white balance (rawdev's gains, or for
    sensors LibRaw renders itself its own settings, :class:`LibRawWB`), then our exposure, tone and
    output (auto-brightening measured on the render)."""
    hl = _LIBRAW_HIGHLIGHT[cfg.highlights]
    render = registry.get(LIBRAW).build()
    wb = plan.libraw_wb or plan.wb
    if isinstance(wb, LibRawWB):
        if wb.render is not None and wb.highlight_mode == hl:
            lin = wb.render  # the preview fit's render, same settings
        else:
            lin = render(raw.meta.path, wb=wb.user_wb, camera_wb=wb.camera, auto_wb=wb.auto, highlight_mode=hl)
        post = np.diag(wb.post)
    else:
        g = wb.gains
        lin = render(raw.meta.path, wb=(g[0], g[1], g[2], g[1]), highlight_mode=hl)
        post = np.eye(3)
    if lin.shape[2] == 1:  # a monochrome sensor's single plane: grey
        lin = np.repeat(lin, 3, axis=2)
    if cfg.half_size:  # halved here, not by LibRaw's half_size: the white balance fit's render is reused
        import cv2

        lin = cv2.resize(lin, (lin.shape[1] // 2, lin.shape[0] // 2), interpolation=cv2.INTER_AREA)
    ev = plan.exposure_ev
    if cfg.auto_bright:
        ev += float(np.log2(auto_bright_gain(lin[::2, ::2].transpose(2, 0, 1) * 2.0**ev)))
    H, W = lin.shape[:2]
    out = np.empty((H, W, 3), dtype=plan.dtype)
    for y0 in range(0, H, cfg.band_rows):
        y1 = min(H, y0 + cfg.band_rows)
        # the preview correction (linear sRGB) first, then the output space
        out[y0:y1] = _encode(lin[y0:y1], np.asarray(plan.to_space) @ post * 2.0**ev, cfg.output_bits, plan.curve,
                             planes=False)
    return out


def _to_output(img: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """Display sRGB floats ``(H, W, 3)`` -> the output's space, curve and codes."""
    if cfg.colorspace != "srgb" or cfg.curve == "linear":
        to_space, curve = _output_transform(cfg)
        lin = srgb_decode(np.ascontiguousarray(img, dtype=np.float32)) @ to_space.T.astype(np.float32)
        if curve == "linear":
            img = np.clip(lin, 0.0, 1.0)
        else:
            from .stages.output_space import get_space

            img = get_space(curve).encode(lin)
    if _float_output(cfg.output_bits):
        return img.astype(np.float32)
    top = (1 << cfg.output_bits) - 1
    return (np.clip(img, 0.0, 1.0) * top + 0.5).astype(output_dtype(cfg.output_bits))


def _lens_corrected(raw: RawImage, linear: np.ndarray, lens: str, notices: list[str]) -> np.ndarray:
    """``linear`` sRGB with the lens corrected (lensfun), or unchanged with a notice why not."""
    from .stages.lens import correct_lens, find_lens

    e = raw.meta.exif
    match, why = find_lens(e.make, e.model, e.lens if lens == "auto" else lens, e.focal_length_mm, e.f_number)
    if match is None:
        notices.append(f"no lens correction: {why}")
        return linear
    notices.append(f"lens corrected for {match.name} at {match.focal_mm:g} mm f/{match.f_number:g} (lensfun)")
    return correct_lens(linear, match)


def _develop_with_look(raw: RawImage, cfg: PipelineConfig) -> DevelopStream:
    """The render whole: linear with the lens corrected (``cfg.lens``), the look fitted on the whole
    (to the embedded preview) or read from a look file, the part kept (``cfg.crop``) made smaller
    (``cfg.size``), as display sRGB, the look applied, then the output's space and codes."""
    from .stages.look import Look, apply_look

    linear = cfg.lens != "off" or cfg.size is not None or cfg.crop is not None
    # made smaller with its light above white (as the plain --size develop), which the encoding clips
    base = develop_stream(raw, replace(cfg, look="neutral", lens="off", size=None, crop=None, colorspace="srgb",
                                       output_bits=32 if cfg.size is not None else None,
                                       curve="linear" if linear else "srgb", denoise=_denoise_for_size(raw, cfg)))
    img = base.collect().image
    notices = base.notices
    if cfg.lens != "off":  # on the whole frame: the lens model is of the whole frame
        img = _lens_corrected(raw, img, cfg.lens, notices)
    look = None
    if cfg.look == "camera":  # fitted on the whole picture, as the preview shows it
        look = _camera_look(raw, srgb_encode(np.asarray(img, np.float32)) if linear else img, base.orientation, notices)
    elif cfg.look != "neutral":
        look = Look.load(cfg.look)
    if cfg.crop is not None:
        y0, y1, x0, x1 = _crop_rows_cols(raw, cfg, img.shape)
        img = np.ascontiguousarray(img[y0:y1, x0:x1])
    if cfg.size is not None:  # in linear light
        img = resize_linear(img, fit_within(img.shape[1], img.shape[0], cfg.size), consume=True)
    if linear:
        img = srgb_encode(np.asarray(img, np.float32))
    if look is not None:
        img = apply_look(img, look)
    out = _to_output(img, cfg)
    return DevelopStream(raw, base.wb, base.backend, base.orientation, notices, base.noise_sigma, out.shape,
                         out.dtype, iter([out]))


def _camera_look(raw: RawImage, img: np.ndarray, orientation: int, notices: list[str]):
    """``--look camera``: the look fitted from the whole display render ``img`` to the embedded
    preview (turned as the output is), or None with a notice saying why not."""
    from .errors import RawdevError
    from .io.preview import preview_image
    from .stages.look import MIN_PREVIEW_SIDE, fit_look

    try:
        prev = preview_image(raw.meta.path)
        if orientation != raw.meta.orientation:  # --no-orient, --orient: the preview turned alike
            from .stages.orientation import INVERSE_ORIENTATION

            prev = apply_orientation(apply_orientation(prev, INVERSE_ORIENTATION[raw.meta.orientation]), orientation)
        if min(prev.shape[:2]) < MIN_PREVIEW_SIDE:
            notices.append(f"the embedded preview ({prev.shape[1]} x {prev.shape[0]}) is too small to fit the "
                           "camera's look; developed neutral")
            return None
        return fit_look(img, prev, source=Path(raw.meta.path).name)
    except RawdevError as e:
        notices.append(f"no camera look ({e.reason.split(';')[0]}); developed neutral")
    except ValueError as e:
        notices.append(f"no camera look: the embedded preview cannot be fitted ({e}); developed neutral")
    return None


def _crop_rows_cols(raw: RawImage, cfg: PipelineConfig, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``cfg.crop`` (x, y, w, h of the upright full-size picture) as ``(y0, y1, x0, x1)`` of a
    developed picture of ``shape``: the same, or scaled to the half-size binning (a half of each
    side; a third for X-Trans), rounded outwards.

    Raises:
        UsageError: the crop is not inside the picture.
    """
    from .errors import UsageError

    h, w = shape[:2]
    scale = 1.0
    if cfg.half_size:
        scale = 1 / 3 if raw.meta.cfa.kind == "xtrans" and not raw.rendered_by_libraw else 1 / 2
    full_w, full_h = round(w / scale), round(h / scale)
    x, y, cw, ch = cfg.crop
    x0, y0 = int(math.floor(x * scale)), int(math.floor(y * scale))
    x1, y1 = min(w, int(math.ceil((x + cw) * scale))), min(h, int(math.ceil((y + ch) * scale)))
    if x + cw > full_w or y + ch > full_h or x1 <= x0 or y1 <= y0:
        raise UsageError(f"--crop {x},{y},{cw},{ch} is not inside the {full_w} x {full_h} picture", raw.meta.path)
    return y0, y1, x0, x1


def _cropped(stream: DevelopStream, raw: RawImage, cfg: PipelineConfig) -> DevelopStream:
    """``stream`` with only ``cfg.crop`` of it kept, band by band (the part's rows of each band that
    holds some)."""
    y0, y1, x0, x1 = _crop_rows_cols(raw, cfg, stream.shape)

    def bands() -> Iterator[np.ndarray]:
        top = 0
        for b in stream.bands:
            a, z = max(y0, top), min(y1, top + b.shape[0])
            if a < z:
                yield b[a - top : z - top, x0:x1]
            top += b.shape[0]
            if top >= y1:
                break

    return replace(stream, shape=(y1 - y0, x1 - x0, stream.shape[2]), bands=bands())


#: ``--size``: an output at most this fraction of the developed picture's side averages 36 or more
#: pixels into each of its own, and the noise with them; the noise reduction then costs more
#: detail than the noise it removes (docs/benchmarks.md, "Smaller outputs").
NO_NOISE_REDUCTION_BELOW = 1 / 6


def _denoise_for_size(raw: RawImage, cfg: PipelineConfig) -> str:
    """``cfg.denoise``, or ``"off"`` where ``cfg.size`` makes the output small enough to average the
    noise away (:data:`NO_NOISE_REDUCTION_BELOW`)."""
    if cfg.size is None or raw.rendered_by_libraw:  # (LibRaw's renders have no mosaic to size, nor rawdev's NR)
        return cfg.denoise
    H, W = raw.data.shape[:2]
    w, h = oriented_size(W, H, cfg.orientation_for(raw.meta.orientation))
    if cfg.crop is not None:  # the part kept is what is made smaller
        w, h = min(w, cfg.crop[2]), min(h, cfg.crop[3])
    return "off" if fit_within(w, h, cfg.size)[0] <= w * NO_NOISE_REDUCTION_BELOW else cfg.denoise


def _develop_resized(raw: RawImage, cfg: PipelineConfig) -> DevelopStream:
    """``--size``: developed as linear floats in the output space (unclipped above white, so
    highlights rebuilt or pushed above it keep their light), made smaller in linear light
    (:mod:`rawdev.stages.resize`), then the output's curve and codes; without the noise reduction
    where the output is small enough (:data:`NO_NOISE_REDUCTION_BELOW`)."""
    base = develop_stream(raw, replace(cfg, size=None, output_bits=32, curve="linear", denoise=_denoise_for_size(raw, cfg)))
    w, h = fit_within(base.shape[1], base.shape[0], cfg.size)
    # each band made narrower as it comes (the filter is separable), then the narrow picture shorter:
    # the full-width picture is never held whole (gathering it cost 0.6 s and 288 MB at 24 MP)
    narrow = np.concatenate([shrink_axis(b, w, axis=1, consume=True) for b in base.bands])
    img = resize_linear(narrow, (w, h), consume=True)
    out = _encode(img, np.eye(3), cfg.output_bits, _output_transform(cfg)[1], planes=False)
    return DevelopStream(raw, base.wb, base.backend, base.orientation, base.notices, base.noise_sigma, out.shape,
                         out.dtype, iter([out]), base.noise_model, base.requested)


def develop_stream(raw: RawImage, cfg: PipelineConfig = PipelineConfig()) -> DevelopStream:
    """Decide how to develop a decoded :class:`RawImage` with ``cfg`` (:func:`plan_develop`); the
    pixels come as the stream's bands are taken (all at once with a look: it is fitted on the whole
    render)."""
    if not cfg.allow_black:
        check_decoded(raw)  # a mosaic with no picture is a decode failure (a damaged file)
    if cfg.look != "neutral" or cfg.lens != "off":
        return _develop_with_look(raw, cfg)
    if cfg.size is not None:
        return _develop_resized(raw, cfg)
    plan = plan_develop(raw, cfg)
    box = None
    if plan.route is Route.DEMOSAIC:
        H, W = raw.data.shape[:2]
        if cfg.crop is not None and plan.runner.exact:
            # only the part's mosaic is developed (a region's result does not depend on how the
            # picture is cut into regions when the runner is exact: the same pixels as the crop
            # of the full develop, for the part's share of the time)
            ow, oh = oriented_size(W, H, plan.orientation)
            y0, y1, x0, x1 = _crop_rows_cols(raw, cfg, (oh, ow))
            box = stored_box((x0, y0, x1 - x0, y1 - y0), (H, W), plan.orientation, "--crop ")
            H, W = box[1] - box[0], box[3] - box[2]
        bands = _develop_cfa(raw, cfg, plan, box)
    elif plan.route is Route.HALF:
        (H, W), bands = _develop_half(raw, cfg, plan)
    else:  # LibRaw's renders have their own size (a linear DNG has no mosaic)
        img = _develop_isp(raw, cfg, plan) if plan.route is Route.DISPLAY else _develop_libraw(raw, cfg, plan)
        H, W = img.shape[:2]
        bands = _bands_of(img, plan.orientation, cfg.band_rows)
    ow, oh = oriented_size(W, H, plan.orientation)
    stream = DevelopStream(raw, plan.wb, plan.backend, plan.orientation, list(plan.notices), plan.sigma, (oh, ow, 3),
                           plan.dtype, bands, plan.noise_model, plan.spec.name)
    return stream if cfg.crop is None or box is not None else _cropped(stream, raw, cfg)


def develop_raw(raw: RawImage, cfg: PipelineConfig = PipelineConfig()) -> DevelopResult:
    """Develop a decoded :class:`RawImage` with ``cfg``."""
    return develop_stream(raw, cfg).collect()


def develop(path: str | Path, cfg: PipelineConfig | None = None, **options) -> DevelopResult:
    """Decode and develop the RAW file at ``path``. ``options`` override fields of ``cfg``."""
    cfg = replace(cfg or PipelineConfig(), **options)
    return develop_raw(read_raw(path), cfg)


def _refuse_flat(bands: Iterator[np.ndarray], path: str | Path) -> Iterator[np.ndarray]:
    """``bands``, passed on one by one; after the last, a picture in which every channel holds one
    value throughout (all black, all white, one flat colour) is refused with a
    :class:`~rawdev.errors.CorruptFileError`, so the writer removes its temporary file and nothing
    appears at the output path.

    The mosaic check (:func:`~rawdev.io.raw.check_decoded`) catches most such files before any work;
    this one covers what it cannot see: LibRaw's own renders (linear DNGs, 4-colour sensors) and data
    that only become flat on the way.
    """
    lo = hi = None
    for b in bands:
        # Reduced over rows first (long contiguous rows), then over the row's pixels: reducing
        # reshape(-1, 3) along its first axis walks 3-wide rows and took 1.4 s at 24 MP, this 0.03 s.
        rows = b.reshape(b.shape[0], -1)
        blo = rows.min(axis=0).reshape(-1, b.shape[-1]).min(axis=0)
        bhi = rows.max(axis=0).reshape(-1, b.shape[-1]).max(axis=0)
        lo = blo if lo is None else np.minimum(lo, blo)
        hi = bhi if hi is None else np.maximum(hi, bhi)
        yield b
        del b, rows
    if lo is not None and np.array_equal(lo, hi):
        from .errors import CorruptFileError

        values = ",".join(f"{v:g}" for v in np.asarray(lo, dtype=np.float64))
        raise CorruptFileError(f"the developed picture is one flat colour ({values}): nothing would show (a damaged "
                               "file, or options such as --exposure that leave no picture); --allow-black writes it "
                               "anyway", path)


def _reporting(bands: Iterator[np.ndarray], total: int, progress: Callable[[int, int], None]) -> Iterator[np.ndarray]:
    """``bands`` unchanged, calling ``progress(rows done, total)`` before the first and after each."""
    done = 0
    progress(0, total)
    for band in bands:
        yield band
        done += band.shape[0]
        progress(done, total)


def develop_to_file(src: str | Path, dst: str | Path, cfg: PipelineConfig | None = None, *, quality: int = 92,
                    overwrite: bool = False, on_notice=None, raw: RawImage | None = None,
                    progress: Callable[[int, int], None] | None = None) -> DevelopResult:
    """Develop ``src`` and write it to ``dst`` (format from the suffix) atomically, EXIF and ICC included.

    Refuses to write over the input, and over an existing output unless ``overwrite``. ``on_notice``
    is called with each notice (a str) before the file is written. The result's ``image`` is
    ``None`` (the pixels are streamed to the file); its ``shape`` is the output's. ``raw``: ``src``
    already decoded (the CLI decodes while torch is still being imported). ``progress`` is called
    with ``(rows done, rows in all)`` of the output as each band is developed.

    Raises:
        OutputError / OutputExistsError: the output path is the input, or exists.
        UsageError: 16 bits asked of a JPEG. Any error of :func:`develop` or the writer.
    """
    from .io.write import check_destination, write_bands

    src, dst = Path(src), Path(dst)
    cfg = cfg or PipelineConfig()
    check_destination(src, dst, cfg.output_bits, overwrite)
    st = develop_stream(read_raw(src) if raw is None else raw, cfg)
    for n in st.notices:
        if on_notice is not None:
            on_notice(n)
    # The writer takes the bands as they are developed, so the finished picture is never held
    # whole (TIFF and PNG; JPEG's encoder needs the whole image).
    def late_notice(n: str) -> None:  # from the writer: metadata that could not be copied
        st.notices.append(n)
        if on_notice is not None:
            on_notice(n)

    from .stages.output_space import get_space

    # A part of a picture (--crop) may well be one flat colour (a clear sky, a black border), and a
    # one-pixel output always is: the check is for whole pictures (the mosaic's own check has run).
    judged = not cfg.allow_black and cfg.crop is None and st.shape[0] * st.shape[1] > 1
    bands = _refuse_flat(st.bands, src) if judged else st.bands
    bands = bands if progress is None else _reporting(bands, st.shape[0], progress)
    write_bands(dst, st.shape, st.dtype, bands, exif=st.raw.meta.exif, source=src, quality=quality,
                icc=get_space(cfg.colorspace).icc(), overwrite=overwrite, on_notice=late_notice)
    return DevelopResult(None, st.raw, st.wb, st.backend, st.orientation, st.notices,
                         st.noise_sigma, written_shape=st.shape, noise_model=st.noise_model, requested=st.requested)
