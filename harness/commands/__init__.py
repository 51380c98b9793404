"""Subcommands of `python -m harness`, one module each; registered in harness.cli.COMMANDS."""
