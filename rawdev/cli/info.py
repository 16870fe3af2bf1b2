"""``rawdev info``: what a RAW file holds and whether rawdev can develop it (like ``dcraw -i -v``).

The file is decoded with the same reader the developer uses (:func:`rawdev.io.raw.read_raw`), so
"developable: yes" means its sensor data unpacked without error, and the metadata shown are the ones
``develop`` will use.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import EXIT_FAILED, RawdevError
from ._options import JsonOpt

__all__ = ["info_command", "file_info", "register"]

_ORIENTATION_TEXT = {
    1: "normal", 2: "mirrored left-right", 3: "rotated 180", 4: "mirrored top-bottom",
    5: "transposed", 6: "rotate 90 clockwise to view", 7: "transversed", 8: "rotate 90 counter-clockwise to view",
}


def _round(v, nd: int = 4):
    return None if v is None else [round(float(x), nd) for x in v]


def _camera(make: str | None, model: str | None) -> str | None:
    if make and model and model.lower().startswith(make.split()[0].lower()):
        return model  # "Canon" + "Canon EOS 6D"
    return " ".join(x for x in (make, model) if x) or None


def _developable(meta) -> tuple[bool, str]:
    from ..backends.registry import list_backends

    specs = list_backends()
    kind = meta.cfa.kind
    if meta.num_colors == 1:
        return True, "yes: a monochrome sensor, developed as grey by LibRaw (no demosaic, no white balance)"
    if meta.num_colors < 3:
        return False, (f"no: LibRaw reports {meta.num_colors} colour channels ({meta.cfa.color_desc}); "
                       "rawdev develops monochrome, 3- and 4-colour sensors")
    if kind == "linear":
        return True, "yes: already demosaiced (linear DNG); no demosaicking, every back-end gives the same result"
    if kind == "other":
        return True, (f"yes, through LibRaw's AHD demosaic ({meta.num_colors}-colour {meta.cfa.color_desc} filter "
                      "array; rawdev's back-ends need an RGB Bayer or X-Trans sensor)")
    names = [s.name for s in specs if kind in s.cfa_types]
    label = {"bayer": f"Bayer {meta.cfa.bayer_pattern}", "xtrans": "X-Trans"}.get(kind, kind)
    others = [s.name for s in specs if kind not in s.cfa_types]
    text = f"yes: {label}; back-ends {', '.join(names) if names else 'none'}"
    if others:
        text += f" (others, {', '.join(others)}, fall back to LibRaw's AHD)"
    return True, text


def _counted(names) -> str:
    """``["A", "A", "B"]`` -> ``"A (x2), B"``."""
    from collections import Counter

    return ", ".join(n if k == 1 else f"{n} (x{k})" for n, k in Counter(names).items())


def _clipped(raw) -> dict[str, float] | None:
    """Per colour, the fraction of photosites at the sensor's clip point (as ``--highlights
    reconstruct`` counts them: within ``CLIP_MARGIN`` of the white level), from a quarter of the rows
    (one CFA period's rows in every four, so every colour is counted); None for data LibRaw renders
    itself."""
    import numpy as np

    from ..stages.highlights import CLIP_MARGIN

    if raw.colors is None or raw.data.ndim != 2 or raw.data.size == 0:
        return None
    m = raw.meta
    period = m.cfa.period
    hits, counts = np.zeros(3), np.zeros(3)
    for r in range(period):
        rows = slice(r, None, 4 * period)
        data, colours, black = raw.data[rows], np.asarray(raw.colors[rows]), np.asarray(raw.black_map[rows], np.float32)
        hit = data >= black + np.float32(CLIP_MARGIN) * (np.float32(m.white_level) - black)
        hits += np.bincount(colours[hit].ravel(), minlength=3)[:3]
        counts += np.bincount(colours.ravel(), minlength=3)[:3]
    return {"RGB"[c]: float(hits[c] / counts[c]) for c in range(3) if counts[c]}


def file_info(path: Path) -> dict[str, Any]:
    """Everything ``rawdev info`` reports about ``path``, as a JSON-ready dict.

    Raises:
        RawdevError: the file cannot be read or decoded (the reason says why).
    """
    from ..io.preview import read_preview
    from ..io.raw import read_raw
    from ..stages.orientation import oriented_size

    raw = read_raw(path)
    m = raw.meta
    e = m.exif
    out_w, out_h = oriented_size(m.width, m.height, m.orientation)
    cfa: dict[str, Any] = {"kind": m.cfa.kind, "color_desc": m.cfa.color_desc, "colors": m.num_colors}
    if m.cfa.kind == "bayer":
        cfa["pattern"] = m.cfa.bayer_pattern
    elif m.cfa.cell is not None:
        letters = "RGB" if m.cfa.kind == "xtrans" else m.cfa.color_desc
        cfa["cell"] = ["".join(letters[int(c)] if int(c) < len(letters) else "?" for c in row) for row in m.cfa.cell]
    try:
        p = read_preview(path)
        preview: dict[str, Any] | None = {"format": p.kind, "width": p.width, "height": p.height, "bytes": p.nbytes}
    except RawdevError as err:
        preview = None
        preview_reason = err.reason
    ok, text = _developable(m)
    wl = float(m.white_level)
    info: dict[str, Any] = {
        "file": str(path),
        "bytes": path.stat().st_size,
        "camera": _camera(e.make, e.model),
        "lens": e.lens,
        "datetime": e.datetime_original.isoformat(sep=" ") if e.datetime_original else None,
        "exposure_time_s": e.exposure_time_s,
        "f_number": e.f_number,
        "iso": e.iso,
        "focal_length_mm": e.focal_length_mm,
        "width": m.width,
        "height": m.height,
        "output_width": out_w,
        "output_height": out_h,
        "cfa": cfa,
        "black_level": [round(b, 2) for b in m.black_level],
        "white_level": wl,
        "bits": math.ceil(math.log2(wl + 1)) if wl > 0 else None,
        "camera_wb": _round(m.camera_wb),
        "as_shot_white_xy": None if m.white_xy is None else [round(v, 4) for v in m.white_xy.xy],
        "daylight_wb": _round(m.daylight_wb),
        "rgb_cam": None if m.rgb_cam is None else [_round(r) for r in m.rgb_cam],
        "noise_profile": None if m.noise_profile is None else [float(x) for x in m.noise_profile],
        "gain_maps": len(m.gain_maps),
        "clipped": _clipped(raw),
        "opcodes_not_applied": list(m.opcodes_skipped),
        "orientation": m.orientation,
        "preview": preview,
        "developable": ok,
        "develop_notes": text,
    }
    if preview is None:
        info["preview_reason"] = preview_reason
    if ok:
        from ..stages.noise import choose_noise_model
        from ..stages.white_balance import white_balance_for

        # quick: a preview fit on a LibRaw-rendered sensor runs on LibRaw's fast render (0.18 s, not
        # the develop's 0.52 s on a Canon G1), so its gains are an estimate of the develop's
        wb = white_balance_for(raw, quick=True)
        info["white_balance"] = {"gains": _round(wb.gains), "source": wb.source, "notice": wb.notice,
                                 "estimate": wb.source == "preview" and raw.rendered_by_libraw}
        # LibRaw-rendered sensors (4-colour) carry no mosaic here, and no back-end takes a noise level
        info["noise_model"] = choose_noise_model(raw).to_json() if raw.data.size else None
    return info


def _fmt_num(v, fmt: str) -> str | None:
    return None if v is None else format(v, fmt)


def _per_channel(values, desc: str) -> str:
    """``[510, 500, 520, 530]`` with ``"RGBG"`` -> ``"R 510 G 500 B 520 G 530"`` (LibRaw's channel order)."""
    letters = desc if len(desc) >= len(values) else "RGBG"
    return " ".join(f"{letters[i]} {v:g}" for i, v in enumerate(values))


_WB_TEXT = {"camera": "as shot", "preview": "fitted to the embedded preview", "auto": "grey-edge, automatic",
            "daylight": "daylight multipliers", "custom": "fixed multipliers", "temperature": "a colour temperature",
            "monochrome": "none: a monochrome sensor"}


def _human(info: dict[str, Any]) -> str:
    from ..io.metadata import clean_exposure_time

    def wb(v):
        if v is None:
            return "not stored"
        return "R {:.3f}  G {:.3f}  B {:.3f}".format(*v[:3]) + (f"  G2 {v[3]:.3f}" if len(v) > 3 else "")

    shot = [x for x in (
        info["datetime"],
        None if info["exposure_time_s"] is None else f"{clean_exposure_time(info['exposure_time_s'])} s",
        None if info["f_number"] is None else f"f/{info['f_number']:.1f}",
        None if info["iso"] is None else f"ISO {info['iso']:g}",
        None if info["focal_length_mm"] is None else f"{info['focal_length_mm']:g} mm",
    ) if x]
    cfa = info["cfa"]
    cfa_text = {"bayer": f"Bayer {cfa.get('pattern')}", "xtrans": "X-Trans 6x6", "linear": "none (linear, already demosaiced)"}.get(
        cfa["kind"], f"{cfa['colors']}-colour {cfa['color_desc']}")
    if "cell" in cfa:
        cfa_text += " [" + " / ".join(cfa["cell"]) + "]"
    if info["rgb_cam"] is None:
        matrix = "none (camera RGB is taken as sRGB)"
    else:
        matrix = "camera RGB -> linear sRGB " + "  ".join("[" + " ".join(f"{x:+.4f}" for x in row) + "]" for row in info["rgb_cam"])
    o = info["orientation"]
    p = info["preview"]
    preview = (f"{'JPEG' if p['format'] == 'jpeg' else 'bitmap'} {p['width']} x {p['height']} ({p['bytes'] / 1024:.0f} KiB)"
               if p else f"none ({info.get('preview_reason', 'not found')})")
    size = f"{info['width']} x {info['height']} (visible sensor area)"
    if (info["output_width"], info["output_height"]) != (info["width"], info["height"]):
        size += f"; output {info['output_width']} x {info['output_height']} after rotation"
    rows = [
        ("camera", info["camera"] or "unknown"),
        ("lens", info["lens"] or "unknown"),
        ("shot", ", ".join(shot) or "unknown"),
        ("size", size),
        ("CFA", cfa_text),
        ("black / white", _per_channel(info["black_level"], info["cfa"]["color_desc"]) + f" / {info['white_level']:g}"
         + (f" ({info['bits']}-bit)" if info["bits"] else "")),
        ("WB as shot", wb(info["camera_wb"]) + ("" if info["as_shot_white_xy"] is None else
                        " (from AsShotWhiteXY x {:.4f}, y {:.4f})".format(*info["as_shot_white_xy"]))),
        ("WB daylight", wb(info["daylight_wb"])),
        ("colour matrix", matrix),
        *([("lens shading", f"{info['gain_maps']} GainMap opcode(s) in OpcodeList2, applied to the mosaic")]
          if info["gain_maps"] else []),
        *([("DNG opcodes", _counted(info["opcodes_not_applied"]) + " in OpcodeList2 (not applied by rawdev; "
            "LibRaw's decoder applies some itself)")] if info["opcodes_not_applied"] else []),
        *([("clipped", ", ".join(f"{c} {v:.2%}" for c, v in info["clipped"].items())
            + ("; -H reconstruct rebuilds them from the other colours" if max(info["clipped"].values()) >= 1e-4
               else ""))] if info["clipped"] else []),
        ("orientation", f"{o} ({_ORIENTATION_TEXT.get(o, '?')})"),
        ("preview", preview),
        ("developable", info["develop_notes"]),
    ]
    if info.get("white_balance"):
        w = info["white_balance"]
        how = _WB_TEXT.get(w["source"], w["source"])
        if w.get("estimate"):
            how += ", estimated on a quick render; the develop fits on its own"
        rows.insert(-4, ("WB develop", wb(w["gains"]) + f" ({how})"))
    if info["noise_profile"]:
        rows.insert(-2, ("noise profile", "var = {:.3g} x + {:.3g}".format(*info["noise_profile"])))
    if info.get("noise_model"):
        n = info["noise_model"]
        rows.insert(-2, ("noise model", "var = {:.3g} x + {:.3g} (green; sigma {:.3g} at 18 % grey) from {}".format(
            n["shot"][min(1, len(n["shot"]) - 1)], n["read"][min(1, len(n["read"]) - 1)], n["sigma_18"],
            {"profile": "the DNG NoiseProfile", "estimate": "the data (estimated)"}.get(n["source"], n["source"]))))
    head = f"{info['file']} ({info['bytes'] / 1e6:.2f} MB)"
    return "\n".join([head] + [f"  {k:<14} {v}" for k, v in rows])


def info_command(
    files: Annotated[list[Path], typer.Argument(help="RAW files.", show_default=False, readable=False)],
    json_lines: JsonOpt = False,
) -> None:
    """Show what RAW files hold (camera, lens, size, CFA, black/white level, white balance, colour matrix,
    orientation, embedded preview) and whether rawdev can develop them. Exit code 1 if any cannot be read."""
    failed = 0
    for i, f in enumerate(files):
        try:
            info = file_info(f)
        except RawdevError as e:
            failed += 1
            print(f"rawdev: error: {e.one_line()}", file=sys.stderr, flush=True)
            if json_lines:
                print(json.dumps({"file": str(f), "developable": False, "error": type(e).__name__, "reason": e.reason}), flush=True)
            continue
        except MemoryError:
            failed += 1
            print(f"rawdev: error: {f}: out of memory", file=sys.stderr, flush=True)
            continue
        if json_lines:
            print(json.dumps(info), flush=True)
        else:
            print(("\n" if i else "") + _human(info), flush=True)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Mount ``rawdev info`` on the application."""
    app.command("info", no_args_is_help=True)(info_command)
