"""Every option several commands take is declared once (rawdev/cli/_options.py), with one help text
and one default, in every command that takes it: read from the Typer app itself."""

from __future__ import annotations

import inspect
import typing
from collections import defaultdict

import pytest
import typer
from typer.models import OptionInfo

from rawdev.cli import _options, app


def _commands(t: typer.Typer, prefix: str = ""):
    """(``"eval demosaic"``, callback) for every command of the app, sub-apps included."""
    for c in t.registered_commands:
        yield (prefix + (c.name or c.callback.__name__)).strip(), c.callback
    for g in t.registered_groups:
        yield from _commands(g.typer_instance, f"{prefix}{g.name} ")


def _options_of(callback):
    """``{"--tile": (OptionInfo, default)}`` of one command, from its ``Annotated`` parameters."""
    hints = typing.get_type_hints(callback, include_extras=True)
    found = {}
    for name, param in inspect.signature(callback).parameters.items():
        info = next((m for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, OptionInfo)), None)
        if info is None:
            continue
        # in an Annotated declaration Typer keeps the first flag where a default would go
        first = [info.default] if isinstance(info.default, str) and info.default.startswith("-") else []
        decls = [d for d in first + list(info.param_decls or ()) if d.startswith("--")]
        flag = max(decls, key=len).split("/")[0] if decls else "--" + name.replace("_", "-")
        found[flag] = (info, param.default)
    return found


@pytest.fixture(scope="module")
def uses():
    table = defaultdict(list)  # flag -> [(command, OptionInfo, default)]
    for cmd, cb in _commands(app):
        for flag, (info, default) in _options_of(cb).items():
            table[flag].append((cmd, info, default))
    return table


SHARED = {id(a.__metadata__[0]): name for name, a in vars(_options).items()
          if typing.get_origin(a) is typing.Annotated and isinstance(a.__metadata__[0], OptionInfo)}


def test_the_app_is_read_whole(uses):
    # the walk sees the commands and their options (a broken walk would pass everything below)
    commands = {c for u in uses.values() for c, _, _ in u}
    assert {"develop", "batch", "compare", "demo", "info", "look fit", "eval demosaic", "eval roundtrip",
            "train jdd", "train cameranet", "compress distill", "compress int8"} <= commands
    assert len(uses["--device"]) >= 10 and len(uses["--tile"]) == 3


def test_an_option_of_several_commands_is_declared_once(uses):
    for flag, u in uses.items():
        if len(u) < 2 or flag in _options.PER_COMMAND_MEANING:
            continue
        infos = {id(info) for _, info, _ in u}
        assert len(infos) == 1, f"{flag} is declared {len(infos)} times: {[c for c, _, _ in u]}"
        assert infos <= SHARED.keys(), f"{flag} is shared by {[c for c, _, _ in u]} but not declared in cli/_options.py"
        assert len({info.help for _, info, _ in u}) == 1


def test_an_option_of_several_commands_has_one_default(uses):
    for flag, u in uses.items():
        if len(u) < 2 or flag in _options.PER_COMMAND_DEFAULTS or flag in _options.PER_COMMAND_MEANING:
            continue
        defaults = {(c, repr(d)) for c, _, d in u}
        assert len({d for _, d in defaults}) == 1, f"{flag} has several defaults: {sorted(defaults)}"


def test_the_developer_options_default_to_pipeline_config(uses):
    from rawdev.config import PipelineConfig

    cfg = PipelineConfig()
    for flag, field in (("--tile", "tile"), ("--backend", "backend"), ("--wb", "wb"), ("--exposure", "exposure_ev"),
                        ("--device", "device"), ("--look", "look"), ("--lens", "lens"), ("--noise", "noise")):
        for cmd, _, default in uses[flag]:
            if cmd in ("develop", "batch", "compare", "demo"):
                value = getattr(default, "value", default)
                assert value == getattr(cfg, field), (flag, cmd, default)


def test_the_exceptions_are_real(uses):
    # a name listed as meaning different things, or defaulting per command, must still be so
    for flag in _options.PER_COMMAND_MEANING:
        assert len({id(info) for _, info, _ in uses[flag]}) > 1, f"{flag}: one declaration; drop it from PER_COMMAND_MEANING"
    for flag in _options.PER_COMMAND_DEFAULTS:
        assert len({repr(d) for _, _, d in uses[flag]}) > 1, f"{flag}: one default; drop it from PER_COMMAND_DEFAULTS"


def test_no_option_is_declared_twice_in_a_module():
    # every typer.Option( outside _options.py is used by one command: its flag appears once in the CLI
    import re
    from pathlib import Path

    cli = Path(_options.__file__).parent
    flags = defaultdict(list)
    for f in cli.glob("*.py"):
        if f.name == "_options.py":
            continue
        for m in re.finditer(r'typer\.Option\(\s*"(--[\w-]+)', f.read_text()):
            flags[m.group(1)].append(f.name)
    shared = {m.group(1) for m in re.finditer(r'typer\.Option\(\s*"(--[\w-]+)', Path(_options.__file__).read_text())}
    for flag, where in flags.items():
        if flag in _options.PER_COMMAND_MEANING:
            continue
        assert flag not in shared, f"{flag} is declared in {where} and in _options.py"
        assert len(where) == 1, f"{flag} is declared in {where}"
