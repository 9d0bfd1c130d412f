"""The consoles the commands print with. Piped output (a log, CI) has no terminal width, and rich
would assume 80 columns, cutting option names in --help and numbers in the tables: such output
gets room for them instead."""

from __future__ import annotations

import os
import sys

import typer.rich_utils
from rich.console import Console

OUTPUT_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
if OUTPUT_WIDTH and "TERMINAL_WIDTH" not in os.environ:
    typer.rich_utils.MAX_WIDTH = OUTPUT_WIDTH


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, width=OUTPUT_WIDTH)


def notice(console: Console, text: str, *, kind: str = "note") -> None:
    """One note (or warning) line: soft-wrapped, so a long path or id stays whole, and without
    rich's highlighting of numbers; ``text`` is markup, with the user's text in it escaped."""
    console.print(f"[yellow]{kind}:[/] {text}", highlight=False, soft_wrap=True)


def first_few(names, count: int = 3) -> str:
    """The first ``count`` names, then '...' when there are more: what a one-line note lists."""
    names = [str(name) for name in names]
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "")
