"""SIGTERM ends an import as Ctrl-C does: by an exception, so that the way out runs.

Left to its default action, SIGTERM ended the command where it stood: its parse workers lived
on, orphaned (waiting for work for minutes, holding the caller's stdout), and its spill folder
and unpacked archives stayed. Raised as ``Interrupted``, it unwinds like KeyboardInterrupt: the
workers are ended (``summaries.DocumentPool``), the temporary folders removed, nothing is written,
and the CLI exits 143, as a shell reports a command ended by SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from social_xlstm.errors import Interrupted


@contextlib.contextmanager
def sigterm_interrupts(message: str) -> Iterator[None]:
    """Within the block, SIGTERM raises ``Interrupted(message)`` (in the main thread; elsewhere
    signals cannot be handled, and the block runs as it is).

    Only the first SIGTERM raises. Later ones are ignored, then and after the block (the process
    is on its way out, and temporary folders are removed as their owners are freed, after the
    block), so that a second signal does not cut the clean-up short. A block that ends normally
    although a SIGTERM came (something swallowed the exception) raises it then: a stopped command
    never reports success.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = False

    def stop(signum, frame) -> None:
        nonlocal received
        if not received:
            received = True
            raise Interrupted(message)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        if not received:
            signal.signal(signal.SIGTERM, previous)
    if received:
        raise Interrupted(message)
