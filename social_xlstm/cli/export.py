"""``social-xlstm export`` and ``social-xlstm predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from social_xlstm.cli.console import first_few, make_console, notice

console = make_console()
err_console = make_console(stderr=True)  # notes: stdout stays the summary


def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `social-xlstm train`.")],
    out: Annotated[
        Path, typer.Option("--out", help="Bundle directory to write (model.onnx, model_step.onnx, metadata.json).")
    ],
    data: Annotated[
        Optional[Path],
        typer.Option(help="The run's dataset directory, if it moved (for sensor coordinates and time zone)."),
    ] = None,
) -> None:
    """Export a trained run to an ONNX bundle that onnxruntime runs without this package."""
    from social_xlstm.export.export import export_bundle
    from social_xlstm.export.metadata import read_metadata

    with console.status("exporting to ONNX and checking it against the run"):
        bundle = export_bundle(run_dir, out, data)
    metadata = read_metadata(bundle)
    checked = metadata["checked_against_run"]
    known = metadata.get("units") or {}
    units = ", ".join(f"{target} {known[target]}" for target in metadata["targets"] if target in known)
    console.print(
        f"bundle: [bold]{bundle}[/] (model.onnx, model_step.onnx, metadata.json); checked against the run on "
        f"{checked['windows']} windows and {checked['streamed_readings']} streamed readings: largest difference "
        f"{checked['largest_difference']:.2g} in the targets' units" + (f" ({escape(units)})" if units else ""),
        soft_wrap=True,
    )


def predict(
    source: Annotated[Path, typer.Argument(help="An export bundle or a run directory.", metavar="RUN_DIR|BUNDLE")],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="Dataset directory with the latest readings (sensors matched by id; missing readings allowed).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output file: .parquet or .csv (one row per sensor, horizon and target: sensor_id, origin, timestamp, "
            "horizon, minutes_ahead, target, forecast, unit, latitude, longitude, observed_share: the share "
            "of the sensor's input readings that were observed) or .geojson (one Point per sensor, flat properties "
            "<target>_h<horizon>, e.g. speed_h3).",
        ),
    ],
    at: Annotated[
        str, typer.Option("--at", help="Last input time step: a timestamp (naive = the data's time zone) or 'latest'.")
    ] = "latest",
    allow_absent_sensors: Annotated[
        bool,
        typer.Option(
            help="Forecast even when some of the model's sensors are not in the data (e.g. a detector removed since "
            "training): they are read as missing and left out of the output."
        ),
    ] = False,
    sensor: Annotated[
        Optional[list[str]],
        typer.Option("--sensor", help="Only this sensor's forecasts (repeatable; default: every sensor)."),
    ] = None,
) -> None:
    """Forecast every sensor (or those named), horizon and target from the readings ending at --at."""
    from social_xlstm.data.dataset import INPUT_FILES
    from social_xlstm.export.outputs import check_output, write_forecasts
    from social_xlstm.export.predict import load_forecaster, predict_frame
    from social_xlstm.files import refuse_replacing

    check_output(out)
    refuse_replacing(out, [data / name for name in INPUT_FILES])
    forecaster = load_forecaster(source, data)
    frame = predict_frame(forecaster, data, at, allow_absent_sensors, sensor or ())
    write_forecasts(frame, out, forecaster.interval)
    console.print(f"{len(frame)} forecasts from {frame['origin'].iloc[0]} written to [bold]{out}[/]")
    data_zone = str(frame["origin"].iloc[0].tz)
    if data_zone != forecaster.timezone:  # the same instants either way, unless the import misread local clocks
        notice(
            err_console,
            f"{escape(str(data))} keeps its times in {data_zone}, the model in "
            f"{forecaster.timezone}: if its readings were written in local clock time, import them with "
            f"--timezone {forecaster.timezone}",
        )
    blind = frame.loc[frame["observed_share"] == 0, "sensor_id"].unique()
    if len(blind):
        named = first_few(blind)
        notice(
            err_console,
            f"{len(blind)} sensors had no reading in the {forecaster.input_len} input steps up to "
            f"{frame['origin'].iloc[0]} ({escape(named)}): their forecasts rest on their neighbours and the time of "
            "day alone (observed_share 0 in the output)",
            kind="warning",
        )
    wanted = len(set(sensor)) if sensor else len(forecaster.sensor_ids)
    left_out = wanted - frame["sensor_id"].nunique()
    if left_out:
        whose = f"the {wanted} sensors asked for" if sensor else f"the model's {wanted} sensors"
        notice(
            err_console,
            f"{left_out} of {whose} are not in {escape(str(data))}: read as missing, left out of the output",
        )
