"""`python -m harness <command> ...`: a small argparse dispatcher.

Each subcommand lives in its own module under `harness.commands` and exposes
`HELP: str`, `add_arguments(parser)` and `run(args) -> int` (the exit status). Register a new
one by adding a line to `COMMANDS`: its module and the one line `python -m harness --help`
shows for it. Modules are imported only when their command runs, so `python -m harness
--help` and `python -m harness cases` never import a framework (TensorFlow, Keras, JAX, torch).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# name -> (module path (the module has HELP, add_arguments, run), one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "cases": ("harness.commands.cases", "draw, write, show and count Cases (no framework needed)"),
    "impls": ("harness.commands.impls", "which implementations can run here, with their versions"),
    "run": ("harness.commands.run", "run cases through implementations, judge every verdict"),
    "replay": ("harness.commands.replay", "rerun one case file everywhere, breakdowns side by side"),
    "rules": ("harness.commands.rules", "the semantic rules that separate Keras implementations"),
    "judge": ("harness.commands.judge", "re-judge stored results from observations, no framework"),
    "changelog": ("harness.commands.changelog", "how the assembled loss changed, release by release"),
    "migrate": ("harness.commands.migrate", "what separates two releases' losses, measured on cases"),
    "bisect": ("harness.commands.bisect", "the first release and nightly build whose loss changed"),
    "fingerprint": ("harness.commands.fingerprint", "which alternative each rule took in a run, vs the table"),
    "report": ("harness.commands.report", "the HTML report and findings.json from results files"),
    "bench": ("harness.commands.bench", "cases/s of the harness against the naive way"),
}


class _HelpFormatter(argparse.HelpFormatter):
    """argparse measures the command names at their parent's indentation, so a name longer than
    the others ("changelog") wrapped its line; this measures them where they are printed."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        names = [len(sub.metavar or sub.dest) for sub in self._iter_indented_subactions(action)]
        if names:
            self._action_max_length = max(self._action_max_length,
                                          max(names) + self._current_indent + 2 * self._indent_increment)


def _parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(prog="python -m harness", description="Keras total-loss differential harness",
                                     epilog="python -m harness COMMAND --help describes one command",
                                     formatter_class=_HelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="command")
    modules: dict[str, object] = {}
    # Import only the module of the command asked for; the others are listed by their summary.
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (path, summary) in COMMANDS.items():
        if name == wanted:
            module = importlib.import_module(path)
            modules[name] = module
            p = sub.add_parser(name, help=summary, description=module.HELP,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
            module.add_arguments(p)
        else:
            sub.add_parser(name, help=summary)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = _parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(modules[args.command].run(args) or 0)
