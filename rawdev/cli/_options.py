"""Shared pieces of the command line: every option that more than one command takes, declared once;
option parsers and validators; and the error-to-exit-code wrapper.

An option used by several commands is one ``Annotated`` alias here, with one help text, and its one
default beside it (``BACKEND``/``DEFAULT_...``); the commands write ``backend: Backend = DEFAULT_BACKEND``.
``tests/test_cli_options.py`` reads the Typer app and holds every command to that. Options of a single
command stay in that command's module.

Every number a user types is checked here, when the command line is parsed, before any work starts:
a value that is not finite or out of range is one line ``rawdev: error: ...`` and exit 2, the same in
``develop`` and ``batch`` (a bad value would otherwise fail every file of a batch, or overflow deep
in the developer).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import threading
import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, List, NoReturn, Optional

import typer

from ..config import PipelineConfig
from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, RawdevError, UsageError

__all__ = ["handle_errors", "parse_wb", "parse_look", "parse_lens", "console_err", "notice", "in_range", "check_max_memory",
           "check_wb", "check_device", "check_bits", "interrupt_on_sigterm", "pipeline_config",
           "MAX_EXPOSURE_EV", "TILE_RANGE", "MIN_WORKER_MEMORY",
           "Fmt", "Highlights", "Curve", "ColourSpace", "Denoise", "DEFAULT_HIGHLIGHTS", "DEFAULT_CURVE", "DEFAULT_COLOURSPACE",
           "DEFAULT_DENOISE", "DenoiseOpt",
           "DEFAULT_DEVICE", "DEFAULT_QUALITY", "DEFAULT_TIMEOUT_S", "PER_COMMAND_DEFAULTS", "PER_COMMAND_MEANING"]

#: Exposure compensation beyond this many stops leaves no picture in 16 bits either way.
MAX_EXPOSURE_EV = 20.0
#: Tile sides for learned back-ends: below 32 the network's margins dominate; above 8192 one tile
#: of a float network's activations is tens of GB.
TILE_RANGE = (32, 8192)
#: The least ``--max-memory`` a batch worker can develop anything with (beyond its start-up
#: footprint): the decoder and the writer need some (a 0.5 MP file takes about 25 MB there).
MIN_WORKER_MEMORY = 16 << 20


def console_err():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def notice(msg: str, path=None, quiet: bool = False) -> None:
    """A one-line notice on stderr (a fallback the user should know about)."""
    if not quiet:
        from ..errors import printable

        where = f"{printable(path)}: " if path else ""
        print(f"rawdev: note: {where}{msg}", file=sys.stderr)


def fail(err: RawdevError) -> NoReturn:
    print(f"rawdev: error: {err.one_line()}", file=sys.stderr)
    raise typer.Exit(err.exit_code)


def interrupt_on_sigterm(signum, frame):  # noqa: ARG001
    """A SIGTERM handler: stop as Ctrl-C stops (KeyboardInterrupt), so cleanup runs."""
    raise KeyboardInterrupt


def handle_errors(fn: Callable) -> Callable:
    """Map rawdev errors to one line on stderr and their exit code; no tracebacks unless
    ``RAWDEV_DEBUG=1``. SIGTERM is handled as Ctrl-C: the output being written is abandoned (its
    temporary file removed) and the exit code is 130 for both."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        old_term = None
        if threading.current_thread() is threading.main_thread():
            old_term = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
        try:
            return fn(*args, **kwargs)
        except RawdevError as e:
            if os.environ.get("RAWDEV_DEBUG"):
                raise
            fail(e)
        except KeyboardInterrupt:
            print("rawdev: interrupted", file=sys.stderr)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except MemoryError:
            print("rawdev: error: out of memory", file=sys.stderr)
            raise typer.Exit(EXIT_FAILED) from None
        finally:
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)

    return wrapper


def _option_name(param) -> str:
    opts = getattr(param, "opts", None) or []
    return max(opts, key=len) if opts else f"--{getattr(param, 'name', 'value')}"


