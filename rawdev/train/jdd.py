"""The ``jdd-noise`` recipe: fine-tune Gharbi2016's Bayer demosaicnet into a noise-aware one.

Network: :class:`rawdev.models.gharbi2016.BayerDemosaicNet` with ``noise_input=True``, initialised from
the released noise-free ``bayer.pth`` with a zero-weight noise channel, so step 0 computes exactly what
``jdd`` computes (learned_backends.md Sec. 7.2 C).

Data (the network's own domain, learned_backends.md Sec. 1.3): demosaicnet was trained on 8-bit,
white-balanced, sRGB-encoded photos mosaicked directly, with Gaussian noise of std ``sigma`` in that
encoded [0, 1] domain and ``sigma ~ U[0, 20/255]`` (Gharbi2016). A training photo patch already lives
in that domain, so no unprocessing is needed. Per sample:

1. a random ``patch`` x ``patch`` crop with a random symmetry of the square (:class:`~.data.PhotoPool`),
   and with probability ``colour_aug`` a random channel permutation and saturation gain
   (:func:`~.data.colour_augment`);
2. the GRBG mosaic (the network's native phase) of that crop;
3. noise: ``sigma`` = 0 with probability ``p_clean``, else U(0, ``sigma_max``); Gaussian of that std on
   the mosaic, or, with probability ``hetero_prob``, shot + read noise made in linear light and carried
   through the sRGB curve, scaled so its RMS std in the encoded domain is ``sigma``
   (:func:`~.synthesis.srgb_equivalent_noise`);
4. with probability ``clip_prob`` the noisy mosaic is clipped to [0, 1] (a RAW pipeline clips before
   encoding; a synthetic benchmark may not);
5. input: the zero-filled 3-channel mosaic and ``sigma``; target (``target``), without the 31 px per
   side that the valid convolutions eat:

   * ``"teacher"`` (default): the frozen noise-free network's output on the *clean* mosaic
     (distillation). The fine-tune learns to remove noise while keeping the released network's
     demosaicking, which was trained on ~2.6 M mined patches; so the noise-free quality stays that of
     ``jdd`` on every kind of image, instead of drifting towards our small training set (fine-tuning
     on ground truth raised validation PSNR on our photos but cost 0.9 dB on McMaster);
   * ``"gt"``: the clean crop (Gharbi2016's own target);
   * ``"teacher-clean"``: the teacher for noise-free samples, the clean crop for noisy ones.

Loss: L2 (Gharbi2016) or L1; Adam. The weights are exported as a safetensors file of the model's
state dict (fp32), which ``rawdev.backends.learned`` loads for ``jdd-noise``.

References:
    Gharbi2016: M. Gharbi, G. Chaurasia, S. Paris, F. Durand. "Deep Joint Demosaicking and
    Denoising". ACM Transactions on Graphics 35(6), 191 (SIGGRAPH Asia 2016).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cfa import bayer_masks, mosaic
from ..errors import UsageError, WeightsError
from .data import PhotoPool, colour_augment, load_sources, training_pool, validation_sources
from .loop import TrainConfig, TrainResult, resolve_device, train
from .synthesis import add_gaussian_noise, sample_sigmas, srgb_equivalent_noise

__all__ = [
    "JDDRecipe",
    "BORDER",
    "locate_pretrained",
    "build_model",
    "model_border",
    "make_jdd_batch",
    "jdd_loss",
    "psnr",
    "make_val_fn",
    "export_weights",
    "train_jdd",
]

log = logging.getLogger(__name__)

BORDER = 31  # pixels lost per side by the valid-conv Bayer network
NATIVE_PATTERN = "GRBG"
PRETRAINED_REF = "pkg:demosaicnet/demosaicnet/data/bayer.pth"
TARGETS = ("gt", "teacher", "teacher-clean")


@dataclass
class JDDRecipe:
    """The data and loss settings of the jdd-noise recipe (see the module docstring)."""

    patch: int = 128
    batch: int = 16
    sigma_max: float = 20 / 255
    p_clean: float = 0.2
    hetero_prob: float = 0.0
    target: str = "teacher"  # "gt", "teacher" or "teacher-clean" (see the module docstring)
    colour_aug: float = 0.0  # probability of data.colour_augment per sample
    clip_prob: float = 0.5
    loss: str = "l2"
    val_sigmas: tuple[float, ...] = (0.0, 10 / 255)

    def validate(self) -> None:
        if self.patch < 4 or self.patch % 2:
            raise UsageError(f"patch must be even and >= 4, got {self.patch}")
        if self.batch < 1:
            raise UsageError(f"batch must be >= 1, got {self.batch}")
        if self.target not in TARGETS:
            raise UsageError(f"unknown target {self.target!r}; expected one of {', '.join(TARGETS)}")
        if self.loss not in ("l1", "l2"):
            raise UsageError(f"unknown loss {self.loss!r}; expected l1 or l2")
        for name in ("p_clean", "hetero_prob", "clip_prob", "colour_aug"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UsageError(f"{name} must lie in [0, 1], got {v}")


def locate_pretrained() -> Path:
    """The noise-free ``bayer.pth`` shipped in the ``demosaicnet`` wheel, found without importing it.

    Raises:
        WeightsError: the distribution or the file is missing.
    """
    from ..backends.weights import resolve_path

    path = resolve_path(PRETRAINED_REF)
    if not path.is_file():
        raise WeightsError("demosaicnet is installed but data/bayer.pth is missing", path)
    return path


def build_model(init: str | Path | None = "pretrained", *, depth: int = 15, width: int = 64) -> torch.nn.Module:
    """The noise-aware network, from a noise-free state dict (``bayer.pth``), or randomly initialised.

    Args:
        init: ``"pretrained"`` (the packaged ``bayer.pth``), a path to a noise-free ``.pth`` /
            ``.safetensors`` state dict, or None for a random initialisation (tests).
        depth, width: network size (15 and 64 for the released weights).

    Raises:
        WeightsError: the file is missing or does not fit the network.
    """
    from ..models.gharbi2016 import BayerDemosaicNet

    if init is None:
        return BayerDemosaicNet(depth=depth, width=width, noise_input=True)
    path = locate_pretrained() if init == "pretrained" else Path(init)
    if not path.is_file():
        raise WeightsError("initial weights not found", path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure means unusable weights
        raise WeightsError(f"cannot read initial weights ({err})", path) from None
    try:
        if sd["main_processor.conv1.weight"].shape[1] == 5:  # already noise-aware: continue from it
            net = BayerDemosaicNet(depth=depth, width=width, noise_input=True)
            net.load_state_dict(sd, strict=True)
            return net
        return BayerDemosaicNet.from_pretrained_noise_free(sd, depth=depth, width=width)
    except (KeyError, RuntimeError) as err:
        raise WeightsError(f"initial weights do not fit the network ({err})", path) from None


def model_border(model: torch.nn.Module) -> int:
    """Pixels per side a valid-conv Bayer network loses: ``2 * depth + 1`` (31 for the released one)."""
    return 2 * int(getattr(model, "depth", 15)) + 1


def noisy_mosaic(clean: torch.Tensor, sigma: torch.Tensor, *, hetero_prob: float, clip_prob: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """The training input made from a clean ``(B, 1, P, P)`` mosaic: Gaussian noise of ``sigma`` per
    sample; with probability ``hetero_prob`` per sample the signal-dependent noise of
    :func:`~.synthesis.srgb_equivalent_noise` instead; with probability ``clip_prob`` clipped to
    [0, 1] (as a camera's converter does). Random draws in that order, from ``generator``."""
    b, dev = clean.shape[0], clean.device
    noisy = add_gaussian_noise(clean, sigma, generator=generator)
    if hetero_prob > 0:
        hetero, _ = srgb_equivalent_noise(clean, sigma, generator=generator)
        use = torch.rand(b, generator=generator, device=dev) < hetero_prob
        noisy = torch.where(use.view(-1, 1, 1, 1), hetero, noisy)
    if clip_prob > 0:
        clip = torch.rand(b, generator=generator, device=dev) < clip_prob
        noisy = torch.where(clip.view(-1, 1, 1, 1), noisy.clamp(0.0, 1.0), noisy)
    return noisy


def make_jdd_batch(
    pool: PhotoPool,
    recipe: JDDRecipe,
    generator: torch.Generator,
    border: int = BORDER,
    teacher: torch.nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """One training batch on the pool's device: ``mosaic3`` ``(B, 3, P, P)``, ``sigma`` ``(B,)``,
    ``target`` ``(B, 3, P - 2 border, P - 2 border)`` (see the module docstring for the recipe).

    ``teacher`` (the frozen noise-free network) is needed when ``recipe.target`` is not ``"gt"``.
    """
    b, p = recipe.batch, recipe.patch
    dev = pool.device
    rgb = pool.sample(b, p, generator=generator)
    if recipe.colour_aug > 0:
        rgb = colour_augment(rgb, generator=generator, p=recipe.colour_aug)
    sigma = sample_sigmas(b, sigma_max=recipe.sigma_max, p_zero=recipe.p_clean, generator=generator, device=dev)
    clean = mosaic(rgb, NATIVE_PATTERN)  # (B, 1, P, P)
    noisy = noisy_mosaic(clean, sigma, hetero_prob=recipe.hetero_prob, clip_prob=recipe.clip_prob, generator=generator)
    masks = bayer_masks(NATIVE_PATTERN, p, p, device=dev, dtype=noisy.dtype)
    target = rgb[..., border:-border, border:-border]
    if recipe.target != "gt":
        if teacher is None:
            raise UsageError(f"target {recipe.target!r} needs the noise-free teacher network")
        with torch.no_grad():
            taught = teacher(clean * masks).float().clamp(0.0, 1.0)
        if recipe.target == "teacher":
            target = taught
        else:
            target = torch.where((sigma == 0).view(-1, 1, 1, 1), taught, target)
    return {"mosaic3": noisy * masks, "sigma": sigma, "target": target}


def _teacher_from(net: torch.nn.Module) -> torch.nn.Module:
    """A frozen noise-free copy of the noise-aware ``net`` as it is now (its noise channel dropped).

    Called before training, when ``net`` still computes exactly what the noise-free weights compute,
    so the teacher is the released network (or whatever ``init`` was).
    """
    from ..models.gharbi2016 import BayerDemosaicNet

    sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
    sd["main_processor.conv1.weight"] = sd["main_processor.conv1.weight"][:, :4]
    teacher = BayerDemosaicNet(depth=net.depth, width=net.width, noise_input=False)
    teacher.load_state_dict(sd, strict=True)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def jdd_loss(kind: str = "l2"):
    """``(model, batch) -> loss``: L2 (mean squared error) or L1 between output and target."""
    if kind not in ("l1", "l2"):
        raise UsageError(f"unknown loss {kind!r}; expected l1 or l2")

    def compute(model: torch.nn.Module, batch: dict) -> torch.Tensor:
        out = model(batch["mosaic3"], batch["sigma"]).float()
        diff = out - batch["target"]
        return diff.square().mean() if kind == "l2" else diff.abs().mean()

    return compute


def psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of ``(N, C, H, W)`` images with peak 1 (``output`` clipped to [0, 1])."""
    mse = (output.clamp(0, 1) - target).square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def make_val_fn(
    pool: PhotoPool,
    sigmas: tuple[float, ...],
    *,
    seed: int = 1234,
    chunk: int = 32,
    teacher: torch.nn.Module | None = None,
):
    """``model -> {"psnr_s<k>": mean dB}`` on every photo of ``pool`` (whole, cropped to even size),
    with GRBG mosaics and fixed Gaussian noise of each std in ``sigmas`` (encoded [0, 1] units).

    With a ``teacher`` it also reports ``agree_s0``: the PSNR between the model's noise-free output and
    the teacher's (how far the fine-tune has drifted from the noise-free network)."""
    dev = pool.device

    def run(model: torch.nn.Module) -> dict:
        out = {}
        agree: list[torch.Tensor] = []
        for s in sigmas:
            g = torch.Generator(device=dev)
            g.manual_seed(seed)
            vals = []
            groups: dict[tuple, list[torch.Tensor]] = {}
            for ph in pool.photos:
                h, w = ph.shape[1] // 2 * 2, ph.shape[2] // 2 * 2
                groups.setdefault((h, w), []).append(ph[:, :h, :w])
            for (h, w), photos in groups.items():
                masks = bayer_masks(NATIVE_PATTERN, h, w, device=dev)
                for i in range(0, len(photos), chunk):
                    rgb = torch.stack(photos[i:i + chunk]).float() / 255
                    n = rgb.shape[0]
                    sig = torch.full((n,), float(s), device=dev)
                    noisy = add_gaussian_noise(mosaic(rgb, NATIVE_PATTERN), sig, generator=g)
                    pred = model(noisy * masks, sig).float()
                    b = (h - pred.shape[-2]) // 2
                    vals.append(psnr(pred, rgb[..., b:h - b, b:w - b]))
                    if teacher is not None and s == 0:
                        agree.append(psnr(pred.clamp(0, 1), teacher(noisy * masks).float().clamp(0, 1)))
            out[f"psnr_s{round(s * 255)}"] = round(float(torch.cat(vals).mean()), 4)
        if agree:
            out["agree_s0"] = round(float(torch.cat(agree).mean()), 4)
        return out

    return run


def export_weights(model: torch.nn.Module, path: str | Path, metadata: dict | None = None) -> Path:
    """Write ``model``'s state dict as fp32 safetensors (metadata values are JSON-encoded strings)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(sd, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def train_jdd(
    data: list[str | Path],
    out: str | Path,
    cfg: TrainConfig,
    recipe: JDDRecipe | None = None,
    *,
    init: str | Path | None = "pretrained",
    model: torch.nn.Module | None = None,
    val_data: list[str | Path] | None = None,
    **callbacks,
) -> TrainResult:
    """Fine-tune the noise-aware demosaicnet and export its weights to ``out``.

    Args:
        data: photo folders, photo files or ``.npz`` packs (their ``train`` split).
        out: the safetensors file to write (the model state dict, fp32).
        cfg: loop settings (steps, lr, device, run_dir, resume, seed, ...).
        recipe: data and loss settings (default :class:`JDDRecipe`).
        init: initial weights for :func:`build_model` (ignored when ``model`` is given).
        model: a ready network (tests pass a small one).
        val_data: sources of validation photos; default: the ``val`` split of the packs in ``data``
            (none for plain folders: then no validation runs).
        **callbacks: ``on_start``, ``on_step``, ``on_record``, passed to :func:`~.loop.train`.

    Returns:
        The loop's :class:`~.loop.TrainResult`.
    """
    recipe = recipe or JDDRecipe()
    recipe.validate()
    cfg.validate()
    device = resolve_device(cfg.device)
    pool = training_pool(data, recipe.patch, device)
    val_fn = None
    val_pool_ready = None
    val_sources = validation_sources(data, val_data)
    if val_sources:
        try:
            val_pool = load_sources(val_sources, split="val").to(device)
            val_pool_ready = val_pool
        except UsageError:
            log.info("no validation photos in %s", val_sources)
    net = model if model is not None else build_model(init)
    teacher = None
    if recipe.target != "gt":
        teacher = _teacher_from(net).to(device)
    if val_pool_ready is not None:
        val_fn = make_val_fn(val_pool_ready, recipe.val_sigmas, teacher=teacher)
    extra = {"recipe": dataclasses.asdict(recipe), "data": [str(p) for p in data],
             "train_photos": len(pool), "train_megapixels": round(pool.megapixels, 2)}
    loss = jdd_loss(recipe.loss)
    t0 = time.time()
    border = model_border(net)
    if recipe.patch < 2 * border + 2:
        raise UsageError(f"patch {recipe.patch} leaves no output for a network losing {border} px per side")
    result = train(net, lambda step, g: make_jdd_batch(pool, recipe, g, border, teacher), loss, cfg, val_fn=val_fn,
                   extra_state=extra, **callbacks)
    meta = {
        "format": "rawdev jdd-noise: BayerDemosaicNet(noise_input=True) state dict, fp32",
        "recipe": dataclasses.asdict(recipe),
        "config": cfg.to_json(),
        "steps_done": result.step,
        "completed": result.completed,
        "device": result.device,
        "data": [str(p) for p in data],
        "train_photos": len(pool),
        "val": result.val,
        "wall_s_this_call": round(time.time() - t0, 1),
    }
    export_weights(net, out, meta)
    return result
