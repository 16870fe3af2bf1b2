"""The shared training loop of rawdev's learned back-ends.

One function, :func:`train`, runs any recipe given as two callables:

* ``make_batch(step, generator) -> batch``: builds the batch of optimisation step ``step`` from a
  generator seeded by ``(seed, step)`` alone, so the data of a step never depends on what ran before;
* ``compute_loss(model, batch) -> loss`` (a scalar tensor).

What the loop guarantees:

* **Seeded and resumable exactly.** A checkpoint (``run_dir/checkpoint.pt``, written every
  ``checkpoint_every`` steps, on a time limit and at the end, atomically) holds the model, the
  optimiser, the step and the global RNG states (torch, CUDA, NumPy, ``random``). Since each step's
  batch depends only on the seed and the step number, resuming from step ``k`` gives the same weights
  as an uninterrupted run (bit for bit on the CPU; up to non-deterministic GPU kernels on CUDA).
* **A loss log**, ``run_dir/log.jsonl``: one JSON object per ``log_every`` steps (mean loss over the
  interval, learning rate, elapsed seconds, samples/s) and one per validation. Records after the
  checkpoint's step are dropped on resume, so the log reads as one run.
* **Device** ``auto`` (CUDA if available, else CPU), ``cpu`` or ``cuda[:i]``; optional bf16 autocast
  on CUDA (``amp=True``); TF32 convolutions/matmuls on CUDA.
* **A learning-rate schedule**: constant, or cosine decay to ``min_lr_ratio * lr``, after an optional
  linear warm-up.
* **A time limit**: the loop stops cleanly (checkpoint written) once ``time_limit_s`` has passed, so a
  run on a leased machine can be continued later with ``resume=True``.

Progress is reported through callbacks (the CLI draws a rich progress bar from them); this module only
logs through :mod:`logging`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import UsageError

__all__ = [
    "TrainConfig",
    "TrainResult",
    "resolve_device",
    "step_generator",
    "lr_factor",
    "train",
    "load_checkpoint",
]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


@dataclass
class TrainConfig:
    """Settings of one training run (recorded in the checkpoint and the log)."""

    steps: int
    lr: float = 1e-4
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    run_dir: str | Path = "runs/train"
    resume: bool = False
    checkpoint_every: int = 1000
    log_every: int = 50
    val_every: int = 0  # 0: validate only at the end (if a val_fn is given)
    time_limit_s: float | None = None
    schedule: str = "constant"  # "constant" or "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float | None = None
    threads: int | None = None  # torch CPU threads; None leaves torch's default

    def validate(self) -> None:
        if self.steps < 0:
            raise UsageError(f"steps must be >= 0, got {self.steps}")
        if self.lr <= 0:
            raise UsageError(f"lr must be > 0, got {self.lr}")
        if self.schedule not in ("constant", "cosine"):
            raise UsageError(f"unknown schedule {self.schedule!r}; expected constant or cosine")
        if self.checkpoint_every < 1 or self.log_every < 1 or self.val_every < 0:
            raise UsageError("checkpoint_every and log_every must be >= 1, val_every >= 0")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["run_dir"] = str(self.run_dir)
        return d


@dataclass
class TrainResult:
    """What :func:`train` did."""

    step: int  # optimisation steps done in total (including those before a resume)
    completed: bool  # False when the time limit stopped the run early
    elapsed_s: float  # wall time of this call
    device: str
    last_loss: float | None
    val: dict | None


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``; ``cuda`` / ``cuda:i``.

    Raises:
        UsageError: an unknown name, or CUDA asked for but unavailable.
    """
    name = str(name).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r} asked for, but CUDA is not available")
        return torch.device(name)
    raise UsageError(f"unknown device {name!r}; expected auto, cpu or cuda")


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded from ``(seed, step)`` alone (the batch of one step)."""
    g = torch.Generator(device=device)
    g.manual_seed((int(seed) * 1_000_003 + int(step) * 7_919 + 12_345) % (2**63 - 1))
    return g


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` at optimisation step ``step`` (0-based)."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(cfg.steps - cfg.warmup_steps, 1)
    t = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def _rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(run_dir: str | Path, map_location="cpu") -> dict:
    """The checkpoint dict of ``run_dir`` (keys: step, model, optimizer, rng, config, ...).

    Raises:
        UsageError: there is no checkpoint there.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise UsageError(f"no checkpoint to resume from in {run_dir}")
    # weights_only=False: the checkpoint holds Python RNG state tuples; it is our own file.
    return torch.load(path, map_location=map_location, weights_only=False)


def _truncate_log(path: Path, step: int) -> None:
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue
    path.write_text("".join(line + "\n" for line in keep))


