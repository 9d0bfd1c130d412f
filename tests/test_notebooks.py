"""The notebooks in notebooks/ run top to bottom on a tiny demo dataset, run and export bundle
(what `make demo`, `social-xlstm train` and `social-xlstm export` give a user), and each one
ends with a check of its own that the test reads back from the executed notebook."""

import re
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import make_demo_dir, tiny_train_args
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

from social_xlstm.cli import main

pytestmark = pytest.mark.slow  # trains, exports and runs three notebooks: `make test` runs it, `make test-fast` not
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_explore_dataset", "02_explore_forecasts", "03_use_export_bundle"]
CELL_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A demo dataset, a 1-epoch run with the default baselines, and its export bundle."""
    root = tmp_path_factory.mktemp("notebook-inputs")
    run, bundle = root / "run", root / "bundle"
    data = make_demo_dir(root, seed=1)
    assert main(tiny_train_args(data, run)) == 0
    assert main(["export", str(run), "--out", str(bundle)]) == 0
    return {
        "SOCIAL_XLSTM_DATA_DIR": str(data),
        "SOCIAL_XLSTM_RUN_DIR": str(run),
        "SOCIAL_XLSTM_BUNDLE_DIR": str(bundle),
    }


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A `python3` kernelspec that runs this interpreter (the venv's), found before any other.

    JUPYTER_PATH comes first in Jupyter's search path, so a user-level `python3` kernel that
    points at another Python cannot take over; nothing is installed anywhere.
    """
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(jupyter_path / "kernels" / "python3")
    return {
        "JUPYTER_PATH": str(jupyter_path),
        # Headless, and figures become image outputs the test can count (plain Agg would drop them).
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }


# Inserted after the bundle notebook's forecast table: the test compares it with `predict`.
TABLE_PROBE = 'print("TABLE_JSON " + table.to_json(orient="split"))'


def execute(name: str, workdir: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    at = next((i for i, cell in enumerate(nb.cells) if "table = pd.DataFrame(" in cell.source), None)
    if at is not None:
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(TABLE_PROBE))
    NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def outputs(nb: nbformat.NotebookNode, output_type: str | None = None) -> list:
    return [
        o
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if output_type is None or o.output_type == output_type
    ]


def final_text(nb: nbformat.NotebookNode) -> str:
    last = [cell for cell in nb.cells if cell.cell_type == "code"][-1]
    return "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


@pytest.fixture(scope="module")
def executed(inputs, kernel_env):
    """Every notebook executed once from a notebooks/ folder (where Jupyter starts its kernels),
    with its inputs given as paths relative to the folder above, as a user at the repository root
    would set them."""
    root = Path(inputs["SOCIAL_XLSTM_DATA_DIR"]).parent
    workdir = root / "notebooks"
    workdir.mkdir(exist_ok=True)
    relative = {key: str(Path(value).relative_to(root)) for key, value in inputs.items()}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**relative, **kernel_env}.items():
            patch.setenv(key, value)
        return {name: execute(name, workdir) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_clean_and_parameterised(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "commit notebooks without outputs"
    assert nb.cells[0].cell_type == "markdown", "a notebook opens by saying what it shows"
    parameters = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and "os.environ" in parameters[0].source


def test_explore_dataset(executed):
    nb = executed["01_explore_dataset"]
    assert not outputs(nb, "error")
    assert images(nb) >= 3  # coverage, daily profiles, sensor map
    assert re.search(r"dataset demo: 8 sensors, 864 steps, .* graph \d+ edges", final_text(nb)), final_text(nb)


def test_explore_forecasts(executed):
    nb = executed["02_explore_forecasts"]
    assert not outputs(nb, "error")
    assert images(nb) >= 3  # error by horizon, forecast vs actual, per-sensor MAE map
    # The notebook recomputes the per-horizon table from predictions.parquet and asserts it equals summary.json.
    assert "5 forecasters x 2 targets x 12 horizons: predictions.parquet matches metrics/summary.json" in final_text(nb)


def test_use_export_bundle(executed):
    nb = executed["03_use_export_bundle"]
    assert not outputs(nb, "error")
    text = "".join(o.get("text", "") for o in outputs(nb, "stream"))
    assert "no social_xlstm module imported in part 1" in text
    assert "the streamed forecast matches the windowed one" in text
    assert "onnxruntime forecast equals Bundle.forecast within rtol 1e-5" in final_text(nb), final_text(nb)


def test_the_bundle_notebooks_forecast_table_is_predicts_forecast(executed, inputs, tmp_path):
    """Each column holds the target and horizon its label says (it once showed speed under flow)."""
    import json

    import pandas as pd

    text = "".join(o.get("text", "") for o in outputs(executed["03_use_export_bundle"], "stream"))
    table = json.loads(text.split("TABLE_JSON ", 1)[1].splitlines()[0])
    out = tmp_path / "forecast.csv"
    assert (
        main(
            ["predict", inputs["SOCIAL_XLSTM_BUNDLE_DIR"], "--data", inputs["SOCIAL_XLSTM_DATA_DIR"], "--out", str(out)]
        )
        == 0
    )
    predicted = pd.read_csv(out, dtype={"sensor_id": str}).set_index(["sensor_id", "target", "horizon"])["forecast"]
    interval_minutes = 5
    checked = 0
    for sensor, row in zip(table["index"], table["data"]):
        for (target, label), value in zip(table["columns"], row):
            horizon = int(float(label.strip("+ min")) / interval_minutes)
            assert value == pytest.approx(predicted[(str(sensor), target, horizon)], rel=1e-4, abs=1e-3), (
                sensor,
                target,
                label,
            )
            checked += 1
    assert checked == 8 * 2 * 12


def test_part_one_of_the_bundle_notebook_needs_no_project_code():
    """Only the cell tagged uses-social-xlstm may touch the package; the rest is the deployment recipe."""
    nb = nbformat.read(NOTEBOOKS / "03_use_export_bundle.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "uses-social-xlstm" not in cell.metadata.get("tags", []):
            assert not re.search(r"^\s*(from|import)\s+social_xlstm", cell.source, re.MULTILINE), cell.source


def test_kernel_is_this_interpreter(kernel_env, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.setenv("JUPYTER_PATH", kernel_env["JUPYTER_PATH"])
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
