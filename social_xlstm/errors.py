"""The package's own exception types, each shown by the CLI as one line on stderr.

``InputError`` (exit code 2): bad user input; the message must stand on its own: name the
file (or option), the field, and what was expected. ``SelfCheckError`` (exit code 1): an output
of ours failed its own check before it was written, e.g. an exported graph that disagrees with
the trained model; not the user's doing, but as clear, and nothing is left behind.
``Interrupted`` (exit code 143): stopped by a signal, with where it stopped and how to resume.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from a user: a file, a field or an option that is not what was expected."""

    def __init__(self, where: str | Path, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


class SelfCheckError(Exception):
    """Something we were about to write failed its own check; nothing was written."""


class Interrupted(BaseException):
    """The command was stopped from outside (SIGTERM, Ctrl-C) before it finished: exit code 128 +
    the signal (143, 130), as a shell reports it, with a line that says how to continue. A
    BaseException, as KeyboardInterrupt is, so that ``except Exception`` lets it through."""

    def __init__(self, message: str, exit_code: int = 128 + 15):
        super().__init__(message)
        self.exit_code = exit_code
