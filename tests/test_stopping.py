"""SIGTERM and Ctrl-C as an exception of ours (social_xlstm/stopping.py), in-process: what a
command's code does with it cannot make a stopped command report success."""

import os
import signal

import pytest

from social_xlstm.errors import Interrupted
from social_xlstm.stopping import signals_interrupt


def test_a_signal_raises_interrupted_with_the_shells_exit_code():
    with pytest.raises(Interrupted) as stopped, signals_interrupt("social-xlstm export"):
        os.kill(os.getpid(), signal.SIGINT)
    assert stopped.value.exit_code == 130 and "social-xlstm export: interrupted (Ctrl-C)" in str(stopped.value)
    os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C cannot cut the way out short: nothing raised
    signal.signal(signal.SIGINT, signal.default_int_handler)


def test_code_that_swallows_or_replaces_the_signal_still_ends_stopped():
    with pytest.raises(Interrupted) as stopped, signals_interrupt("social-xlstm data"):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except Exception:  # a broad handler in the command: Interrupted is not an Exception
            pytest.fail("except Exception caught the signal")
    assert stopped.value.exit_code == 143
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with pytest.raises(Interrupted) as stopped, signals_interrupt("social-xlstm data"):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except BaseException as exc:
            raise ValueError("cleaning up failed") from exc  # another error on the way out
    assert stopped.value.exit_code == 143
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_a_signal_the_process_was_started_to_ignore_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a background job
    try:
        with signals_interrupt("social-xlstm export"):
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_without_a_signal_the_handlers_are_put_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with signals_interrupt("social-xlstm predict"):
        pass
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_ctrl_c_that_a_library_turned_into_a_silent_exit_is_said():
    # pyarrow holds SIGINT itself while it writes parquet, raises KeyboardInterrupt, and typer
    # turns that into SystemExit(130) with nothing said
    with pytest.raises(Interrupted) as stopped, signals_interrupt("social-xlstm data"):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemExit(130) from exc
    assert stopped.value.exit_code == 130 and "interrupted (Ctrl-C)" in str(stopped.value)
    with pytest.raises(SystemExit), signals_interrupt("social-xlstm data"):
        raise SystemExit(0)  # any other exit passes as it is


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        # pyarrow raises KeyboardInterrupt itself while it holds SIGINT; typer answers it with a
        # silent 130 when it runs outside click's standalone mode, as main runs it
        (KeyboardInterrupt, 130, "stopped: social-xlstm data: interrupted (Ctrl-C)"),
        (EOFError, 1, "stopped: social-xlstm data: the input ended"),  # typer's Abort: a traceback
    ],
)
def test_a_command_stopped_inside_a_library_is_one_line(monkeypatch, capsys, tmp_path, raised, code, said):
    import social_xlstm.data.dataset
    from social_xlstm.cli import main

    def stopped(*args, **kwargs):
        raise raised

    monkeypatch.setattr(social_xlstm.data.dataset, "read_dataset", stopped)
    try:
        assert main(["data", "inspect", str(tmp_path)]) == code
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    err = capsys.readouterr().err.strip()
    assert err.startswith(said) and len(err.splitlines()) == 1, err