def in_range(lo: float | None = None, hi: float | None = None, *, what: str = "", integer: bool = False) -> Callable:
    """A Typer callback accepting ``None`` or a finite number in ``[lo, hi]`` (``what`` names the
    unit in the message); anything else is one line and exit 2."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value):
        if value is None or ctx.resilient_parsing:
            return value
        ok = math.isfinite(float(value)) and (lo is None or value >= lo) and (hi is None or value <= hi)
        if not ok:
            if lo is not None and hi is not None:
                want = f"a {'whole' if integer else 'finite'} number from {lo:g} to {hi:g}"
            elif lo is not None:
                want = f"a finite number of at least {lo:g}"
            else:
                want = f"a finite number of at most {hi:g}"
            fail(UsageError(f"{_option_name(param)} {value}: use {want}{' ' + what if what else ''}"))
        return value

    return check


def check_max_memory(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
    """``--max-memory``: a size like ``4G`` (at least :data:`MIN_WORKER_MEMORY`) or ``none``."""
    if value is None or ctx.resilient_parsing:
        return value
    from ..batch import parse_memory

    try:
        size = parse_memory(value)
    except UsageError as e:
        fail(e)
    if size is not None and size < MIN_WORKER_MEMORY:
        fail(UsageError(f"--max-memory {value!r}: too small for a worker to develop anything; "
                        f"give at least {MIN_WORKER_MEMORY >> 20}M (or none for no limit)"))
    return value


def parse_wb(value: str) -> str | tuple[float, ...]:
    """``camera|preview|auto|daylight``, a colour temperature (``5500K``), a neutral area of the picture
    (``area:X,Y,W,H``) or ``R,G,B[,G]`` multipliers (finite, positive).

    Raises:
        UsageError: anything else.
    """
    v = value.strip().lower()
    if v in ("camera", "preview", "daylight", "auto"):
        return v
    from ..stages.white_balance import parse_area, parse_temperature

    if parse_area(v) is not None:
        return v

    try:
        if parse_temperature(v) is not None:
            return v
    except UsageError as e:
        raise UsageError(f"--wb {value!r}: {e.reason.split(': ', 1)[-1]}") from None
    try:
        nums = tuple(float(x) for x in v.split(","))
    except ValueError:
        raise UsageError(f"--wb {value!r}: use camera, preview, auto, daylight, a temperature (5500K), a neutral "
                         "area (area:X,Y,W,H) or R,G,B[,G] numbers") from None
    if len(nums) not in (3, 4) or not all(math.isfinite(x) and 0 < x <= 1e6 for x in nums):
        raise UsageError(f"--wb {value!r}: give 3 or 4 positive, finite multipliers")
    return nums


def parse_size(value: str) -> tuple[int, int]:
    """``N`` (a box of N x N pixels) or ``WxH``: the box ``--size`` fits the output within.

    Raises:
        UsageError: anything else, or a side outside 1..65535 pixels.
    """
    parts = value.strip().lower().replace("\u00d7", "x").split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        sides = []
    if len(sides) == 1:
        sides *= 2
    if len(sides) != 2 or not all(1 <= n <= 65535 for n in sides):
        raise UsageError(f"--size {value!r}: give the longest side in pixels (2048) or a box W x H (1920x1080), "
                         "1 to 65535 each")
    return sides[0], sides[1]


def refuse_crop_of_previews(preview: bool, crop: str | None) -> None:
    """``--crop`` names pixels of the developed picture, which ``--preview`` does not make.

    Raises:
        UsageError: both given (rather than a preview written whole, the crop silently dropped).
    """
    if preview and crop is not None:
        raise UsageError("--crop keeps a part of the developed picture; --preview writes the embedded preview "
                         "whole (--size applies to both)")


def checked_when_parsed(parse: Callable[[str], object]) -> Callable:
    """A Typer callback that runs ``parse`` on an option's value as the command line is parsed, so a
    bad value is one line and exit 2 before any work; the value is passed on as given."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
        if value is None or ctx.resilient_parsing:
            return value
        try:
            parse(value)
        except UsageError as e:
            fail(e)
        return value

    return check


def parse_crop(value: str) -> tuple[int, int, int, int]:
    """``X,Y,W,H``: the part of the picture ``--crop`` keeps."""
    from ..config import parse_box

    return parse_box(value.strip(), "--crop")


check_wb = checked_when_parsed(parse_wb)
check_size = checked_when_parsed(parse_size)
check_crop = checked_when_parsed(parse_crop)


