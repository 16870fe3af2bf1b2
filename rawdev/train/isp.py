"""``rawdev train pynet|pynet-ca|cameranet``: train the learned ISPs on unprocessed photos.

Every sample (Brooks2019 Sec. 3, as the round-trip DNGs of the evaluation are made):

1. a random ``patch`` x ``patch`` crop of a training photo with a random symmetry of the square
   (before mosaicking, so the Bayer geometry stays right: learned_backends.md 7.3);
2. sRGB EOTF -> linear sRGB -> camera RGB through a random mix of real cameras' matrices
   (:func:`~.synthesis.random_rgb_to_cam`; white maps to white, so this is the white-balanced camera
   signal) -> divided by random white-balance gains (red U(1.9, 2.4), blue U(1.5, 1.9)) and clipped at
   1, which is what the sensor records -> RGGB mosaic;
3. with probability ``p_noise`` shot + read noise with Brooks2019's random levels
   (:func:`~.synthesis.random_noise_levels`), in the sensor's domain;
4. the pipeline's side: multiplied back by the white-balance gains and clipped at 1 from above (the
   developer's ``clip`` highlight mode); the network gets this mosaic, the noise coefficients as
   seen in the green channel, and the camera -> sRGB matrix (the inverse of the sampled one);
5. target: the photo itself, which is what a perfect neutral developer returns; or, with a
   ``teacher`` (a trained ISP back-end, e.g. ``cameranet`` for ``cameranet-fast``), the teacher's
   output on the same input: distillation (Li2020 Sec. 3.1, as ``rawdev compress distill`` does for
   ``jdd-noise``), so a narrow student over a cheap start learns the teacher's function, including
   what the teacher's own better start (``jdd-noise``) gets right.

Stages: PyNET and PyNET-CA train level by level from the coarsest (Ignatov2020 Sec. 4; every level's
stage trains all parameters, from the previous stage's weights, with a fresh optimiser); CameraNet
trains its Restore-Net alone, then both stages jointly (Liang2019 Sec. III-D; the Enhance-alone phase
is left out because with the neutral default look its target on ground-truth linear input is the
identity, which the frame's global residual already gives). Loss: L1 on the display image (all
three papers use L1/MSE-type fidelity terms; their VGG terms need weights we do not have offline);
CameraNet's joint stage adds the Restore-Net's L1 (see :func:`isp_loss`).

Each stage is a :func:`~.loop.train` run in ``RUN_DIR/stage-<level>/`` with its own checkpoint;
a finished stage leaves ``done.pt``; ``--resume`` continues exactly where a run stopped.

References:
    Brooks2019: T. Brooks, B. Mildenhall, T. Xue, J. Chen, D. Sharlet, J. T. Barron. "Unprocessing
    Images for Learned Raw Denoising". CVPR 2019.
    Ignatov2020, Kim2020, Liang2019: see :mod:`rawdev.models.isp_frame`.
    Li2020: M. Li et al. "GAN Compression: Efficient Architectures for Interactive Conditional GANs".
    CVPR 2020.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..cfa import mosaic
from ..errors import UsageError
from ..backends.isp import DEFAULT_ISP_BASE, DEFAULT_ISP_KIND, ISP_ARCH, ISP_BASES, UNNAMED_BASE, make_isp
from ..models.isp_frame import ISPArch, LearnedISP, levels_of
from .data import PhotoPool, training_pool
from .loop import TrainConfig, TrainResult, resolve_device, train
from .synthesis import add_shot_read_noise, decode_srgb, random_noise_levels, random_rgb_to_cam

__all__ = ["ISPRecipe", "build_isp_teacher", "make_isp_batch", "isp_loss", "train_isp", "export_isp", "DEFAULT_STAGE_STEPS"]

log = logging.getLogger(__name__)

_STAGE_STEPS = {
    ISPArch.PYNET: {5: 200, 4: 200, 3: 300, 2: 400, 1: 600, 0: 1200},
    ISPArch.PYNET_CA: {5: 200, 4: 200, 3: 300, 2: 400, 1: 600, 0: 1200},
    ISPArch.CAMERANET: {1: 2500, 0: 2500},
}
#: Steps per stage (PyNET levels 5..0; CameraNet 1 = Restore alone, 0 = joint) for a CPU run, by
#: back-end name.
DEFAULT_STAGE_STEPS = {name: _STAGE_STEPS[arch] for name, arch in ISP_ARCH.items()}


@dataclass
class ISPRecipe:
    """Model and data settings of an ISP training run (see the module docstring)."""

    kind: str = DEFAULT_ISP_KIND
    width: int = 16
    kernels: str = "dilated"  # PyNET(-CA): "full", "dilated" or "cap5"
    padding_mode: str = "zeros"  # CameraNet: zeros while training on small patches
    instance_norm: bool = False  # PyNET(-CA): see models.isp_frame.LearnedISP
    base: str = DEFAULT_ISP_BASE  # the demosaic the network refines (backends.isp.ISP_BASES)
    patch: int = 128
    batch: int = 8
    p_noise: float = 0.7
    teacher: str | None = None  # an ISP back-end whose output is the target (distillation); None: the photo
    stage_steps: dict = field(default_factory=dict)  # {level: steps}; empty = DEFAULT_STAGE_STEPS

    def validate(self) -> None:
        if self.kind not in ISP_ARCH:
            raise UsageError(f"unknown ISP {self.kind!r}; expected one of {', '.join(ISP_ARCH)}")
        if self.base not in ISP_BASES:
            raise UsageError(f"unknown base {self.base!r}; expected one of {', '.join(ISP_BASES)}")
        if self.patch < 32 or self.patch % 32:
            raise UsageError(f"patch must be a multiple of 32, got {self.patch}")
        if self.batch < 1:
            raise UsageError(f"batch must be >= 1, got {self.batch}")
        if not 0.0 <= self.p_noise <= 1.0:
            raise UsageError(f"p_noise must lie in [0, 1], got {self.p_noise}")
        if self.teacher is not None and (self.teacher not in ISP_ARCH or self.teacher == self.kind):
            raise UsageError(f"teacher must be another learned ISP ({', '.join(k for k in ISP_ARCH if k != self.kind)}), "
                             f"got {self.teacher!r}")

    def stages(self) -> list[tuple[int, int]]:
        steps = self.stage_steps or DEFAULT_STAGE_STEPS[self.kind]
        return [(lv, int(steps[lv])) for lv in levels_of(ISP_ARCH[self.kind]) if int(steps.get(lv, 0)) > 0]


def build_isp_teacher(name: str, device: torch.device | str = "cpu"):
    """``batch -> display sRGB (B, 3, P, P)``: the registered ISP back-end ``name``'s network run on a
    training batch as it was trained (whole patches, its own start told the batch's noise), frozen.

    Raises:
        WeightsError: the teacher's weights are missing or damaged.
    """
    from ..backends.registry import get

    net = get(name).build(device=str(device), dtype=torch.float32).core.net

    def teach(batch: dict) -> torch.Tensor:
        with torch.no_grad():
            return net(batch["mosaic"], batch["matrix"], batch["noise"]).float().clamp(0.0, 1.0)

    teach.backend = name
    return teach


def make_isp_batch(pool: PhotoPool, recipe: ISPRecipe, generator: torch.Generator, teacher=None) -> dict[str, torch.Tensor]:
    """One batch: ``mosaic`` (B, 1, P, P), ``matrix`` (B, 3, 3), ``noise`` (B, 2), ``target`` (B, 3, P, P):
    the photo, or ``teacher(batch)`` (:func:`build_isp_teacher`) when one is given."""
    b, p = recipe.batch, recipe.patch
    dev = pool.device
    photo = pool.sample(b, p, generator=generator)
    rgb_to_cam = random_rgb_to_cam(b, generator=generator, device=dev)
    cam = torch.einsum("nij,njhw->nihw", rgb_to_cam, decode_srgb(photo))
    red = 1.9 + 0.5 * torch.rand(b, generator=generator, device=dev)
    blue = 1.5 + 0.4 * torch.rand(b, generator=generator, device=dev)
    gains = torch.stack([red, torch.ones_like(red), blue], dim=1)[:, :, None, None]
    sensor = mosaic((cam / gains).clamp(0.0, 1.0), "RGGB")
    shot, read = random_noise_levels(b, generator=generator, device=dev)
    use = (torch.rand(b, generator=generator, device=dev) < recipe.p_noise).float()
    shot, read = shot * use, read * use
    sensor = add_shot_read_noise(sensor, shot, read, generator=generator)
    wb = mosaic(gains.expand(b, 3, p, p), "RGGB")
    x = (sensor * wb).clamp(max=1.0)
    batch = {
        "mosaic": x,
        "matrix": torch.linalg.inv(rgb_to_cam.double()).float(),
        "noise": torch.stack([shot, read], dim=1),
        "target": photo,
    }
    if teacher is not None:
        batch["target"] = teacher(batch)
    return batch


def isp_loss(level: int):
    """``(model, batch) -> L1`` between the level's output and the average-pooled target.

    CameraNet's joint stage (level 0) adds the Restore-Net's own loss, as the official SID recipe
    does (learned_backends.md 4.4): without it the Restore output drifts away from the image (the
    2026-11-25 weights: +18 to +31 levels too bright, Enhance-Net pulling it back) and the final
    colour then rests on the Enhance-Net's global path, which casts on unfamiliar content. Both
    terms are L1 on the display encoding (the sRGB curve stands in for the paper's log-L1).
    """

    def compute(model: torch.nn.Module, batch: dict) -> torch.Tensor:
        target = batch["target"]
        if model.arch is ISPArch.CAMERANET and level == 0:
            out, restored = model(batch["mosaic"], batch["matrix"], batch["noise"], level=0, return_restored=True)
            return (out.float() - target).abs().mean() + (restored.float() - target).abs().mean()
        out = model(batch["mosaic"], batch["matrix"], batch["noise"], level=level).float()
        if model.arch is not ISPArch.CAMERANET and level > 0:
            target = torch.nn.functional.avg_pool2d(target, 2 ** level)
        return (out - target).abs().mean()

    return compute


def export_isp(model: LearnedISP, path: str | Path, metadata: dict | None = None) -> Path:
    """Write the model's state dict (fp32 safetensors) with its ``config`` in the metadata."""
    from .jdd import export_weights

    meta = {"config": model.config, **(metadata or {})}
    return export_weights(model, path, meta)


def train_isp(
    data: list[str | Path],
    out: str | Path,
    cfg: TrainConfig,
    recipe: ISPRecipe,
    *,
    init: str | Path | None = None,
    **callbacks,
) -> TrainResult:
    """Train one learned ISP stage by stage (see the module docstring) and export its weights to ``out``.

    ``cfg.steps`` is ignored (the stages set it); ``cfg.time_limit_s`` bounds the whole call;
    ``cfg.resume`` continues a stopped run from ``cfg.run_dir``. ``init``: a weights file (as exported
    here) to start from instead of the fresh initialisation.
    """
    recipe.validate()
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    pool = training_pool(data, recipe.patch, device)
    teacher = build_isp_teacher(recipe.teacher, device) if recipe.teacher else None
    net = make_isp(recipe.kind, width=recipe.width, kernels=recipe.kernels, padding_mode=recipe.padding_mode,
                   instance_norm=recipe.instance_norm, base=recipe.base)
    if init is not None:  # continue from exported weights (a new run of further stages)
        from safetensors import safe_open
        from safetensors.torch import load_file

        net.load_state_dict({k: v.float() for k, v in load_file(str(init)).items()})
        with safe_open(str(init), "pt") as f:
            init_base = json.loads((f.metadata() or {}).get("config", "{}")).get("base", UNNAMED_BASE)
        if init_base != recipe.base:
            # The output layer learned a correction of the other base's errors: start from the new
            # base's render exactly, keeping the trained features.
            net.zero_outputs()
    run_dir = Path(cfg.run_dir)
    t0 = time.time()
    history = []
    result = None
    for level, steps in recipe.stages():
        stage_dir = run_dir / f"stage-{level}"
        done = stage_dir / "done.pt"
        if done.exists():
            ck = torch.load(done, map_location="cpu", weights_only=False)
            net.load_state_dict(ck["model"])
            history.append(ck["summary"])
            continue
        left = None if cfg.time_limit_s is None else cfg.time_limit_s - (time.time() - t0)
        if left is not None and left <= 0:
            break
        resume = cfg.resume and (stage_dir / "checkpoint.pt").exists()
        scfg = dataclasses.replace(cfg, steps=steps, run_dir=stage_dir, resume=resume, time_limit_s=left)
        extra = {"recipe": dataclasses.asdict(recipe), "level": level}
        result = train(net, lambda step, g: make_isp_batch(pool, recipe, g, teacher), isp_loss(level), scfg,
                       extra_state=extra, **callbacks)
        if not result.completed:
            break
        summary = {"level": level, "steps": steps, "last_loss": result.last_loss,
                   "wall_s": round(_stage_wall(stage_dir), 1)}
        torch.save({"model": net.state_dict(), "summary": summary}, done)
        history.append(summary)
    complete = len(history) == len(recipe.stages())
    meta = {
        "format": f"rawdev {recipe.kind}: LearnedISP state dict, fp32",
        "recipe": dataclasses.asdict(recipe),
        "stages": history,
        "complete": complete,
        "device": str(device),
        "data": [str(p) for p in data],
        "train_photos": len(pool),
        "params": sum(p.numel() for p in net.parameters()),
    }
    if complete:
        export_isp(net.cpu(), out, meta)
        (run_dir / "summary.json").write_text(json.dumps(meta, indent=2, default=str))
    if result is None:  # everything was already done
        result = TrainResult(step=sum(s for _, s in recipe.stages()), completed=complete, elapsed_s=0.0,
                             device=str(device), last_loss=None, val=None)
    return dataclasses.replace(result, completed=complete)


def _stage_wall(stage_dir: Path) -> float:
    """Training seconds of a stage, summed over resumed calls (from its log)."""
    log_path = stage_dir / "log.jsonl"
    if not log_path.exists():
        return 0.0
    last = 0.0
    for line in log_path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        last = max(last, float(rec.get("elapsed_s", 0.0)))
    return last
