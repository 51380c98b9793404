"""`python -m harness <command> ...`: a small argparse dispatcher.

Each subcommand lives in its own module under `harness.commands` and exposes
`HELP: str`, `add_arguments(parser)` and `run(args) -> int` (the exit status). Register a new
one by adding a line to `COMMANDS`. Modules are imported only when their command runs, so
`python -m harness cases` never imports a framework.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# name -> module path (the module has HELP, add_arguments, run)
COMMANDS: dict[str, str] = {
    "cases": "harness.commands.cases",
    "impls": "harness.impls_cli",
    "run": "harness.commands.run",
    "replay": "harness.commands.replay",
    "rules": "harness.commands.rules",
    "report": "harness.report_cli",
    "bench": "harness.commands.bench",
}


def _parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(prog="python -m harness", description="Keras total-loss differential harness")
    sub = parser.add_subparsers(dest="command", metavar="command")
    modules: dict[str, object] = {}
    # Import only the module of the command asked for (and describe the others by name).
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, path in COMMANDS.items():
        if name == wanted:
            module = importlib.import_module(path)
            modules[name] = module
            p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
            module.add_arguments(p)
        else:
            sub.add_parser(name, help=f"(see python -m harness {name} --help)")
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = _parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(modules[args.command].run(args) or 0)
