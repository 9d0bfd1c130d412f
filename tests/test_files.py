"""Atomic outputs (social_xlstm/files.py): whatever stops a write, the old output or the new
one is in place, never neither, and what a killed writer left is cleaned up by the next one."""

import os
import subprocess
import sys

import pytest

from social_xlstm import files
from social_xlstm.files import atomic_dir, remove_abandoned


def write_output(out, text):
    with atomic_dir(out) as tmp:
        (tmp / "data.txt").write_text(text)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_a_write_replaces_the_old_output_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    write_output(out, "old")
    write_output(out, "new")
    assert (out / "data.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stopped_between_the_two_renames_the_old_output_goes_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_output(out, "old")
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    replace, calls = os.replace, []

    def stopped_on_the_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # a Ctrl-C between "out aside" and "new in"
        replace(src, dst)

    monkeypatch.setattr(files.os, "replace", stopped_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        write_output(out, "new")
    monkeypatch.setattr(files.os, "replace", replace)
    assert (out / "data.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_next_write_puts_back_what_a_killed_writer_had_moved_aside(tmp_path):
    out = tmp_path / "out"
    write_output(out, "old")
    # as a SIGKILL between the two renames leaves it: out aside in its owner's trash, no out
    trash = tmp_path / f".out.{files._host()}-{dead_pid()}.old.abc123"
    trash.mkdir()
    os.replace(out, trash / "out")
    left_tmp = tmp_path / f".out.{files._host()}-{dead_pid()}.xyz"
    left_tmp.mkdir()
    alive = tmp_path / f".out.{files._host()}-{os.getpid()}.mine"  # a live writer's: left alone
    alive.mkdir()
    removed = remove_abandoned(out)
    assert (out / "data.txt").read_text() == "old"
    assert sorted(removed) == sorted([trash, left_tmp])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", alive.name])


def test_an_output_that_is_a_link_is_replaced_by_the_new_output(tmp_path):
    target = tmp_path / "elsewhere"
    write_output(target, "old")
    out = tmp_path / "out"
    out.symlink_to(target)
    write_output(out, "new")
    assert not out.is_symlink() and (out / "data.txt").read_text() == "new"
    assert (target / "data.txt").read_text() == "old"  # what the link pointed to is not touched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "out"]


def test_outputs_differing_after_a_dot_never_clean_up_each_others_siblings(tmp_path):
    """``run.v1`` and ``run.v2`` shared the prefix ``.run.``: cleaning up after ``run.v1`` removed a
    dead writer's trash of ``run.v2``, which held the old ``run.v2``."""
    write_output(tmp_path / "run.v2", "old v2")
    trash = tmp_path / f"{files._prefix(tmp_path / 'run.v2')}{files._host()}-{dead_pid()}.old.abc123"
    trash.mkdir()
    os.replace(tmp_path / "run.v2", trash / "run.v2")
    assert remove_abandoned(tmp_path / "run.v1") == []
    assert remove_abandoned(tmp_path / "run.v2") == [trash]
    assert (tmp_path / "run.v2" / "data.txt").read_text() == "old v2"


@pytest.mark.parametrize(
    "name",
    ["d" * 250, "x" * 100 + "." + "y" * 150, os.fsdecode(b"caf\xe9-not-utf8.csv"), "é" * 127],
    ids=["250 bytes", "a 151-byte suffix", "not UTF-8", "254 bytes of two-byte characters"],
)
def test_any_legal_name_can_be_written_whole(tmp_path, name):
    """Each ended in an error: the temporary sibling's name passed 255 bytes, or was encoded as UTF-8."""
    with files.atomic_file(tmp_path / "file" / name) as tmp:
        tmp.write_text("new")
    write_output(tmp_path / "folder" / name, "new")
    assert (tmp_path / "file" / name).read_text() == (tmp_path / "folder" / name / "data.txt").read_text() == "new"
    assert not [p for folder in ("file", "folder") for p in os.listdir(tmp_path / folder) if p.startswith(".")]


@pytest.mark.parametrize(("umask", "folder", "file"), [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_outputs_get_the_permissions_the_umask_gives_not_a_temporary_files(tmp_path, umask, folder, file):
    """mkdtemp makes its folder 0700: datasets and bundles were unreadable to a service running
    as another user, whatever the umask."""
    before = os.umask(umask)
    try:
        with atomic_dir(tmp_path / "bundle") as tmp:
            (tmp / "metadata.json").write_text("{}")
        with files.atomic_file(tmp_path / "forecast.csv") as tmp:
            tmp.write_text("x\n")
    finally:
        os.umask(before)
    assert (tmp_path / "bundle").stat().st_mode & 0o777 == folder
    assert (tmp_path / "forecast.csv").stat().st_mode & 0o777 == file


def test_a_folder_written_into_a_setgid_folder_keeps_its_group_bit(tmp_path):
    """chmod with a plain mode cleared the setgid bit the new folder inherits: files in it lost the group."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o2775)
    if not shared.stat().st_mode & 0o2000:
        pytest.skip("this file system keeps no setgid bit")
    with atomic_dir(shared / "bundle") as tmp:
        (tmp / "metadata.json").write_text("{}")
    assert (shared / "bundle").stat().st_mode & 0o2000