def parse_look(value: str) -> str:
    """``neutral|camera`` or the path of a look file (which must exist)."""
    v = value.strip()
    if v.lower() in ("neutral", "camera"):
        return v.lower()
    from pathlib import Path

    if not Path(v).is_file():
        raise typer.BadParameter(f"{value!r}: use neutral, camera or an existing look file (rawdev look fit)")
    return v


def parse_lens(value: str) -> str:
    """``off|auto`` or a lens's name as lensfun spells it (``"Maker Model"``)."""
    v = value.strip()
    if not v:
        raise typer.BadParameter("give off, auto or a lens's \"Maker Model\"")
    return v.lower() if v.lower() in ("off", "auto") else v


def check_bits(ctx: typer.Context, param: typer.CallbackParam, value: int | None):
    """``--bits``: 8, 16 or 32 (float TIFF) (or not given: the format's default)."""
    if value is None or ctx.resilient_parsing or value in (8, 16, 32):
        return value
    fail(UsageError(f"--bits must be 8, 16 or 32 (float, TIFF only), got {value}"))


#: ``--device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (torch-free check; whether CUDA is there is
#: asked where it is used).
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
    """``--device`` checked when the command line is parsed (one line and exit 2)."""
    if value is None or ctx.resilient_parsing:
        return value
    v = value.strip().lower()
    if not _DEVICE.fullmatch(v):
        fail(UsageError(f"--device {value!r}: use auto, cpu, cuda or cuda:N"))
    return v


# -- option choices ---------------------------------------------------------------------------------
class Fmt(str, Enum):
    jpg = "jpg"
    png = "png"
    tif = "tif"
    webp = "webp"


class Highlights(str, Enum):
    clip = "clip"
    unclip = "unclip"
    blend = "blend"
    reconstruct = "reconstruct"


class Curve(str, Enum):
    srgb = "srgb"
    linear = "linear"


class Denoise(str, Enum):
    auto = "auto"
    off = "off"


class ColourSpace(str, Enum):
    srgb = "srgb"
    display_p3 = "display-p3"
    adobe_rgb = "adobe-rgb"
    rec2020 = "rec2020"
    prophoto = "prophoto"


DEFAULT_HIGHLIGHTS = Highlights(PipelineConfig.highlights)
DEFAULT_CURVE = Curve(PipelineConfig.curve)
DEFAULT_DENOISE = Denoise(PipelineConfig.denoise)
DEFAULT_COLOURSPACE = ColourSpace(PipelineConfig.colorspace)


