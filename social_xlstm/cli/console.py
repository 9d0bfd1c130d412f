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
