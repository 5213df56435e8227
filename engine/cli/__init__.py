"""The ``logos`` command line.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds its
parser and sets ``func`` (called with the parsed arguments, returning an exit code). Modules keep
heavy imports inside their handlers so that ``logos --help`` stays fast. Packages that the engine
must not import (``training``) contribute commands through the ``logos.commands`` entry-point group.
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


def _load_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:  # a command whose module is not in this build
        if exc.name == name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logos",
        description="LOGOS Desktop command line: encode structures, generate, manage models and projects.",
    )
    parser.add_argument("--version", action="version", version=f"logos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = _load_module(name)
        if module is not None:
            module.register(sub)
    for ep in entry_points(group="logos.commands"):
        try:
            register = ep.load()
        except ModuleNotFoundError:
            continue
        register(sub)
    return parser


# commands that run llama.cpp: its libraries are loaded before anything imports numpy
RUNTIME_COMMANDS = {"engine", "generate", "models", "doctor"}


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if RUNTIME_COMMANDS.intersection(words[:1]):
        from engine.runtime.native import preload

        preload()
    parser = build_parser()
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
