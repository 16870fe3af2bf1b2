"""``rawdev look fit``: fit the camera's look to a RAW file's embedded preview and save it, to apply to
a batch shot with the same settings (``rawdev develop --look look.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._options import OverwriteOpt, handle_errors

__all__ = ["app"]

app = typer.Typer(help="Camera looks fitted to embedded previews.", no_args_is_help=True)


@app.command("fit", no_args_is_help=True)
def fit_command(
    src: Annotated[Path, typer.Argument(help="RAW file with an embedded preview.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Look file to write (JSON).")] = Path("look.json"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Fit the map from rawdev's neutral render to the camera's preview (tone curve + 3D LUT)."""
    _fit(src, output, overwrite)


@handle_errors
def _fit(src: Path, output: Path, overwrite: bool) -> None:
    from ..errors import UnsupportedFileError
    from ..io.preview import preview_image
    from ..io.raw import read_raw
    from ..io.write import atomic_output
    from ..pipeline import PipelineConfig, develop_raw
    from ..stages.look import MIN_PREVIEW_SIDE, fit_look

    prev = preview_image(src)
    if min(prev.shape[:2]) < MIN_PREVIEW_SIDE:
        raise UnsupportedFileError(f"the embedded preview ({prev.shape[1]} x {prev.shape[0]}) is too small to fit a look", src)
    neutral = develop_raw(read_raw(src), PipelineConfig(output_bits=None)).image
    try:
        look = fit_look(neutral, prev, source=src.name)
    except ValueError as e:
        raise UnsupportedFileError(f"the embedded preview cannot be fitted ({e})", src) from None
    with atomic_output(output, overwrite) as tmp:
        tmp.write_text(look.to_json())
    print(f"{src} -> {output}")
