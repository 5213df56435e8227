"""The ``logos`` command line.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds its
parser and sets ``func`` (called with the parsed arguments, returning an exit code). Modules keep
heavy imports inside their handlers so that ``logos --help`` stays fast. Packages that the engine
must not import (``training``) contribute commands through the ``logos.commands`` entry-point group.
A sub-command whose module fails to import or register is never dropped silently: every
invocation prints one line naming it and the reason, and ``logos``, ``logos --help`` and that
command exit 1 (the other commands still run).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

from engine._version import __version__

# sub-command module -> registered by that module (one module may register several commands)
COMMAND_MODULES = [
    "engine.cli.doctor",  # logos doctor
    "engine.cli.codec",  # logos encode / logos decode
    "engine.cli.models",  # logos models ...
    "engine.cli.project",  # logos project ...
    "engine.cli.generate",  # logos generate
    "engine.cli.dock",  # logos dock
    "engine.cli.engine_process",  # logos engine --stdio
]


class CliError(Exception):
    """An error meant for the user: printed as one line, exit code 2, no traceback."""


# the command words of each module, to tell whether the command asked for is a broken one
MODULE_WORDS = {
    "engine.cli.doctor": ("doctor",), "engine.cli.codec": ("encode", "decode"),
    "engine.cli.models": ("models",), "engine.cli.project": ("project",),
    "engine.cli.generate": ("generate",), "engine.cli.dock": ("dock",),
    "engine.cli.engine_process": ("engine",),
}


class LogosParser(argparse.ArgumentParser):
    """The top-level parser; ``broken`` lists (command words, module, reason) of the sub-commands
    whose module failed to import or register."""

    broken: list[tuple[tuple[str, ...], str, str]]


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def build_parser() -> LogosParser:
    """Every sub-command's parser. A module that fails to import or to register (a missing
    dependency, a broken installation) is recorded in ``parser.broken``, never silently dropped:
    ``main`` says so and fails."""
    parser = LogosParser(
        prog="logos",
        description="LOGOS Desktop command line: encode structures, generate, manage models and projects.",
    )
    parser.broken = []
    parser.add_argument("--version", action="version", version=f"logos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        words = MODULE_WORDS.get(name, (name.rsplit(".", 1)[-1],))
        try:
            importlib.import_module(name).register(sub)
        except Exception as exc:  # noqa: BLE001 - reported by main, one line per module
            parser.broken.append((words, name, _why(exc)))
    for ep in entry_points(group="logos.commands"):
        try:
            ep.load()(sub)
        except Exception as exc:  # noqa: BLE001
            parser.broken.append(((ep.name,), ep.value, _why(exc)))
    return parser


# commands that run llama.cpp: its libraries are loaded before anything imports numpy
RUNTIME_COMMANDS = {"engine", "generate", "models", "doctor"}


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if RUNTIME_COMMANDS.intersection(words[:1]):
        from engine.runtime.native import preload

        preload()
    parser = build_parser()
    if parser.broken:
        for cmd_words, module, why in parser.broken:
            print(f"logos: error: the '{' / '.join(cmd_words)}' command ({module}) cannot be loaded: {why}; "
                  "this installation is incomplete: run installer/setup.sh again", file=sys.stderr)
        asked = words[0] if words else None
        broken_words = {w for cmd_words, _, _ in parser.broken for w in cmd_words}
        if asked is None or asked.startswith("-") or asked in broken_words:
            return 1  # logos, logos --help, logos --version and the broken command itself fail
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"logos {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"logos {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
