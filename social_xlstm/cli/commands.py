"""The commands, and ``main``: argv in, the package called, words and an exit code out.

Heavy imports (torch, pandas) happen inside the commands so that ``--help`` stays instant.
"""

from __future__ import annotations

import contextlib
import errno
import sys

import typer
from rich.markup import escape

from social_xlstm.allocator import reuse_freed_memory
from social_xlstm.cli.console import make_console
from social_xlstm.errors import InputError, Interrupted, SelfCheckError
from social_xlstm.stopping import default_handlers, signals_interrupt

# A full disk, a folder the user may not write, a name past the file system's 255 bytes, or a
# folder given where a file is written: the user's to fix, so one line, like bad input (writers go
# through temporary files, which they remove on any error).
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG, errno.EISDIR)

CTRL_C_EXIT = 130  # what typer returns for a KeyboardInterrupt

app = typer.Typer(
    name="social-xlstm",
    help="Traffic forecasting for road-sensor networks with Social-xLSTM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = make_console(stderr=True)
# The arguments of the current invocation, recorded in what a command writes (meta.json).
invocation: list[str] = []


def _register() -> None:
    from social_xlstm.cli import data, export, run, serve

    app.add_typer(data.app, name="data")
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, epilog=run.train_epilog())(
        run.train
    )
    app.command()(run.evaluate)
    app.command()(export.predict)
    app.command()(export.export)
    app.command()(serve.serve)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    A usage mistake (an unknown option, a missing argument, a value of the wrong type) is one line
    naming the command's ``--help``, exit code 2; an ``InputError`` from the package becomes
    one line on stderr and exit code 2, a ``SelfCheckError`` one line and exit code 1, never a
    traceback. A command stopped by SIGTERM says so in one line and exits 143 (a training also
    says where it stopped), by Ctrl-C 130 (a training: Lightning's own shutdown, exit 1): never
    0, and never with half an output.
    """
    invocation[:] = sys.argv[1:] if argv is None else list(argv)
    if invocation[:1] != ["data"]:
        # torch commands only: the data commands free big arrays once each, and a heap that
        # keeps them only grows (importing a day of 1,500 VDs peaked at 500 MiB, not 300)
        reuse_freed_memory()
    command = f"social-xlstm {invocation[0]}" if invocation else "social-xlstm"
    # train saves where it stopped through Lightning's own handlers; serve stops as uvicorn does
    own_handlers = invocation[:1] in (["train"], ["serve"])
    if own_handlers:
        default_handlers()
    try:
        with contextlib.nullcontext() if own_handlers else signals_interrupt(command):
            # not standalone: click's usage errors come here rather than as typer's 5-line box
            code = app(args=invocation, prog_name="social-xlstm", standalone_mode=False)
            if code == CTRL_C_EXIT and not own_handlers:
                # typer's silent answer to a KeyboardInterrupt that a library raised itself (pyarrow
                # holds SIGINT while it reads or writes parquet): raised again, for the one line
                raise KeyboardInterrupt
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (InputError, SelfCheckError) as exc:
        # The message quotes user data (cells, ids, paths): escaped, "[...]" in it is text, not markup.
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True, markup=True)
        return 2 if isinstance(exc, InputError) else 1
    except OSError as exc:
        if exc.errno not in UNWRITABLE:
            raise
        where = escape(str(exc.filename or "output"))
        err_console.print(
            f"[bold red]error:[/] {where}: {exc.strerror}; nothing was written", highlight=False, soft_wrap=True
        )
        return 2
    except Interrupted as exc:
        err_console.print(f"[bold red]stopped:[/] {escape(str(exc))}", highlight=False, soft_wrap=True, markup=True)
        return exc.exit_code
    except Exception as exc:
        # click's exceptions by name: a typer that vendors click (0.29 here) raises its own copies, older
        # typers those of click itself (typer tells them apart the same way)
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "NoArgsIsHelpError" in kinds:
            return exc.exit_code  # the help was the answer, and typer has printed it
        if "Abort" in kinds:  # typer's answer to an EOFError: the input ended
            err_console.print(f"[bold red]stopped:[/] {command}: the input ended", highlight=False, soft_wrap=True)
            return 1
        if "ClickException" not in kinds:
            raise
        err_console.print(f"[bold red]error:[/] {escape(_usage_line(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    # a command's own return value is not an exit code; click's Exit (typer.Exit, --help) is
    return code if isinstance(code, int) else 0


def _usage_line(exc: Exception) -> str:
    """Click's message on one line, with where to read the usage: ``social-xlstm data import: No
    such option: --bogus; see social-xlstm data import --help``."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    joined = " See" if message.endswith("?") else "; see"  # "Did you mean 'evaluate'?"
    return f"{ctx.command_path}: {message}{joined} {ctx.command_path} --help"
