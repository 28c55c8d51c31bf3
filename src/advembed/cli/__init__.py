"""The ``advembed`` command line: one module per command, sharing the option groups of
:mod:`advembed.cli.options` (every flag derived from a settings class)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from advembed.cli import attack, datasets, eval, mlm, predict, reconstruct, report, train
from advembed.cli.options import Parser
from advembed.errors import AdvembedError

COMMANDS = {module.NAME: module for module in (train, eval, predict, attack, reconstruct,
                                                report, datasets, mlm)}
"""Each command module has ``NAME``, ``add(subparsers)`` and ``run(args) -> exit code``;
``ALIASES`` are further names of the same command."""
BY_NAME = COMMANDS | {alias: module for module in COMMANDS.values()
                      for alias in getattr(module, "ALIASES", ())}


def build_parser() -> Parser:
    parser = Parser(
        prog="advembed",
        description="Robust fine-tuning by adversarial training in the embedding space.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS.values():
        module.add(sub)
    return parser


def _version() -> str:
    from advembed import __version__

    return f"advembed {__version__}"


def _stop_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so staged run folders are removed on the way out."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    _stop_cleanly_on_sigterm()
    try:
        return BY_NAME[args.command].run(args)
    except AdvembedError as exc:
        print(f"advembed {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("advembed: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "build_parser", "main"]
