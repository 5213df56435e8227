"""``logos engine --stdio``: run the engine process (newline-delimited JSON on stdin/stdout)."""

from __future__ import annotations


def run(args) -> int:
    from engine.cli import CliError

    if not args.stdio:
        raise CliError("only --stdio is supported: logos engine --stdio (see engine/process/protocol.py)")
    from engine.process.server import main

    return main()


def register(sub) -> None:
    p = sub.add_parser("engine", help="run the generation engine process (JSON lines over stdio)")
    p.add_argument("--stdio", action="store_true", help="speak the protocol on stdin/stdout")
    p.set_defaults(func=run)
