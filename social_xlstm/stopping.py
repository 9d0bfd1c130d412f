"""SIGTERM and Ctrl-C end a command by an exception of ours, so that the way out runs.

Left to its default action, SIGTERM ends a process where it stands: a Taiwan import's parse
workers lived on, orphaned (waiting for work for minutes, holding the caller's stdout), and the
temporary folders of an import or an export stayed beside their output. Raised as
``Interrupted``, it unwinds like KeyboardInterrupt: workers are ended, temporary folders removed,
no output is left half-written, and the CLI exits 143 (130 for Ctrl-C), as a shell reports a
command ended by that signal. (``train`` has its own: Lightning's handler, which saves where it stopped.)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from social_xlstm.errors import Interrupted

STOPPED_BY = {signal.SIGTERM: "stopped by SIGTERM", signal.SIGINT: "interrupted (Ctrl-C)"}


@contextlib.contextmanager
def signals_interrupt(command: str) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise ``Interrupted`` naming ``command`` (exit 143 and
    130), in the main thread; elsewhere signals cannot be handled, and the block runs as it is.

    An exception of our own rather than KeyboardInterrupt: typer turns KeyboardInterrupt into a
    silent exit 130. Only the first signal raises. Later ones are ignored, then and after the
    block (the process is on its way out, and temporary folders are removed as their owners are
    freed, after the block), so that a second Ctrl-C does not cut the clean-up short. A block
    that ends normally although a signal came (something swallowed the exception) raises it
    then: a stopped command never reports success.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Interrupted] = []

    def stop(signum, frame) -> None:
        if not received:
            received.append(
                Interrupted(
                    f"{command}: {STOPPED_BY[signum]} before it finished; no output was left half-written; "
                    "run it again",
                    exit_code=128 + signum,
                )
            )
            raise received[0]

    previous = {signum: signal.signal(signum, stop) for signum in STOPPED_BY}
    try:
        yield
    finally:
        if not received:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    if received:
        raise received[0]
