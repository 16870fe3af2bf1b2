"""Compare back-ends on the same RAW file: a contact sheet to look at, and a short report.

Each back-end develops the file in a fresh worker process of :class:`rawdev.batch.WorkerPool`, one at
a time so that timings do not compete for the cores. The worker first develops a tiny synthetic DNG
with the same settings (warming up kernels and loading weights), then times the real file; its time
is the steady-state develop time (decode included, process start-up and weight loading excluded) and
its memory the peak resident memory above the idle worker (weights and caches included). A back-end
that crashes, hangs past the timeout or runs out of memory fails in its own row; the others go on.

The registered back-end ``libraw`` (:mod:`rawdev.backends.libraw`) is LibRaw's own AHD demosaic
and colour matrix with rawdev's white balance and tone, the natural reference for real files that
have no ground truth.

The regions shown zoomed are chosen automatically: the per-pixel spread (max - min over the
back-ends, and the reference when there is one) of luma is box-filtered with the crop size and the
``count`` highest non-overlapping windows win, away from the outer border where every demosaicker
guesses. When the back-ends agree everywhere, the regions with the most detail are shown instead.

Shape: images are ``(H, W, 3)`` in display orientation, uint16 from the workers, float in [0, 1] for
the metrics (PSNR and SSIM of :mod:`rawdev.evaluate.metrics`).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backends.registry import LIBRAW, LIBRAW_FALLBACK
from .batch import WorkerPool, prepare_worker  # noqa: F401 - prepare_worker: the worker's set-up hook
from .errors import RawdevError, UsageError

__all__ = [
    "LIBRAW_BACKEND",
    "BackendRun",
    "Comparison",
    "compare_file",
    "compare_task",
    "pick_regions",
    "contact_sheet",
    "load_reference",
    "image_metrics",
    "write_sheet",
    "write_report",
]

#: Pseudo back-end: LibRaw's AHD demosaic inside rawdev's pipeline (white balance, colour, tone).
LIBRAW_BACKEND = LIBRAW  # the name compare's callers import

_BG = (40, 40, 40)
_FG = (235, 235, 235)
_DIM = (170, 170, 170)
_BAD = (255, 110, 90)
_CROP_COLOURS = [(255, 200, 40), (80, 200, 255), (255, 100, 200), (120, 230, 120), (255, 140, 60), (190, 150, 255)]


@dataclass
class BackendRun:
    """One back-end's result on one file."""

    name: str
    ok: bool
    image: np.ndarray | None = None  # (H, W, 3) uint16
    seconds: float | None = None
    peak_mb: float | None = None
    used: str | None = None  # the back-end that really ran (e.g. LIBRAW_FALLBACK for a 4-colour sensor)
    notices: list[str] = field(default_factory=list)
    reason: str | None = None
    psnr: float | None = None
    ssim: float | None = None


@dataclass
class Comparison:
    """Everything a contact sheet and a report need for one file."""

    src: Path
    runs: list[BackendRun]
    reference_name: str | None = None  # "truth.tif" or a back-end name
    reference: np.ndarray | None = None  # (H, W, 3) float32 [0, 1]
    regions: list[tuple[int, int]] = field(default_factory=list)  # (y, x) top-left of each crop
    crop_size: int = 48
    spread: np.ndarray | None = None  # (H, W) float32 luma spread in 8-bit levels
    agree: bool = False  # the back-ends gave identical images
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Worker side


def _proc_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (the peak RSS) to the current RSS; Linux >= 4.0
        return True
    except OSError:
        return False


_WARM: dict[Any, bool] = {}


def _warm_up(cfg, backend: str) -> None:
    """Develop a tiny synthetic DNG once per (back-end, settings): kernels, weights, lazy imports."""
    key = (backend, cfg)
    if key in _WARM:
        return
    import tempfile

    from .synthetic import write_dng

    with tempfile.TemporaryDirectory(prefix="rawdev-warm-") as d:
        rng = np.random.default_rng(0)
        p = write_dng(Path(d) / "warm.dng", rng.random((64, 96, 3)) * 0.6)
        try:
            _develop(p, cfg, backend)
        except RawdevError:
            pass
    _WARM[key] = True


def _camera_name(make: str | None, model: str | None) -> str | None:
    if make and model and model.lower().startswith(make.split()[0].lower()):
        return model  # "Canon" + "Canon EOS 6D"
    return " ".join(x for x in (make, model) if x) or None


