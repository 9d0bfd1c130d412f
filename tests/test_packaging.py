"""The distribution ships what docs/architecture.md, "Layers", promises: both import names, the Hydra configs, the
dashboard's static files and the console script."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from social_xlstm.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_package_kernels_and_console_script(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("social_xlstm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    kernel_sources = {p.relative_to(ROOT / "kernels").as_posix() for p in (ROOT / "kernels").rglob("*.py")}
    assert kernel_sources, "kernels/ holds no Python sources"
    for source in kernel_sources:
        assert f"social_xlstm_kernels/{source}" in names
    assert "social_xlstm/cli/__init__.py" in names
    shipped_data = {
        f"social_xlstm/configs/{p.relative_to(ROOT / 'configs').as_posix()}" for p in (ROOT / "configs").rglob("*.yaml")
    }
    shipped_data |= {
        f"social_xlstm/dashboard/static/{p.name}" for p in (ROOT / "social_xlstm/dashboard/static").iterdir()
    }
    assert len(shipped_data) > 8 and shipped_data <= set(names), sorted(shipped_data - set(names))
    assert not any(name.startswith("kernels/") for name in names), "kernels must ship under its specific name"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "social-xlstm = social_xlstm.cli:entry_point" in text


def test_kernels_import_under_specific_name():
    import social_xlstm_kernels

    assert Path(social_xlstm_kernels.__file__).parent == ROOT / "kernels"


def _command_paths(command, prefix=()):
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*prefix, name))


def test_help_works_for_every_command(capsys):
    import typer

    from social_xlstm.cli.commands import app

    paths = list(_command_paths(typer.main.get_command(app)))
    assert ("data", "import", "taiwan-vd") in paths
    for path in paths:
        assert main([*path, "--help"]) == 0, path
        assert "Usage" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["no-such-command"]) == 2


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["data", "import", "--bogus"], "social-xlstm data import: No such option: --bogus"),
        (["predict"], "social-xlstm predict: Missing argument"),
        (["data", "demo", "--seed", "x"], "social-xlstm data demo: Invalid value for '--seed'"),
        (["evaluat"], "social-xlstm: No such command 'evaluat'"),
    ],
)
def test_a_usage_mistake_is_one_line_naming_the_help(capsys, argv, said):
    # typer's own answer is a usage line, a hint line and a 3-line box
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {said}"), err
    command = said.split(":")[0]
    assert err.rstrip().lower().endswith(f"see {command} --help"), err