# -- options several commands take: one declaration, one help text, one default --------------------
# Developer settings (develop, batch, compare, demo). Their defaults are PipelineConfig's: a command
# writes ``tile: TileOpt = PipelineConfig.tile``, so the CLI and the API cannot drift apart.
BackendOpt = Annotated[str, typer.Option("--backend", "-b", "--demosaic", help="Demosaicker or learned back-end (see `rawdev backends`).")]
WbOpt = Annotated[str, typer.Option("--wb", callback=check_wb, help="White balance: camera (as shot; else fitted to the embedded preview, else auto, else daylight) | preview | auto (grey-edge) | daylight | a colour temperature, e.g. 3200K (a black body made neutral through the file's colour matrix) | area:X,Y,W,H, a grey or white area of the developed picture (pixels: left, top, width, height) made neutral | R,G,B[,G] multipliers. dcraw -w/-a/-A/-r.")]
HighlightsOpt = Annotated[Highlights, typer.Option("--highlights", "-H", help="clip (white, default) | unclip (raw values) | blend (recover colour) | reconstruct (rebuild clipped channels from the others around them). dcraw -H 0/1/2/3-9.")]
ExposureOpt = Annotated[float, typer.Option("--exposure", "-e", callback=in_range(-MAX_EXPOSURE_EV, MAX_EXPOSURE_EV, what="EV"), help="Exposure compensation in EV (stops), -20..20.")]
AutoBrightOpt = Annotated[bool, typer.Option("--auto-bright", help="Brighten so the 99th percentile reaches white (dcraw's default; off here).")]
CurveOpt = Annotated[Curve, typer.Option("--curve", help="srgb: the IEC 61966-2-1 transfer curve; linear: linear sRGB values (for further processing).")]
ColourSpaceOpt = Annotated[ColourSpace, typer.Option("--colorspace", help="Output colour space; its ICC profile is embedded. PNG/TIFF in a wide space default to 16 bits (8 bits cannot hold sRGB to a level).")]
LookOpt = Annotated[str, typer.Option("--look", help="neutral (default) | camera: the camera's look, fitted to each file's embedded preview | a look file from `rawdev look fit`.")]
LensOpt = Annotated[str, typer.Option("--lens", help="off (default) | auto: correct distortion, vignetting and lateral CA for the file's camera and lens (lensfun) | \"Maker Model\" of the lens.")]
NoOrientOpt = Annotated[bool, typer.Option("--no-orient", help="Keep the sensor orientation (do not rotate pixels).")]
OrientOpt = Annotated[Optional[int], typer.Option("--orient", callback=in_range(1, 8, integer=True), help="Turn developed outputs by this EXIF orientation instead of the file's tag: 1 as stored, 3 180°, 6 90° clockwise, 8 90° counter-clockwise, 2/4/5/7 mirrored (dcraw -t numbers them differently: its 5 is 8 here).", show_default=False)]
SizeOpt = Annotated[Optional[str], typer.Option("--size", callback=check_size, metavar="N|WxH", help="Fit the output within N x N pixels (or a W x H box: 1920x1080), proportions kept, never enlarged; made smaller in linear light (Lanczos-3), without noise reduction when it is a sixth of the picture's side or less (the averaging removes the noise). darktable-cli --width/--height.", show_default=False)]
CropOpt = Annotated[Optional[str], typer.Option("--crop", callback=check_crop, metavar="X,Y,W,H", help="Keep this part of the picture: left, top, width and height in pixels of the upright, full-size picture (as develop writes it without --size or --half-size), before --size. Exactly that part of the full develop (its white balance, exposure and noise model are the whole picture's).", show_default=False)]
HalfSizeOpt = Annotated[bool, typer.Option("--half-size", help="One pixel per CFA block, nothing demosaicked: half of each side (Bayer 2x2 cells; a third for X-Trans 3x3 blocks), several times faster. dcraw -h.")]
TileOpt = Annotated[Optional[int], typer.Option("--tile", callback=in_range(*TILE_RANGE, what="pixels", integer=True), help="Tile size for learned back-ends (memory vs. speed), 32..8192; default per back-end and device.")]
NoiseSigmaOpt = Annotated[Optional[float], typer.Option("--noise", callback=in_range(0.0, 1.0), help="Noise level for noise-aware back-ends (sigma in their input domain, 0..1); default from the file.")]
DenoiseOpt = Annotated[Denoise, typer.Option("--denoise", help="auto (default): the classical back-ends on the sRGB-encoded mosaic (the default one too) reduce noise where the file's noise model says it shows | off.")]
AllowBlackOpt = Annotated[bool, typer.Option("--allow-black", help="Develop a file whose sensor data or picture hold no content (all black, all clipped, one flat value): a real lens-cap frame. Without it such a file is an error, as a damaged file usually is the cause.")]
DeviceOpt = Annotated[str, typer.Option("--device", callback=check_device, help="Where learned back-ends and training run: auto (CUDA if available), cpu, cuda or cuda:N.")]