def _develop(src: Path, cfg, backend: str) -> tuple[np.ndarray, str, list[str], dict]:
    from dataclasses import replace

    from . import pipeline
    from .io.raw import read_raw

    cfg = replace(cfg, backend=backend)
    raw = read_raw(src)
    m = raw.meta
    meta = {
        "camera": _camera_name(m.exif.make, m.exif.model),
        "width": m.width, "height": m.height, "cfa": m.cfa.bayer_pattern or m.cfa.kind,
    }
    res = pipeline.develop_raw(raw, cfg)
    return res.image, res.backend, list(res.notices), meta


def compare_task(task: dict) -> dict:
    """Worker task: develop ``task["src"]`` with ``task["backend"]``; return the image, time and memory."""
    src, cfg, backend = Path(task["src"]), task["cfg"], task["backend"]
    _warm_up(cfg, backend)
    rss0 = _proc_status_kb("VmRSS")
    exact_peak = _reset_peak()
    t0 = time.perf_counter()
    img, used, notices, meta = _develop(src, cfg, backend)
    seconds = time.perf_counter() - t0
    if img.dtype != np.uint16:  # float [0, 1] display values -> 16-bit codes (half the bytes to send)
        img = (np.clip(_to_float(img), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    hwm = _proc_status_kb("VmHWM") if exact_peak else None
    if hwm is None:
        import resource

        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = max(0.0, (hwm - (rss0 or 0)) / 1024.0)
    return {"status": "developed", "image": img, "seconds": seconds, "peak_mb": peak_mb, "backend": used,
            "notices": notices, "meta": meta}


# --------------------------------------------------------------------------------------------------
# Images, regions, metrics


def _to_float(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return np.clip(img.astype(np.float32), 0.0, 1.0)


def _to_u8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _luma8(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of the display-encoded image in 8-bit levels, float32 ``(H, W)``."""
    f = _to_float(img)
    return (f[..., 0] * 0.2126 + f[..., 1] * 0.7152 + f[..., 2] * 0.0722) * 255.0


def load_reference(path: str | Path) -> np.ndarray:
    """A reference image (sRGB-encoded PNG, JPEG or TIFF, 8 or 16 bit) as float32 ``(H, W, 3)`` in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise UsageError("reference image not found", path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001 - Pillow and tifffile raise many kinds
        raise UsageError(f"cannot read the reference image ({type(e).__name__}: {e})", path) from None
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise UsageError(f"the reference must be an RGB image, got shape {arr.shape}", path)
    return _to_float(np.ascontiguousarray(arr[..., :3]))


def pick_regions(score: np.ndarray, size: int, count: int, border: int = 8) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of up to ``count`` non-overlapping ``size`` x ``size`` windows with the
    largest sum of ``score``, at least ``border`` pixels from the image edge, best first.

    Windows are first kept a quarter of the shorter image side apart, so that the crops show different
    parts of the picture; only if that leaves fewer than ``count`` may they come closer (never overlapping)."""
    h, w = score.shape
    size = int(min(size, h - 2 * border, w - 2 * border)) if min(h, w) > 2 * border + 4 else int(min(size, h, w))
    if size <= 0:
        return []
    b = border if min(h, w) >= size + 2 * border else 0
    integral = np.zeros((h + 1, w + 1), dtype=np.float64)
    np.cumsum(np.cumsum(score, axis=0, dtype=np.float64), axis=1, out=integral[1:, 1:])
    s = size
    box = integral[s:, s:] - integral[:-s, s:] - integral[s:, :-s] + integral[:-s, :-s]  # (h-s+1, w-s+1)
    valid = np.full(box.shape, -np.inf)
    y1, x1 = box.shape[0] - b, box.shape[1] - b
    valid[b:y1, b:x1] = box[b:y1, b:x1]
    out: list[tuple[int, int]] = []
    # Prefer regions apart from each other (different parts of the picture), then merely not overlapping.
    for sep in (max(s, min(h, w) // 4), s):
        v = valid.copy()
        for y, x in out:
            v[max(0, y - sep + 1) : y + sep, max(0, x - sep + 1) : x + sep] = -np.inf
        while len(out) < count:
            i = int(np.argmax(v))
            y, x = divmod(i, v.shape[1])
            if not np.isfinite(v[y, x]):
                break
            out.append((int(y), int(x)))
            v[max(0, y - sep + 1) : y + sep, max(0, x - sep + 1) : x + sep] = -np.inf
    return out


def _psnr_local(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def image_metrics(output: np.ndarray, reference: np.ndarray) -> tuple[float, float | None]:
    """PSNR (dB) and SSIM of ``output`` against ``reference`` (both ``(H, W, 3)``, [0, 1] floats).

    Uses :mod:`rawdev.evaluate.metrics` (SSIM of Wang2004, scikit-image's Gaussian variant), in bands
    of rows with the window's overlap so that memory stays bounded; the banded mean equals the
    whole-image mean exactly. Without that module, PSNR only (SSIM None).
    """
    try:
        import torch

        from .evaluate.metrics import psnr, ssim
    except ImportError:
        return _psnr_local(output, reference), None
    a = torch.from_numpy(np.ascontiguousarray(output, dtype=np.float32)).permute(2, 0, 1)
    r = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).permute(2, 0, 1)
    p = float(psnr(a, r))
    h, w = a.shape[-2:]
    win = 11
    if min(h, w) < win:
        return p, None
    band = 512
    total, count = 0.0, 0
    for y0 in range(0, h - win + 1, band):
        y1 = min(h, y0 + band + win - 1)
        n = (y1 - y0 - win + 1) * (w - win + 1) * a.shape[0]
        total += float(ssim(a[:, y0:y1], r[:, y0:y1])) * n
        count += n
    return p, total / count


# --------------------------------------------------------------------------------------------------
# Running a comparison


def compare_file(
    src: str | Path,
    backends: Sequence[str],
    cfg,
    *,
    reference_image: np.ndarray | None = None,
    reference_name: str | None = None,
    reference_backend: str | None = None,
    crops: int = 3,
    crop_size: int = 48,
    timeout: float | None = 600.0,
    max_memory: int | None = None,
    on_run=None,
) -> Comparison:
    """Develop ``src`` with every back-end (each in a fresh worker) and prepare the comparison.

    ``cfg`` is a :class:`~rawdev.pipeline.PipelineConfig` (its ``backend`` is replaced per run; the
    output is taken as floats and sent back as 16-bit codes). ``reference_image`` (float ``(H, W, 3)`` in [0, 1]) or ``reference_backend``
    (one of ``backends``) adds PSNR/SSIM. ``on_run(run)`` is called after each back-end.
    """
    from dataclasses import replace

    src = Path(src)
    cfg = replace(cfg, output_bits=None)  # float output, quantised to 16 bits by the worker
    names = list(dict.fromkeys(backends))
    if reference_backend and reference_backend not in names:
        names.insert(0, reference_backend)
    runs: list[BackendRun] = []
    meta: dict[str, Any] = {}
    tasks = [(name, {"src": str(src), "cfg": cfg, "backend": name}) for name in names]
    with WorkerPool("rawdev.compare:compare_task", 1, max_memory=max_memory, timeout=timeout, max_tasks=1) as pool:
        for name, res in pool.run(tasks):
            if res.get("status") == "developed":
                run = BackendRun(name, True, res["image"], res["seconds"], res["peak_mb"], res.get("backend"), res.get("notices", []))
                meta = meta or res.get("meta", {})
            else:
                run = BackendRun(name, False, seconds=res.get("seconds"), reason=res.get("reason") or "failed")
            runs.append(run)
            if on_run is not None:
                on_run(run)
    comp = Comparison(src, runs, crop_size=crop_size, meta=meta)
    ok = [r for r in runs if r.ok]
    shapes = {r.image.shape for r in ok}
    if len(shapes) > 1:  # should not happen; compare the common area
        hh, ww = min(s[0] for s in shapes), min(s[1] for s in shapes)
        comp.notes.append(f"back-ends gave different sizes {sorted(shapes)}; compared on the common {ww}x{hh} area")
        for r in ok:
            r.image = r.image[:hh, :ww]
    if reference_image is not None:
        if ok and reference_image.shape[:2] != ok[0].image.shape[:2]:
            rh, rw = reference_image.shape[:2]
            h, w = ok[0].image.shape[:2]
            comp.notes.append(f"reference {reference_name} is {rw}x{rh} but the developed images are {w}x{h}; no metrics")
        else:
            comp.reference, comp.reference_name = reference_image, reference_name or "reference image"
    elif reference_backend:
        ref_run = next((r for r in runs if r.name == reference_backend), None)
        if ref_run is not None and ref_run.ok:
            comp.reference, comp.reference_name = _to_float(ref_run.image), reference_backend
        else:
            comp.notes.append(f"reference back-end {reference_backend} failed; no metrics")
    if comp.reference is not None:
        for r in ok:
            if comp.reference_name == r.name:
                continue
            r.psnr, r.ssim = image_metrics(_to_float(r.image), comp.reference)
    # Where do they differ?
    if ok:
        lo = hi = None
        lumas = [_luma8(r.image) for r in ok]
        if comp.reference is not None and comp.reference_name not in [r.name for r in ok]:
            lumas.append(_luma8(comp.reference))
        for y in lumas:
            lo = y.copy() if lo is None else np.minimum(lo, y, out=lo)
            hi = y.copy() if hi is None else np.maximum(hi, y, out=hi)
        spread = hi - lo
        del lumas, lo, hi
        comp.spread = spread
        if float(spread.max()) < 0.5:  # identical to within rounding
            comp.agree = True
            f = _luma8(ok[0].image)
            detail = np.abs(np.diff(f, axis=0, prepend=f[:1])) + np.abs(np.diff(f, axis=1, prepend=f[:, :1]))
            comp.regions = pick_regions(detail, crop_size, crops)
        else:
            comp.regions = pick_regions(spread, crop_size, crops)
    return comp


# --------------------------------------------------------------------------------------------------
# The contact sheet


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(draw, text: str, font, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for wd in words:
        t = f"{cur} {wd}".strip()
        if draw.textlength(t, font=font) <= width or not cur:
            cur = t
        else:
            lines.append(cur)
            cur = wd
    if cur:
        lines.append(cur)
    return lines


def _heat(spread: np.ndarray, scale: float) -> np.ndarray:
    """Spread in 8-bit levels -> RGB uint8 through a dark-to-bright (inferno-like) ramp."""
    t = np.clip(spread / max(scale, 1e-6), 0.0, 1.0)
    stops = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    cols = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)
    out = np.empty(t.shape + (3,), dtype=np.uint8)
    for c in range(3):
        out[..., c] = np.interp(t, stops, cols[:, c]).astype(np.uint8)
    return out


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def contact_sheet(comp: Comparison, *, zoom: int = 5, overview: tuple[int, int] | None = None):
    """The contact sheet as a Pillow image: one row per back-end (the reference first, the difference
    map last); the whole image with the crop regions marked, then each crop enlarged ``zoom`` times
    (nearest neighbour, so pixels stay pixels), labelled with back-end, time, memory and metrics."""
    from PIL import Image, ImageDraw

    s = comp.crop_size
    tile = s * zoom
    ok = [r for r in comp.runs if r.ok]
    shape = ok[0].image.shape[:2] if ok else (tile, tile)
    ih, iw = shape
    box_w, box_h = overview or (int(tile * 1.6), tile)
    scale = min(box_w / iw, box_h / ih)
    ow, oh = max(1, round(iw * scale)), max(1, round(ih * scale))
    row_h = max(tile, oh)
    label_w, pad, gap = 230, 16, 10
    f_title, f_big, f_txt, f_small = _font(22), _font(17), _font(14), _font(12)
    ncrop = len(comp.regions)
    width = pad + label_w + gap + box_w + ncrop * (tile + gap) + pad
    width = max(width, 760)

    # Rows: reference image (when it is an image), back-ends, difference map.
    rows: list[tuple[str, Any]] = []
    if comp.reference is not None and comp.reference_name not in [r.name for r in comp.runs]:
        rows.append(("reference", None))
    ref_first = [r for r in comp.runs if r.name == comp.reference_name]
    rows += [("run", r) for r in ref_first + [r for r in comp.runs if r.name != comp.reference_name]]
    if comp.spread is not None and len(ok) + (comp.reference is not None) > 1:
        rows.append(("spread", None))

    meas = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    header = [f"rawdev compare: {comp.src.name}"]
    info = [x for x in (comp.meta.get("camera"), f"{iw} x {ih}" if ok else None,
                        f"CFA {comp.meta['cfa']}" if comp.meta.get("cfa") else None) if x]
    sub = " · ".join(info)
    if comp.reference is not None:
        sub += f" · PSNR/SSIM against {comp.reference_name}"
    how = ("The back-ends agree to within rounding; crops show the most detailed regions." if comp.agree else
           f"Crops: the {ncrop} regions where the results differ most (luma max - min), {s} x {s} px shown x{zoom}.")
    notes = [n for n in comp.notes]
    sub_lines = _wrap(meas, sub, f_txt, width - 2 * pad) + _wrap(meas, how, f_txt, width - 2 * pad)
    for n in notes:
        sub_lines += _wrap(meas, "note: " + n, f_txt, width - 2 * pad)
    head_h = pad + 28 + 20 * len(sub_lines) + 8
    colhead_h = 22
    height = head_h + colhead_h + len(rows) * (row_h + gap) + pad

    sheet = Image.new("RGB", (width, height), _BG)
    d = ImageDraw.Draw(sheet)
    y = pad
    d.text((pad, y), header[0], fill=_FG, font=f_title)
    y += 30
    for ln in sub_lines:
        d.text((pad, y), ln, fill=_DIM, font=f_txt)
        y += 20
    y = head_h
    x0 = pad + label_w + gap
    d.text((x0, y), "whole image", fill=_DIM, font=f_txt)
    for k, (cy, cx) in enumerate(comp.regions):
        cxp = x0 + box_w + gap + k * (tile + gap)
        d.text((cxp, y), f"{k + 1}: x {cx}, y {cy}", fill=_CROP_COLOURS[k % len(_CROP_COLOURS)], font=f_txt)
    y += colhead_h

    def draw_image_row(img_u8: np.ndarray, ytop: int) -> None:
        im = Image.fromarray(img_u8)
        small = im.resize((ow, oh), Image.LANCZOS, reducing_gap=3.0)
        oy = ytop + (row_h - oh) // 2
        sheet.paste(small, (x0, oy))
        for k, (cy, cx) in enumerate(comp.regions):
            col = _CROP_COLOURS[k % len(_CROP_COLOURS)]
            rx0, ry0 = x0 + cx * scale, oy + cy * scale
            rx1, ry1 = x0 + (cx + s) * scale, oy + (cy + s) * scale
            d.rectangle([rx0 - 1, ry0 - 1, max(rx1, rx0 + 3) + 1, max(ry1, ry0 + 3) + 1], outline=col, width=2)
            d.text((max(rx1, rx0 + 3) + 3, ry0 - 4), str(k + 1), fill=col, font=f_small)
            crop = Image.fromarray(np.ascontiguousarray(img_u8[cy : cy + s, cx : cx + s]))
            big = crop.resize((tile, tile), Image.NEAREST)
            cxp = x0 + box_w + gap + k * (tile + gap)
            sheet.paste(big, (cxp, ytop))
            d.rectangle([cxp - 1, ytop - 1, cxp + tile, ytop + tile], outline=col, width=1)

    def label(lines: list[tuple[str, Any, Any]], ytop: int) -> None:
        ly = ytop + 2
        for text, font, colour in lines:
            for ln in _wrap(d, text, font, label_w - 8):
                if ly > ytop + row_h - 14:
                    return
                d.text((pad, ly), ln, fill=colour, font=font)
                ly += int(font.size * 1.3) if hasattr(font, "size") else 14

    for kind, run in rows:
        if kind == "reference":
            draw_image_row(_to_u8(comp.reference), y)
            label([(f"reference: {comp.reference_name}", f_big, _FG), ("ground truth", f_txt, _DIM)], y)
        elif kind == "spread":
            sp = comp.spread
            scale_lv = max(float(np.percentile(sp, 99.9)), 2.0)
            draw_image_row(_heat(sp, scale_lv), y)
            label([("difference", f_big, _FG),
                   (f"luma max - min over {'the reference and ' if comp.reference is not None else ''}the back-ends; "
                    f"bright = {scale_lv:.0f}+ levels of 255", f_txt, _DIM)], y)
        elif run.ok:
            draw_image_row(_to_u8(run.image), y)
            title = run.name + ("  (reference)" if run.name == comp.reference_name else "")
            lines = [(title, f_big, _FG)]
            if run.used and run.used != run.name and not (run.name == LIBRAW_BACKEND and run.used == LIBRAW_FALLBACK):
                lines.append((f"ran as {run.used}", f_txt, _BAD))
            lines.append((f"{_fmt_time(run.seconds)} · {run.peak_mb:.0f} MB peak", f_txt, _DIM))
            if run.psnr is not None:
                lines.append((f"PSNR {run.psnr:.2f} dB" + (f" · SSIM {run.ssim:.4f}" if run.ssim is not None else ""), f_txt, _FG))
            label(lines, y)
        else:
            d.rectangle([x0, y, x0 + box_w, y + row_h], fill=(60, 40, 40))
            d.text((x0 + 10, y + 10), "failed", fill=_BAD, font=f_big)
            label([(run.name, f_big, _FG), ("FAILED: " + (run.reason or ""), f_txt, _BAD)], y)
        y += row_h + gap
    return sheet


def write_sheet(comp: Comparison, path: str | Path, **kwargs) -> Path:
    """Render :func:`contact_sheet` and write it as PNG, atomically (replacing an older sheet)."""
    from .io.write import atomic_output

    img = contact_sheet(comp, **kwargs)
    path = Path(path)
    with atomic_output(path, overwrite=True) as tmp:
        img.save(tmp, "PNG", optimize=True)
    return path


# --------------------------------------------------------------------------------------------------
# The report


def _cell(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _rows(comp: Comparison) -> list[list[str]]:
    rows = []
    for r in comp.runs:
        name = r.name + (" (reference)" if r.name == comp.reference_name else "")
        if r.ok:
            used = "" if r.used in (r.name, LIBRAW_FALLBACK) else f" (ran as {r.used})"
            rows.append([name, "ok" + used, _fmt_time(r.seconds), f"{r.peak_mb:.0f} MB",
                         _cell(r.psnr, ".2f") + (" dB" if r.psnr is not None else ""), _cell(r.ssim, ".4f")])
        else:
            rows.append([name, "failed: " + (r.reason or ""), _fmt_time(r.seconds), "-", "-", "-"])
    return rows


def write_report(items: Sequence[tuple[Comparison, Path]], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` in ``out_dir`` for ``(comparison, sheet path)`` pairs."""
    from .io.write import atomic_output

    out_dir = Path(out_dir)
    head = ["back-end", "result", "time", "peak memory", "PSNR", "SSIM"]
    md = ["# rawdev compare", "",
          "Time: one develop after a warm-up, decode included; memory: peak resident memory above an idle worker.", ""]
    ht = ["<!doctype html><meta charset='utf-8'><title>rawdev compare</title>",
          "<style>body{font-family:sans-serif;background:#282828;color:#eee;margin:2em}"
          "table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #555;text-align:left}"
          "img{max-width:100%;border:1px solid #555}.n{color:#aaa}</style>",
          "<h1>rawdev compare</h1>",
          "<p class=n>Time: one develop after a warm-up, decode included; memory: peak resident memory above an idle worker.</p>"]
    for comp, sheet in items:
        rel = sheet.relative_to(out_dir) if sheet.is_relative_to(out_dir) else sheet
        info = " · ".join(x for x in (comp.meta.get("camera"), comp.meta.get("cfa") and f"CFA {comp.meta['cfa']}",
                                      comp.reference_name and f"reference: {comp.reference_name}") if x)
        regions = ", ".join(f"{k + 1}: x {x}, y {y}" for k, (y, x) in enumerate(comp.regions))
        md += [f"## {comp.src}", "", info, "", f"![contact sheet of {comp.src.name}]({rel.as_posix()})", "",
               "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in _rows(comp)]
        md += ["", f"Crops ({comp.crop_size} x {comp.crop_size} px): {regions}"
               + (" (back-ends agree; most detailed regions)" if comp.agree else " (where the back-ends differ most)"), ""]
        md += [f"Note: {n}" for n in comp.notes] + ([""] if comp.notes else [])
        ht += [f"<h2>{html.escape(str(comp.src))}</h2>", f"<p class=n>{html.escape(info)}</p>",
               f"<p><a href='{html.escape(rel.as_posix())}'><img src='{html.escape(rel.as_posix())}'></a></p>",
               "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
        ht += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in _rows(comp)]
        ht += ["</table>", f"<p class=n>Crops ({comp.crop_size} x {comp.crop_size} px): {html.escape(regions)}</p>"]
        ht += [f"<p class=n>Note: {html.escape(n)}</p>" for n in comp.notes]
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    for path, text in ((md_path, "\n".join(md) + "\n"), (html_path, "\n".join(ht) + "\n")):
        with atomic_output(path, overwrite=True) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return md_path, html_path
