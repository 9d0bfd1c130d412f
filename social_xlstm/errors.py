"""The one exception type for bad user input.

The CLI turns an ``InputError`` into a single line on stderr and exit code 2, so its message
must stand on its own: name the file (or option), the field, and what was expected.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from a user: a file, a field or an option that is not what was expected."""

    def __init__(self, where: str | Path, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")
