"""Compress ``jdd-noise`` into a small student (GAN Compression's distillation, GAN Slimming's gates).

Teacher: the ``jdd-noise`` back-end exactly as the pipeline runs it on a window (the fine-tuned
Gharbi2016 network, faded into the released noise-free one below sigma 2/255), frozen.

Student: :class:`rawdev.models.li2020.StudentJDD`, trained from scratch on the teacher's outputs
(Li2020 Sec. 3.1: the student learns to reproduce the teacher, not the ground truth; the teacher was
itself distilled from a network trained on 2.6 M mined patches, more than we have).

Data, per sample (the synthesis of :mod:`rawdev.train.jdd`, the same noise-aware inputs):

1. a random ``patch`` x ``patch`` crop of a training photo with one of the 8 symmetries of the square,
   and with probability ``colour_aug`` a random channel order and saturation gain
   (:func:`~.data.colour_augment`: our photos hold few of the saturated colours that benchmark sets
   such as McMaster are full of, and where a Menon base errs most);
2. its GRBG mosaic (sRGB-encoded, white-balanced: the teacher's domain);
3. ``sigma`` = 0 with probability ``p_clean``, else U(0, ``sigma_max``); Gaussian noise of that std,
   or with probability ``hetero_prob`` shot + read noise of the same encoded RMS std
   (:func:`~.synthesis.srgb_equivalent_noise`); with probability ``clip_prob`` clipped to [0, 1];
4. the teacher's output on that noisy mosaic (the ``patch - 62`` centre) is the target; the student
   gets the centre crop of the same noisy mosaic that its smaller border needs (the offset
   ``31 - b`` is even, so the crop keeps the GRBG phase).

Once-for-all (Li2020 Sec. 3.2): with ``ofa_widths`` every step trains the largest, the smallest and
one random width multiplier on the same batch (the "sandwich rule"), so every sub-network is usable.
Slimming (Wang2020 Sec. 3.1): with ``slim_l1 > 0`` the student has per-channel gates and the loss adds
``slim_l1 * sum |gamma|``; :meth:`~rawdev.models.li2020.StudentJDD.prune` cuts the channels after.

References:
    Li2020: M. Li et al. "GAN Compression: Efficient Architectures for Interactive Conditional GANs".
    CVPR 2020.
    Wang2020: H. Wang et al. "GAN Slimming: All-in-One GAN Compression by a Unified Optimization
    Framework". ECCV 2020.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..backends.registry import STUDENT_BASES
from ..cfa import bayer_masks, mosaic
from ..errors import UsageError, WeightsError
from .data import PhotoPool, colour_augment, load_sources, training_pool, validation_sources
from .jdd import NATIVE_PATTERN, make_val_fn, noisy_mosaic
from .loop import TrainConfig, TrainResult, load_checkpoint, resolve_device, train
from .synthesis import sample_sigmas

__all__ = [
    "CompressRecipe",
    "TEACHER_BORDER",
    "build_student",
    "build_teacher",
    "make_distill_batch",
    "distill_loss",
    "export_student",
    "init_student",
    "read_student",
    "student_from_checkpoint",
    "train_student",
]

log = logging.getLogger(__name__)

#: Distillation losses: L2 and L1 to the teacher over the whole batch, or "log-l2", the mean over
#: samples of ln(per-sample MSE + 1e-6) (:func:`distill_loss`).
LOSSES = ("l2", "l1", "log-l2")
TEACHER_BORDER = 31  # pixels per side lost by the teacher (Gharbi2016's valid-conv Bayer network)
FORMAT = "rawdev StudentJDD state dict, fp32 (widths/post_width/noise_input in the metadata)"


@dataclass
class CompressRecipe:
    """Student shape and the distillation data (see the module docstring)."""

    widths: tuple[int, ...] = (48,) * 7
    post_width: int = 16
    base: str = STUDENT_BASES[0]  # the classical demosaic the student corrects
    base_input: bool = False  # its post layer also sees the base image
    ofa_widths: tuple[float, ...] = ()  # e.g. (0.5, 0.75, 1.0): once-for-all multipliers; () trains one width
    slim_l1: float = 0.0  # GAN Slimming's L1 weight on the gates; 0: no gates
    patch: int = 128
    batch: int = 8
    sigma_max: float = 20 / 255
    p_clean: float = 0.2
    hetero_prob: float = 0.0
    clip_prob: float = 0.5
    colour_aug: float = 0.0  # probability of data.colour_augment per sample
    loss: str = "l2"
    val_sigmas: tuple[float, ...] = (0.0, 10 / 255)
    widths_meta: dict = field(default_factory=dict)  # filled by train_student, for the checkpoint

    def validate(self) -> None:
        if not self.widths or min(self.widths) < 1 or self.post_width < 1:
            raise UsageError(f"student widths must be >= 1, got {self.widths} / {self.post_width}")
        border = 2 * len(self.widths) + 1
        if border > TEACHER_BORDER:
            raise UsageError(f"a student of depth {len(self.widths)} sees more than the teacher (depth <= 15)")
        if self.patch % 2 or self.patch < 2 * TEACHER_BORDER + 2:
            raise UsageError(f"patch must be even and >= {2 * TEACHER_BORDER + 2}, got {self.patch}")
        if self.batch < 1:
            raise UsageError(f"batch must be >= 1, got {self.batch}")
        if any(not 0 < w <= 1 for w in self.ofa_widths):
            raise UsageError(f"once-for-all width multipliers must lie in (0, 1], got {self.ofa_widths}")
        if self.slim_l1 < 0:
            raise UsageError(f"slim_l1 must be >= 0, got {self.slim_l1}")
        from ..models.li2020 import check_base

        try:
            check_base(self.base, len(self.widths), self.base_input)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if self.loss not in LOSSES:
            raise UsageError(f"unknown loss {self.loss!r}; expected {', '.join(LOSSES)}")
        for name in ("p_clean", "hetero_prob", "clip_prob", "colour_aug"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UsageError(f"{name} must lie in [0, 1], got {v}")


def build_student(recipe: CompressRecipe) -> torch.nn.Module:
    """A freshly initialised student of the recipe's shape (gates when ``slim_l1 > 0``)."""
    from ..models.li2020 import StudentJDD

    net = StudentJDD(recipe.widths, recipe.post_width, noise_input=True, gates=recipe.slim_l1 > 0, base=recipe.base,
                     base_input=recipe.base_input)
    # channels-last: oneDNN's CPU convolutions (and their backward) run in NHWC without reorders.
    return net.to(memory_format=torch.channels_last)


