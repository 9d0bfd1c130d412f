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
import os
import signal
import threading
from typing import Iterator

from social_xlstm.errors import Interrupted

STOPPED_BY = {signal.SIGTERM: "stopped by SIGTERM", signal.SIGINT: "interrupted (Ctrl-C)"}
PYTHON_DEFAULTS = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}


def _ours(handler) -> bool:
    return getattr(handler, "stops_the_command", False)


def _stopped_while_starting(signum, frame) -> None:
    """Before a command runs (imports) or after it returned, nothing is half-done: say so, end."""
    os.write(2, f"stopped: social-xlstm: {STOPPED_BY[signum]} while starting or ending\n".encode())
    os._exit(128 + signum)


_stopped_while_starting.stops_the_command = True


def quiet_start() -> None:
    """A Ctrl-C or SIGTERM while the CLI imports its libraries ends it with one line, not a
    traceback from deep inside an import. ``signals_interrupt`` (or ``default_handlers``) takes over
    when a command starts."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOPPED_BY:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, _stopped_while_starting)


def default_handlers() -> None:
    """Python's own handlers, for commands that bring their own way out (Lightning's, uvicorn's)."""
    for signum, default in PYTHON_DEFAULTS.items():
        if _ours(signal.getsignal(signum)):
            signal.signal(signum, default)


# A forked child (a data loader worker) does not inherit our handlers: its own way out is the
# usual one, and the parent says the one line.
os.register_at_fork(after_in_child=default_handlers)


def _interrupted(command: str, signum: int) -> Interrupted:
    return Interrupted(
        f"{command}: {STOPPED_BY[signum]} before it finished; no output was left half-written; run it again",
        exit_code=128 + signum,
    )


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a KeyboardInterrupt: pyarrow raises one while it holds SIGINT
    itself (reading or writing parquet); typer answers it with a silent exit code 130, which the
    CLI's ``main`` raises again as a KeyboardInterrupt, and another library may wrap it."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


@contextlib.contextmanager
def signals_interrupt(command: str) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise ``Interrupted`` naming ``command`` (exit 143 and
    130), in the main thread; elsewhere signals cannot be handled, and the block runs as it is.
    A signal the process was started to ignore (``nohup``, a background job) stays ignored.

    ``Interrupted`` is a BaseException of our own rather than KeyboardInterrupt (typer answers
    that with a silent exit 130), so ``except Exception`` does not swallow it. Only the first
    signal raises. Later ones are ignored, then and after the block (the process is on its way
    out, and temporary folders are removed as their owners are freed, after the block), so that
    a second Ctrl-C does not cut the clean-up short. A block that ends otherwise although a
    signal came (something swallowed it, or turned it into another error) raises it then: a
    stopped command never reports success.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Interrupted] = []

    def stop(signum, frame) -> None:
        if not received:
            received.append(_interrupted(command, signum))
            raise received[0]

    stop.stops_the_command = True
    previous = {s: signal.getsignal(s) for s in STOPPED_BY}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, stop)
    try:
        yield
    except BaseException as exc:
        if received and exc is not received[0]:
            raise received[0] from exc
        if not received and _caused_by_ctrl_c(exc):  # a library's own SIGINT handler got it first
            raise _interrupted(command, signal.SIGINT) from exc
        raise
    finally:
        if not received:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    if received:
        raise received[0]