# Outputs and runs (develop, batch, compare, demo, look fit, info, eval).
DEFAULT_DEVICE = "auto"  # as PipelineConfig.device; for eval and train, which take no PipelineConfig
DEFAULT_QUALITY = 92
DEFAULT_TIMEOUT_S = 600.0
FormatOpt = Annotated[Fmt, typer.Option("--format", "-f", help="Output format (when -o names a folder).")]
BitsOpt = Annotated[Optional[int], typer.Option("--bits", callback=check_bits, help="8 or 16 bits per channel (PNG/TIFF), or 32: float TIFF, values kept above white (with --highlights reconstruct/unclip/blend, --exposure). Default: 16 for TIFF and for PNG in a wide --colorspace, else 8. dcraw -6.")]
QualityOpt = Annotated[int, typer.Option("--quality", "-q", callback=in_range(1, 100, integer=True), help="JPEG quality, 1..100.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (without it an existing output is an error).")]
PreviewOpt = Annotated[bool, typer.Option("--preview", help="Write each file's embedded JPEG preview (orientation applied) instead of developing: fast. dcraw -e.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress, per-file lines or notices; errors are still reported.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", callback=in_range(0.0, None, what="seconds"), help="Seconds one develop (a file; in compare, one back-end on one file) may take before its worker is stopped and it fails (0: no limit).")]
MaxMemoryOpt = Annotated[str, typer.Option("--max-memory", callback=check_max_memory, help="Memory one worker may map for one develop, e.g. 4G or 1500M (beyond its ~0.6 GB start-up footprint); a develop needing more fails alone. 'none': no limit.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", callback=in_range(1, 1024, integer=True), help="CPU threads per process (batch: per worker, default cores // jobs; training: torch's, default torch's own).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout instead of text (batch, info: one object per file; the summary goes to stderr).")]
BackendsOpt = Annotated[str, typer.Option("--backends", "-b", help="Comma-separated back-ends (see `rawdev backends`); 'libraw' is LibRaw's own pipeline.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", callback=in_range(1, None, integer=True), help="Only the first N images (of each folder).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (noise draws, sampling): the same seed gives the same run.")]

