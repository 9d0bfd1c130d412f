"""The ``social-xlstm`` command line: argv in, calls into the package, words out. No logic here.

The commands live in ``commands.py``; this module only starts them, so that the program can take
SIGTERM and Ctrl-C (one line, no traceback) before the slow imports of the command line begin.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (``commands.main``)."""
    from social_xlstm.cli.commands import main as run

    return run(argv)


def entry_point() -> None:
    """The ``social-xlstm`` program (and ``python -m social_xlstm.cli``)."""
    from social_xlstm.stopping import quiet_start

    quiet_start()
    sys.exit(main())
