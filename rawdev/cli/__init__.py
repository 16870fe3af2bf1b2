"""The ``rawdev`` command line (Typer). One module per command; this file wires them together."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

try:  # Typer >= 0.24 carries its own copy of Click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # older Typer runs on Click
    from click.exceptions import ClickException, NoArgsIsHelpError

from .. import __version__
from ..config import PipelineConfig
from ..errors import EXIT_INTERRUPTED
from ._options import BackendOpt, OverwriteOpt, handle_errors
from .develop import develop_command

__all__ = ["app", "main", "RawdevGroup"]


def _hide_flag_types(command) -> None:
    """Flags take no value: give them an empty metavar, so help shows no ``<bool>`` type for them."""
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    if not getattr(command, "_rawdev_help_hidden", False):  # --help is made per call, not a param
        make_help = command.get_help_option

        def get_help_option(ctx, make_help=make_help):
            opt = make_help(ctx)
            if opt is not None and opt.metavar is None:
                opt.metavar = ""
            return opt

        command.get_help_option = get_help_option
        command._rawdev_help_hidden = True
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_types(sub)


class RawdevGroup(TyperGroup):
    """The root command: every usage error (a bad option value, an unknown option, a missing
    argument) is one line ``rawdev: error: ...`` on stderr and exit 2, as rawdev's own usage errors
    are (rawdev/cli/_options.py), instead of Typer's boxed panel."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        _hide_flag_types(self)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as e:  # `rawdev develop` alone: its help, as before
            print(e.ctx.get_help() if e.ctx is not None else e.format_message())
            sys.exit(e.exit_code)
        except ClickException as e:
            msg = " ".join(e.format_message().split())
            print(f"rawdev: error: {msg}", file=sys.stderr)
            sys.exit(e.exit_code)
        except typer.Abort:
            print("rawdev: interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        # standalone_mode=False returns typer.Exit's code instead of exiting
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="rawdev",
    cls=RawdevGroup,
    help="Develop camera RAW files (DNG, CR2, NEF, ARW, RAF, ...) into sRGB images, with classical or learned back-ends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"rawdev {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """rawdev: a RAW photo developer."""


app.command("develop", no_args_is_help=True)(develop_command)


@app.command("demo")
def demo_command(
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Where to write rawdev-demo.dng and rawdev-demo.jpg.")] = Path("."),
    backend: BackendOpt = PipelineConfig.backend,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a sample DNG made by rawdev's own code (colour patches, grey ramp, fine detail, a blown
    highlight) and develop it to JPEG."""
    _demo(out_dir, backend, overwrite)


@handle_errors
def _demo(out_dir: Path, backend: str, overwrite: bool = False) -> None:
    from ..errors import OutputExistsError
    from ..synthetic import write_demo_dng
    from .develop import develop_file

    dng, jpg = out_dir / "rawdev-demo.dng", out_dir / "rawdev-demo.jpg"
    for p in (dng, jpg):
        if p.exists() and not overwrite:  # as develop: nothing is replaced unless asked
            raise OutputExistsError("output exists (use --overwrite to replace it)", p)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_demo_dng(dng)
    res = develop_file(dng, jpg, PipelineConfig(backend=backend), quality=92, overwrite=True)
    h, w = res.shape[:2]
    print(f"wrote {dng} (synthetic 14-bit RGGB DNG) and developed it with {res.backend} -> {jpg} ({w}x{h})")


_DOMAIN_LABELS = {
    "mosaic_linear_wb": "linear mosaic",
    "mosaic_srgb_wb": "sRGB-encoded mosaic",
    "linear_camera_wb": "linear camera RGB",
    "srgb_display": "display sRGB",
    "raw_file": "RAW file",
    "linear_srgb": "linear sRGB",
}


@app.command("backends")
def backends_command(
    pattern: Annotated[str, typer.Argument(help="Shell wildcard on names.")] = "*",
) -> None:
    """List the back-ends: name, kind, sensors, what they consume and produce, weights."""
    _backends(pattern)


@handle_errors
def _backends(pattern: str) -> None:
    from ..backends.registry import list_backends
    from ..errors import UsageError

    specs = list_backends(pattern)
    if not specs:
        known = ", ".join(s.name for s in list_backends())
        raise UsageError(f"no back-end matches {pattern!r}; known: {known}")
    w = max((len(s.name) for s in specs), default=10)
    for s in specs:
        io = f"{_DOMAIN_LABELS.get(s.input_domain, s.input_domain)} -> {_DOMAIN_LABELS.get(s.output_domain, s.output_domain)}"
        weights = f"; weights: {', '.join(s.weights)}" if s.weights else ""
        print(f"{s.name:<{w}} {s.kind:<9} {'/'.join(sorted(s.cfa_types)):<12} {io}{weights}")
        print(f"{'':<{w}} {s.description}")


def _mount_optional(module: str, name: str) -> None:
    # Sub-apps live in their own modules; each is mounted when present.
    import importlib

    try:
        mod = importlib.import_module(f"rawdev.cli.{module}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("rawdev.cli"):
            return
        raise
    if hasattr(mod, "app"):
        app.add_typer(mod.app, name=name)
    elif hasattr(mod, "register"):
        mod.register(app)


for _module, _name in (("evaluate", "eval"), ("train", "train"), ("batch", "batch"), ("info", "info"), ("compare", "compare"),
                       ("look", "look"), ("compress", "compress")):
    _mount_optional(_module, _name)


def main() -> None:
    """Console-script entry point."""
    from ..memory import tune_allocator

    tune_allocator()
    try:
        app()
    except BrokenPipeError:  # `rawdev backends | head`
        sys.stderr.close()
        sys.exit(0)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside a command's own handling (its last steps)
        print("rawdev: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