def train(
    model: torch.nn.Module,
    make_batch: Callable[[int, torch.Generator], Any],
    compute_loss: Callable[[torch.nn.Module, Any], torch.Tensor],
    cfg: TrainConfig,
    *,
    val_fn: Callable[[torch.nn.Module], dict] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_step: Callable[[int, float | None], None] | None = None,
    on_record: Callable[[dict], None] | None = None,
    extra_state: dict | None = None,
) -> TrainResult:
    """Optimise ``model`` with Adam for ``cfg.steps`` steps (see the module docstring).

    Args:
        model: the network, moved to the resolved device here.
        make_batch: ``(step, generator) -> batch`` on the device; ``generator`` lives on the device.
        compute_loss: ``(model, batch) -> scalar loss``; called under autocast when ``cfg.amp``.
        cfg: the settings.
        val_fn: ``model -> {name: number}``, run in eval mode without gradients at step 0 of a fresh
            run, every ``cfg.val_every`` steps and at the end.
        on_start: called with ``(first_step, total_steps)`` once the state is loaded.
        on_step: called after every step with ``(step_done, loss or None)``; the loss is only given on
            log steps (reading it forces a device sync).
        on_record: called with every record written to the log.
        extra_state: JSON-able facts stored in the checkpoint (e.g. the recipe's settings).

    Returns:
        A :class:`TrainResult`.

    Raises:
        UsageError: bad settings, or ``resume`` without a checkpoint.
    """
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT_NAME
    log_path = run_dir / LOG_NAME

    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                           weight_decay=cfg.weight_decay)
    step = 0
    if cfg.resume:
        ck = load_checkpoint(run_dir)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step = int(ck["step"])
        _set_rng_state(ck["rng"])
        _truncate_log(log_path, step)
        log.info("resumed from %s at step %d", ckpt_path, step)
    else:
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % (2**32))
        random.seed(cfg.seed)
        if log_path.exists():
            log_path.unlink()

    def write(record: dict) -> None:
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if on_record is not None:
            on_record(record)

    def save(at_step: int) -> None:
        _save_atomic({
            "step": at_step,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "rng": _rng_state(),
            "config": cfg.to_json(),
            "extra": extra_state or {},
            "torch": torch.__version__,
        }, ckpt_path)

    def validate(at_step: int) -> dict:
        model.eval()
        with torch.no_grad():
            metrics = val_fn(model)  # type: ignore[misc]
        model.train()
        write({"step": at_step, "val": metrics})
        return metrics

    amp_ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if (cfg.amp and device.type == "cuda") \
        else contextlib.nullcontext
    if on_start is not None:
        on_start(step, cfg.steps)
    val_metrics = None
    last_val_step = -1
    if val_fn is not None and step == 0 and not cfg.resume:
        val_metrics = validate(0)
        last_val_step = 0

    model.train()
    t0 = time.perf_counter()
    t_last, step_last = t0, step
    loss_sum = torch.zeros((), device=device)
    last_loss: float | None = None
    completed = True
    n_samples = 0
    while step < cfg.steps:
        if cfg.time_limit_s is not None and time.perf_counter() - t0 >= cfg.time_limit_s:
            completed = False
            log.info("time limit reached at step %d", step)
            break
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg)
        batch = make_batch(step, step_generator(cfg.seed, step, device))
        with amp_ctx():
            loss = compute_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        loss_sum += loss.detach().float()
        n_samples += _batch_len(batch)
        step += 1
        reported = None
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            last_loss = float(loss_sum) / (step - step_last)
            reported = last_loss
            write({
                "step": step,
                "loss": last_loss,
                "lr": opt.param_groups[0]["lr"],
                "elapsed_s": round(now - t0, 3),
                "samples_per_s": round(n_samples / max(now - t_last, 1e-9), 2),
            })
            loss_sum.zero_()
            t_last, step_last, n_samples = now, step, 0
        if val_fn is not None and cfg.val_every and step % cfg.val_every == 0 and step != cfg.steps:
            val_metrics = validate(step)
            last_val_step = step
        if step % cfg.checkpoint_every == 0 and step != cfg.steps:
            save(step)
        if on_step is not None:
            on_step(step, reported)
    if val_fn is not None and last_val_step != step:
        val_metrics = validate(step)
    save(step)
    return TrainResult(step=step, completed=completed, elapsed_s=time.perf_counter() - t0,
                       device=str(device), last_loss=last_loss, val=val_metrics)


def _batch_len(batch: Any) -> int:
    if torch.is_tensor(batch):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)) and batch and torch.is_tensor(batch[0]):
        return int(batch[0].shape[0])
    return 0