def build_teacher(device: torch.device | str = "cpu"):
    """``(mosaic3 (N,3,H,W), sigma (N,)) -> (N,3,H-62,W-62)``: the ``jdd-noise`` back-end's network pair
    exactly as its runner computes one window (fade included), frozen, fp32.

    Raises:
        WeightsError: the jdd-noise weights are missing or damaged.
    """
    from ..backends.learned import _build_jdd

    runner = _build_jdd(True, device=str(device), dtype=torch.float32)

    def teach(m3: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = runner.core._noise_aware(m3.contiguous(memory_format=torch.channels_last), sigma)
        return out.float().clamp(0.0, 1.0)

    teach.backend = runner.spec.name  # what the run's record names as its teacher
    return teach


def make_distill_batch(
    pool: PhotoPool,
    recipe: CompressRecipe,
    generator: torch.Generator,
    teacher,
    student_border: int,
) -> dict:
    """One batch: ``mosaic3`` (student input), ``sigma``, ``target`` (teacher output), ``widths``
    (the once-for-all multipliers this step trains, largest first)."""
    b, p = recipe.batch, recipe.patch
    dev = pool.device
    rgb = pool.sample(b, p, generator=generator)
    if recipe.colour_aug > 0:
        rgb = colour_augment(rgb, generator=generator, p=recipe.colour_aug)
    sigma = sample_sigmas(b, sigma_max=recipe.sigma_max, p_zero=recipe.p_clean, generator=generator, device=dev)
    clean = mosaic(rgb, NATIVE_PATTERN)
    noisy = noisy_mosaic(clean, sigma, hetero_prob=recipe.hetero_prob, clip_prob=recipe.clip_prob, generator=generator)
    m3 = noisy * bayer_masks(NATIVE_PATTERN, p, p, device=dev, dtype=noisy.dtype)
    target = teacher(m3, sigma)
    off = TEACHER_BORDER - student_border  # even: 31 - (2 d + 1)
    student_in = m3[..., off : p - off, off : p - off].contiguous(memory_format=torch.channels_last)
    widths: list[float] = []
    if recipe.ofa_widths:
        ws = sorted(set(recipe.ofa_widths), reverse=True)
        widths = [ws[0]] if len(ws) == 1 else [ws[0], ws[-1]]
        middle = ws[1:-1]
        if middle:
            widths.append(middle[int(torch.randint(len(middle), (1,), generator=generator, device=dev))])
    return {"mosaic3": student_in, "sigma": sigma, "target": target, "widths": widths,
            "rgb": rgb[..., TEACHER_BORDER:p - TEACHER_BORDER, TEACHER_BORDER:p - TEACHER_BORDER]}


def distill_loss(kind: str = "l2", slim_l1: float = 0.0):
    """``(student, batch) -> loss``: mean over the step's widths of the distance to the teacher, plus
    ``slim_l1 * sum |gamma|`` (Wang2020 Eq. 4; the gates' mean absolute value keeps the scale
    independent of the width).

    ``kind``: "l2" or "l1" over the batch, or "log-l2": the mean over samples of ln(MSE_i + 1e-6),
    every sample weighted by the inverse of its own error (the gradient of ln MSE is grad MSE / MSE),
    i.e. an equal weight per decibel. With plain L2 the noisy samples' errors, 10-100x larger than
    the clean ones', decide the gradient: a student on Menon2007 trained that way stayed at Menon's
    clean PSNR (35.0 dB on the validation tiles for 3,000 steps) while its sigma-10 PSNR rose 2 dB.
    """

    def distance(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = out.float() - target
        if kind == "l1":
            return diff.abs().mean()
        if kind == "log-l2":
            return torch.log(diff.square().mean(dim=(1, 2, 3)) + 1e-6).mean()
        return diff.square().mean()

    def compute(model: torch.nn.Module, batch: dict) -> torch.Tensor:
        widths = batch["widths"] or [None]
        total = 0.0
        for w in widths:
            total = total + distance(model(batch["mosaic3"], batch["sigma"], width=w), batch["target"])
        loss = total / len(widths)
        if slim_l1 > 0:
            n = sum(g.numel() for g in model.gates)
            loss = loss + slim_l1 * model.gate_l1() / n
        return loss

    return compute


class _AtWidth(torch.nn.Module):
    """The student run at one once-for-all width, with the ``(mosaic3, noise)`` signature of the
    validation function."""

    def __init__(self, net: torch.nn.Module, width: float | None) -> None:
        super().__init__()
        self.net, self.width = net, width

    def forward(self, mosaic3, noise=None):
        return self.net(mosaic3, noise, width=self.width)


def export_student(student: torch.nn.Module, path: str | Path, metadata: dict | None = None) -> Path:
    """Write a plain student's fp32 state dict as safetensors, its shape in the metadata."""
    from safetensors.torch import save_file

    if getattr(student, "gates", None) is not None:
        raise UsageError("export a plain student: cut it with subnet() or prune() first")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "widths": list(student.widths), "post_width": student.post_width,
            "noise_input": student.noise_input, "base": student.base, "base_input": student.base_input,
            **(metadata or {})}
    sd = {k: v.detach().float().cpu().contiguous() for k, v in student.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    # Every value JSON-encoded (strings too) except the format line, so reading is uniform.
    save_file(sd, str(tmp), metadata={k: v if k == "format" else json.dumps(v) for k, v in meta.items()})
    tmp.replace(path)
    return path


def read_student(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The plain student stored at ``path`` (no checksum: see the back-end for verified loading) and
    its metadata.

    Raises:
        WeightsError: missing or unreadable file, or one without a student's metadata.
    """
    from safetensors import safe_open

    from ..models.li2020 import StudentJDD

    path = Path(path)
    if not path.is_file():
        raise WeightsError("student weights not found", path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
        meta = {k: json.loads(v) if k != "format" else v for k, v in raw.items()}
        net = StudentJDD(meta["widths"], meta["post_width"], bool(meta.get("noise_input", True)),
                         base=meta.get("base", True), base_input=bool(meta.get("base_input", False)))
        net.load_state_dict(sd, strict=True)
    except (KeyError, ValueError, RuntimeError, OSError) as err:
        raise WeightsError(f"not a rawdev student ({err})", path) from None
    return net, meta


def student_from_checkpoint(run_dir: str | Path) -> tuple[torch.nn.Module, dict]:
    """The (super-)network of a distillation run's checkpoint and the checkpoint's recipe."""
    from ..models.li2020 import StudentJDD

    ckpt = load_checkpoint(run_dir)
    recipe = ckpt.get("extra", {}).get("recipe")
    if not recipe:
        raise UsageError(f"{run_dir} holds no distillation run (no recipe in its checkpoint)")
    net = StudentJDD(recipe["widths"], recipe["post_width"], noise_input=True, gates=recipe["slim_l1"] > 0,
                     base=recipe.get("base", STUDENT_BASES[0]), base_input=bool(recipe.get("base_input", False)))
    net.load_state_dict(ckpt["model"], strict=True)
    return net, dict(recipe, step=ckpt["step"])


def init_student(net: torch.nn.Module, run_dir: str | Path) -> int:
    """Start ``net`` from the weights of an earlier run's checkpoint (same widths; GAN Compression
    starts its students from a pre-trained network too). Where that run corrected another base, the
    last 1x1 is zeroed, so the first step computes ``net``'s own base exactly and the trunk's learned
    features (denoising, edges) are kept; where ``net`` also feeds the base image to its post layer
    and that run did not, those input channels start at zero. Returns the earlier run's step count.

    Raises:
        UsageError: no checkpoint there, or one of another shape.
    """
    src, recipe = student_from_checkpoint(run_dir)
    state = src.state_dict()
    post = state["post.weight"]
    if net.base_input and not src.base_input:
        # a post layer that now also sees the base image: the new input channels start at zero, so
        # the network computes what it computed before
        grown = torch.zeros_like(net.post.weight)
        grown[:, : post.shape[1]] = post
        state["post.weight"] = grown
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UsageError(f"{run_dir}: its student does not fit this one ({str(err).splitlines()[0]})") from None
    if src.base != net.base:
        with torch.no_grad():
            net.out.weight.zero_()
            net.out.bias.zero_()
    return int(recipe["step"])


def train_student(
    data: list[str | Path],
    cfg: TrainConfig,
    recipe: CompressRecipe | None = None,
    *,
    val_data: list[str | Path] | None = None,
    teacher=None,
    init_from: str | Path | None = None,
    **callbacks,
) -> tuple[TrainResult, torch.nn.Module]:
    """Distil the teacher into a student (the checkpoint in ``cfg.run_dir`` holds the super-network).

    Args:
        data: photo folders, photo files or ``.npz`` packs (their ``train`` split).
        cfg: loop settings (steps, lr, run_dir, resume, ...).
        recipe: student shape and data settings (default :class:`CompressRecipe`).
        val_data: validation sources; default the ``val`` split of the packs in ``data``.
        teacher: ``(mosaic3, sigma) -> image`` (tests pass a small one); default :func:`build_teacher`.
        init_from: an earlier run folder whose weights start the student (:func:`init_student`);
            ignored when ``cfg.resume`` continues this run's own checkpoint.
        **callbacks: ``on_start``, ``on_step``, ``on_record`` for :func:`~.loop.train`.

    Returns:
        The loop's result and the trained student (gates and all widths; cut it before exporting).
    """
    recipe = recipe or CompressRecipe()
    recipe.validate()
    cfg.validate()
    device = resolve_device(cfg.device)
    pool = training_pool(data, recipe.patch, device)
    teacher = teacher if teacher is not None else build_teacher(device)
    net = build_student(recipe)
    init_step = init_student(net, init_from) if init_from is not None and not cfg.resume else None
    val_fn = None
    val_sources = validation_sources(data, val_data)
    if val_sources:
        try:
            val_pool = load_sources(val_sources, split="val").to(device)
            runs = {w: make_val_fn(val_pool, recipe.val_sigmas) for w in (sorted(recipe.ofa_widths) or [None])}

            def val_fn(model):
                out = {}
                for w, run in runs.items():
                    tag = "" if w is None else f"_w{w:g}"
                    out.update({f"{k}{tag}": v for k, v in run(_AtWidth(model, w)).items()})
                return out
        except UsageError:
            log.info("no validation photos in %s", val_sources)
    extra = {"recipe": {k: v for k, v in dataclasses.asdict(recipe).items() if k != "widths_meta"},
             "data": [str(p) for p in data], "train_photos": len(pool),
             "train_megapixels": round(pool.megapixels, 2), "teacher": getattr(teacher, "backend", None)}
    if init_from is not None:
        extra["init_from"] = {"run_dir": str(init_from), "step": init_step}
    t0 = time.time()
    result = train(net, lambda step, g: make_distill_batch(pool, recipe, g, teacher, net.border),
                   distill_loss(recipe.loss, recipe.slim_l1), cfg, val_fn=val_fn, extra_state=extra, **callbacks)
    log.info("distillation call took %.0f s", time.time() - t0)
    return result, net