# Training and compression (train jdd|pynet|pynet-ca|cameranet, compress distill|export|int8). The
# recipe knobs in PER_COMMAND_DEFAULTS default to each recipe's own value.
DataOpt = Annotated[List[Path], typer.Option("--data", help="Photo folder, photo file or .npz patch pack (its train split is used); repeat for more.")]
WeightsOutOpt = Annotated[Path, typer.Option("--out", help="Safetensors file to write.")]
RunDirOpt = Annotated[Path, typer.Option("--run-dir", help="The run's folder: checkpoints and log.jsonl.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Total optimisation steps (a resumed run counts from its start).")]
BatchOpt = Annotated[int, typer.Option("--batch", help="Patches per step (int8: per calibration batch).")]
PatchOpt = Annotated[int, typer.Option("--patch", help="Patch side in pixels (jdd, distil, int8: even, >= 64, jdd's output is patch - 62; the ISPs: a multiple of 32).")]
LrOpt = Annotated[float, typer.Option("--lr", help="Adam learning rate (cosine decay; the ISPs: per stage).")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Linear warm-up steps.")]
LossOpt = Annotated[str, typer.Option("--loss", help="l2 (Gharbi2016) or l1 distance to the target; compress distill also takes log-l2, the mean of ln(per-sample MSE): an equal weight per decibel.")]
SigmaMaxOpt = Annotated[float, typer.Option("--sigma-max", help="Largest noise std of the synthetic noisy mosaics, on the 0-255 scale.")]
PCleanOpt = Annotated[float, typer.Option("--p-clean", help="Fraction of noise-free samples.")]
IspTeacherOpt = Annotated[Optional[str], typer.Option("--teacher", help="A trained learned ISP whose output is the target (distillation; e.g. cameranet for cameranet-fast); '' or unset: the photo.")]
ColourAugOpt = Annotated[float, typer.Option("--colour-aug", help="Fraction of samples with random channel order and saturation gain.")]
HeteroOpt = Annotated[float, typer.Option("--hetero", help="Fraction of samples with shot+read noise instead of Gaussian.")]
ClipOpt = Annotated[float, typer.Option("--clip", help="Fraction of samples whose noisy mosaic is clipped to [0, 1].")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in RUN_DIR from its checkpoint, exactly.")]
CheckpointEveryOpt = Annotated[int, typer.Option("--checkpoint-every", help="Save a checkpoint every N steps.")]
LogEveryOpt = Annotated[int, typer.Option("--log-every", help="Write a log record every N steps.")]
ValEveryOpt = Annotated[int, typer.Option("--val-every", help="Validate every N steps (0: start and end only).")]
TimeLimitOpt = Annotated[Optional[float], typer.Option("--time-limit", help="Stop cleanly after this many seconds (continue with --resume).")]
IspWidthOpt = Annotated[int, typer.Option("--width", help="First-level width (papers: 32).")]
IspKernelsOpt = Annotated[str, typer.Option("--kernels", help="PyNET: full (3/5/7/9), dilated (3x3 dilated) or cap5.")]
IspPNoiseOpt = Annotated[float, typer.Option("--p-noise", help="Fraction of samples with shot+read noise.")]
IspStageStepsOpt = Annotated[Optional[List[str]], typer.Option("--stage-steps", help="LEVEL=STEPS, repeatable; when given, only these stages run (PyNET levels 5..0; CameraNet 1 = Restore alone, 0 = joint).")]
IspInstanceNormOpt = Annotated[bool, typer.Option("--instance-norm/--no-instance-norm", help="PyNET(-CA): the papers' instance normalisation (statistics shared across tiles at inference).")]
BaseOpt = Annotated[Optional[str], typer.Option("--base", help="Fixed demosaic the network refines: for train's ISPs jdd-noise, jdd-fast-int8, menon-srgb, menon or bilinear (see rawdev.models.isp_frame); for compress distill's students malvar or menon. Default: the recipe's (menon for ISPs, jdd-fast-int8 for cameranet-fast, malvar for students).", show_default=False)]
InitOpt = Annotated[Optional[Path], typer.Option("--init", help="Start from earlier weights: for train, a file that command wrote; for compress distill, an earlier run folder (same widths).")]

#: Options several commands take whose default is each command's own: the recipe knobs of training
#: (each network's recipe has its own steps, batch, learning rate, output, run folder, ...) and the
#: back-end lists (compare shows the fast ones; eval roundtrip scores the learned ones too).
PER_COMMAND_DEFAULTS = frozenset({
    "--out", "--run-dir", "--steps", "--batch", "--lr", "--warmup", "--checkpoint-every", "--log-every",
    "--val-every", "--width", "--backends", "--base", "--teacher",
})
#: Option names that mean different things in different commands, each declared in its command:
#: renaming them would break users' scripts.
PER_COMMAND_MEANING = {
    "--output": "develop: a file or a folder; batch: the required output folder; compare: the sheets' folder; look fit: the look file",
    "--noise": "develop/batch: the noise sigma given to noise-aware back-ends; eval demosaic: the sigma added on the 0-255 scale; eval roundtrip: clean/noisy sets",
    "--json": "a flag (print JSON) everywhere but eval roundtrip, where it names the file the scores are written to",
    "--width": "train: the networks' first-level width (an integer); compress export: the once-for-all width multiplier",
    "--init": "train jdd: 'pretrained', 'none' or a weights file; the ISPs: a weights file this command wrote",
}


def pipeline_config(*, backend: str, wb: str, highlights: Highlights, exposure: float, auto_bright: bool,
                    no_orient: bool, device: str, tile: int | None, bits: int | None = 8,
                    curve: Curve | None = None, colorspace: ColourSpace | None = None, look: str | None = None,
                    lens: str | None = None, noise: float | None = None, allow_black: bool | None = None,
                    denoise: Denoise | None = None, half_size: bool | None = None, orient: int | None = None,
                    size: str | None = None, crop: str | None = None):
    """The :class:`~rawdev.config.PipelineConfig` that the developer options of develop, batch and
    compare describe (values as parsed; ``bits``: the output's, ``None`` for float). An option a
    command does not take (``None``) keeps the config's default.

    Raises:
        UsageError: a white balance that does not parse (exit 2).
        typer.BadParameter: a look or lens that does not (exit 2).
    """
    if orient is not None and no_orient:
        raise UsageError("--orient and --no-orient both say how to turn the output; give one")
    optional = {"curve": None if curve is None else Curve(curve).value,
                "colorspace": None if colorspace is None else ColourSpace(colorspace).value,
                "look": None if look is None else parse_look(look),
                "lens": None if lens is None else parse_lens(lens),
                "noise": noise, "allow_black": allow_black, "half_size": half_size, "orientation": orient,
                "size": None if size is None else parse_size(size),
                "crop": None if crop is None else parse_crop(crop),
                "denoise": None if denoise is None else Denoise(denoise).value}
    return PipelineConfig(
        backend=backend, wb=parse_wb(wb), highlights=Highlights(highlights).value, exposure_ev=exposure,
        auto_bright=auto_bright, apply_orientation=not no_orient, output_bits=bits, device=device, tile=tile,
        **{k: v for k, v in optional.items() if v is not None},
    )
