"""``social-xlstm data ...``: import real feeds, make the demo network, inspect quality."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from social_xlstm.cli.console import first_few, make_console, notice

app = typer.Typer(help="Import, generate and inspect VD datasets.", no_args_is_help=True)
import_app = typer.Typer(help="Import a dataset in a published format into a dataset directory.", no_args_is_help=True)
app.add_typer(import_app, name="import")
console = make_console()
err_console = make_console(stderr=True)  # warnings: stdout stays the summary

OutOption = Annotated[Path, typer.Option("--out", help="Dataset directory to write (replaced atomically).")]
NameOption = Annotated[
    Optional[str], typer.Option(help="Dataset name recorded in meta.json (default: the --out folder name).")
]
UnitsOption = Annotated[
    Optional[str], typer.Option(help="Units of the feature recorded in meta.json, e.g. mph (default: unknown).")
]

# Options of the two importers of a user's own tables (wide-csv, long-csv).
EdgesOption = Annotated[Optional[Path], typer.Option(help="CSV with from, to, distance_m (and/or weight).")]
MissingValueOption = Annotated[
    Optional[list[float]], typer.Option("--missing-value", help="A value that means 'no reading' (repeatable).")
]
SensorsFieldOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--sensors-field",
        help="ROLE=COLUMN: a column of the sensors file to read as sensor_id (the ids the readings use), latitude, "
        "longitude, road, direction (N, S, E or W: with road and position_km it tells the graph which neighbour is "
        "upstream) or position_km (km along the road), e.g. latitude=Breedtegraad (repeatable).",
    ),
]
TimeFormatOption = Annotated[
    Optional[str],
    typer.Option(
        help="How the times are written, in strptime codes, e.g. '%m/%d/%Y %H:%M' for 03/07/2012 17:50 "
        "(default: ISO 8601, e.g. 2012-03-07T17:50)."
    ),
]
LocalTimezoneOption = Annotated[
    Optional[str],
    typer.Option(
        help="Time zone the dataset keeps and naive timestamps are read in, e.g. America/Los_Angeles "
        "(default: the one UTC offset the times carry, else UTC)."
    ),
]
MaxValuesOption = Annotated[
    int, typer.Option(min=1, help="Largest grid (steps x sensors x features) to allocate; a mistyped year asks more.")
]
MAX_VALUES = 500_000_000  # importers.timeline.MAX_GRID_VALUES, without importing pandas to show --help


def _negative_readings_warning(dataset, feature: str, count: int, user_table: bool) -> str:
    """Traffic readings are never below zero, so negative ones are most often a code for 'no
    reading' (-1, -99) that the import took for a value; the commonest one is named."""
    import numpy as np

    text = f"{count:,} '{feature}' readings are negative"
    values = getattr(dataset, "values", None)  # a streamed dataset is not in memory: the count alone
    if values is None:
        return text
    column = values[..., dataset.features.index(feature)]
    codes, times = np.unique(column[column < 0], return_counts=True)
    code = f"{codes[times.argmax()]:g}"
    text += f" ({'all' if len(codes) == 1 else f'{times.max():,} of them'} {code})"
    if user_table:
        text += f": if {code} means 'no reading', import again with --missing-value {code}"
    return text


def _write(dataset, out: Path, *, user_table: bool = False) -> dict:
    """Record how the dataset was made, write it atomically, say what was written (and which
    features hold no reading at all, or negative ones: a code for 'none'?) and return its counts.
    ``user_table``: a user's own CSV (wide-csv, long-csv), whose --missing-value and --edges the
    warnings can name."""
    from social_xlstm.cli.commands import invocation
    from social_xlstm.data.dataset import unlocated_sensors, write_dataset

    dataset.meta["import_command"] = shlex.join(["social-xlstm", *invocation])
    dataset.meta.setdefault("name", out.name)
    counts = write_dataset(dataset, out)["counts"]
    console.print(
        f"wrote [bold]{out}[/]: {counts['sensors']} sensors x {counts['timesteps']} steps x {counts['features']} "
        f"feature{'s' if counts['features'] != 1 else ''} ({', '.join(dataset.features)}), every "
        f"{dataset.meta['interval']}, {counts['edges']} edges"
    )
    if dataset.meta.get("sensors_listed_without_readings"):
        notice(
            err_console,
            f"{dataset.meta['sensors_listed_without_readings']:,} sensors of the sensors file have no "
            "readings and were left out",
        )
    unlocated = unlocated_sensors(dataset.sensors)
    if user_table and unlocated:
        named = first_few(repr(sensor) for sensor in unlocated)
        notice(
            err_console,
            f"{len(unlocated):,} sensors have no coordinates ({escape(named)}; the sensors file "
            "does not give their latitude and longitude): a graph by coordinates gives them no neighbours, so "
            "unless --edges links them they forecast from their own readings",
            kind="warning",
        )
    if user_table and not counts["edges"]:
        notice(
            err_console,
            "no road graph given (--edges): training links each sensor to its nearest ones by "
            "coordinates (data.graph.method=auto)",
        )
    unknown = [feature for feature, unit in dataset.meta.get("units", {}).items() if unit == "unknown"]
    if unknown:
        notice(
            err_console,
            f"the unit of {', '.join(repr(f) for f in unknown)} is unknown: --units records it "
            "(the tables, plots and forecasts show it)",
        )
    if dataset.meta.get("clock"):
        notice(err_console, escape(dataset.meta["clock"]))
    if dataset.meta.get("repeated_rows_dropped"):
        notice(
            err_console,
            f"{dataset.meta['repeated_rows_dropped']:,} rows repeated an earlier row of their time "
            "and sensor with the same readings and were dropped",
        )
    for role, layout in dataset.meta.get("csv_layout", {}).items():
        names = dataset.meta["input_files"][role]
        files = f"file {names}" if isinstance(names, str) else f"files {names[0]} .. {names[-1]} ({len(names)})"
        notice(err_console, f"read the {role} {escape(files)} as {layout}")
    inserted = dataset.meta.get("steps_inserted_as_missing", 0)
    if user_table and inserted > counts["timesteps"] / 2:  # a time format with codes swapped spreads a week over years
        notice(
            err_console,
            f"only {counts['timesteps'] - inserted:,} of the {counts['timesteps']:,} steps of "
            f"every {dataset.meta['interval']} from the first time to the last have a row: check that the times read "
            "as written (--time-format codes in the wrong place?)",
            kind="warning",
        )
    for feature, count in counts["readings_infinite_made_missing"].items():
        if count:
            notice(
                err_console,
                f"{count:,} '{feature}' readings were infinite (too large for a number) and are stored as missing",
                kind="warning",
            )
    for feature, count in counts["readings_negative"].items():
        if count:
            text = _negative_readings_warning(dataset, feature, count, user_table)
            notice(err_console, escape(text), kind="warning")
    present = counts["readings_present"]
    for feature in [f for f in dataset.features if not present[f]]:
        kept = [f for f in dataset.features if present[f]]
        hint = escape(f"data.features=[{','.join(kept)}] data.targets=[{','.join(kept)}]")
        notice(err_console, f"feature '{feature}' has no reading; train without it, e.g. {hint}", kind="warning")
    return counts


@import_app.command("tgcn-csv")
def import_tgcn_csv(
    speed_csv: Annotated[
        Path, typer.Argument(help="Wide CSV: header of sensor ids, one row per time step, no timestamps.")
    ],
    adjacency: Annotated[
        Path,
        typer.Option(help="N x N adjacency CSV without header, same sensor order; or DCRNN's directed adj_mx.pkl."),
    ],
    start: Annotated[str, typer.Option(help="Timestamp of the first row, e.g. 2012-03-01T00:00.")],
    interval: Annotated[str, typer.Option(help="Step between rows, e.g. 5min.")],
    out: OutOption,
    locations: Annotated[Optional[Path], typer.Option(help="CSV of index, sensor_id, latitude, longitude.")] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of --start (IANA name).")] = "UTC",
    feature: Annotated[str, typer.Option(help="Name of the measured feature.")] = "speed",
    units: UnitsOption = None,
    name: NameOption = None,
) -> None:
    """T-GCN style data (e.g. Los-loop, SZ-taxi): wide values CSV + adjacency CSV."""
    from social_xlstm.data.importers.tgcn_csv import import_tgcn_csv as run

    _write(
        run(
            speed_csv,
            adjacency,
            locations_csv=locations,
            start=start,
            interval=interval,
            timezone=timezone,
            feature=feature,
            units=units,
            name=name,
        ),
        out,
    )


@import_app.command("wide-csv")
def import_wide_csv(
    readings_csv: Annotated[Path, typer.Argument(help="CSV: a timestamp column, then one column per sensor id.")],
    sensors: Annotated[
        Path,
        typer.Option(
            help="CSV with sensor_id (or ID), latitude, longitude (or lat, lon), any case; more columns are kept."
        ),
    ],
    out: OutOption,
    edges: EdgesOption = None,
    sensors_field: SensorsFieldOption = None,
    missing_value: MissingValueOption = None,
    feature: Annotated[str, typer.Option(help="Name of the measured feature.")] = "speed",
    time_format: TimeFormatOption = None,
    timezone: LocalTimezoneOption = None,
    units: UnitsOption = None,
    name: NameOption = None,
    max_values: MaxValuesOption = MAX_VALUES,
) -> None:
    """Your own data: timestamp x sensor CSV plus a sensors CSV with coordinates.

    Every CSV may separate its fields by commas, semicolons or tabs and write decimal commas
    (12,5), as spreadsheets in much of Europe save them: each file's first lines say which."""
    from social_xlstm.data.importers.user_csv import parse_sensor_fields
    from social_xlstm.data.importers.wide_csv import import_wide_csv as run

    _write(
        run(
            readings_csv,
            sensors,
            edges_csv=edges,
            missing_values=tuple(missing_value or ()),
            sensor_fields=parse_sensor_fields(sensors_field or ()),
            feature=feature,
            timezone=timezone,
            time_format=time_format,
            units=units,
            name=name,
            max_values=max_values,
        ),
        out,
        user_table=True,
    )


@import_app.command("long-csv")
def import_long_csv(
    readings_csv: Annotated[
        list[Path],
        typer.Argument(
            help="CSV: one row per time and sensor, e.g. timestamp, sensor_id, flow, speed; or several with one "
            "header (a file per day or per detector: exports/*.csv), read as one table in the order given."
        ),
    ],
    sensors: Annotated[
        Path,
        typer.Option(
            help="CSV with sensor_id (or the --sensor-column name, or ID), latitude, longitude (or lat, lon), any "
            "case; more columns are kept."
        ),
    ],
    out: OutOption,
    time_column: Annotated[
        Optional[list[str]],
        typer.Option(
            "--time-column",
            help="Column of the times (default: timestamp); given twice, e.g. a date and a time of day, their cells "
            "are joined by a blank in that order and --time-format reads the whole, e.g. '%d/%m/%Y %H:%M'.",
        ),
    ] = None,
    time_format: TimeFormatOption = None,
    sensor_column: Annotated[str, typer.Option(help="Column of sensor ids.")] = "sensor_id",
    feature: Annotated[
        Optional[list[str]],
        typer.Option(
            "--feature",
            help="A column to read as a feature, or COLUMN=NAME to name it in the dataset, e.g. "
            "'Snelheid (km/u)=speed' (repeatable; default: every other column, as named).",
        ),
    ] = None,
    edges: EdgesOption = None,
    sensors_field: SensorsFieldOption = None,
    missing_value: MissingValueOption = None,
    timezone: LocalTimezoneOption = None,
    units: Annotated[
        Optional[list[str]],
        typer.Option(
            "--units",
            help="FEATURE=UNIT recorded in meta.json, e.g. flow=veh/5min (repeatable; a bare UNIT for one feature).",
        ),
    ] = None,
    name: NameOption = None,
    max_values: MaxValuesOption = MAX_VALUES,
) -> None:
    """Your own data, one row per time and sensor: timestamp, sensor_id and a column per feature.

    Every CSV may separate its fields by commas, semicolons or tabs and write decimal commas
    (12,5), as spreadsheets in much of Europe save them: each file's first lines say which."""
    from social_xlstm.data.importers.long_csv import import_long_csv as run
    from social_xlstm.data.importers.long_csv import parse_units
    from social_xlstm.data.importers.user_csv import parse_sensor_fields

    counts = _write(
        run(
            readings_csv,
            sensors,
            time_column=time_column or ["timestamp"],
            sensor_column=sensor_column,
            features=feature,
            time_format=time_format,
            edges_csv=edges,
            missing_values=tuple(missing_value or ()),
            sensor_fields=parse_sensor_fields(sensors_field or ()),
            timezone=timezone,
            units=parse_units(units or ()),
            name=name,
            max_values=max_values,
        ),
        out,
        user_table=True,
    )
    if not feature and counts["features"] > 3:  # a counter or class column read along: each is forecast
        notice(
            err_console,
            f"every column besides the time and the sensor became a feature ({counts['features']}): "
            "--feature reads only those you name (COLUMN=NAME renames: flow and speed are what training forecasts "
            "when present, else every feature, unless data.targets names them)",
        )


@import_app.command("metr-h5")
def import_metr_h5(
    h5: Annotated[Path, typer.Argument(help="METR-LA / PEMS-BAY pandas HDF5 file (e.g. metr-la.h5).")],
    locations: Annotated[Path, typer.Option(help="graph_sensor_locations.csv: index, sensor_id, latitude, longitude.")],
    out: OutOption,
    distances: Annotated[
        Optional[Path], typer.Option(help="distances CSV: from, to, cost (road distance in metres).")
    ] = None,
    feature: Annotated[str, typer.Option(help="Name of the measured feature.")] = "speed",
    timezone: Annotated[str, typer.Option(help="Time zone of the stored naive timestamps.")] = "America/Los_Angeles",
    name: NameOption = None,
) -> None:
    """METR-LA / PEMS-BAY (DCRNN release): 0 means missing."""
    from social_xlstm.data.importers.metr_h5 import import_metr_h5 as run

    _write(run(h5, locations, distances_csv=distances, feature=feature, timezone=timezone, name=name), out)


@import_app.command("pems-npz")
def import_pems_npz(
    npz: Annotated[Path, typer.Argument(help="PEMS03/04/07/08 .npz with a 'data' array [T, N, C].")],
    distances: Annotated[Path, typer.Option(help="distance CSV: from, to, cost.")],
    start: Annotated[
        str, typer.Option(help="Timestamp of the first step (PEMS04: 2018-01-01T00:00, PEMS08: 2016-07-01T00:00).")
    ],
    out: OutOption,
    interval: Annotated[str, typer.Option(help="Step between rows.")] = "5min",
    features: Annotated[
        Optional[list[str]],
        typer.Option("--feature", help="Channel names in order (default: flow, occupancy, speed; flow when C=1)."),
    ] = None,
    sensor_ids: Annotated[
        Optional[Path], typer.Option(help="Text file of sensor ids in array order (PEMS03 ships one).")
    ] = None,
    locations: Annotated[Optional[Path], typer.Option(help="Optional CSV of sensor_id, latitude, longitude.")] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of --start.")] = "America/Los_Angeles",
    name: NameOption = None,
) -> None:
    """PEMS03/04/07/08 (ASTGCN / STSGCN release): flow counts, 0 is a value."""
    from social_xlstm.data.importers.pems_npz import import_pems_npz as run

    _write(
        run(
            npz,
            distances,
            start=start,
            interval=interval,
            features=tuple(features or ()),
            sensor_ids_file=sensor_ids,
            locations_csv=locations,
            timezone=timezone,
            name=name,
        ),
        out,
    )


@import_app.command("taiwan-vd")
def import_taiwan_vd(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Snapshot folders, VDList/VDLiveList XML or JSON files, or zip/7z archives of them."),
    ],
    out: OutOption,
    interval: Annotated[str, typer.Option(help="Resampling interval.")] = "5min",
    timezone: Annotated[str, typer.Option(help="Time zone of the output grid.")] = "Asia/Taipei",
    name: NameOption = None,
    workers: Annotated[
        Optional[int], typer.Option(min=1, help="Parse processes for large inputs (default: the CPUs, at most 8).")
    ] = None,
    min_flow_coverage: Annotated[
        float,
        typer.Option(
            help="Least share of an interval's minutes that must hold a volume for its flow (scaled up to the whole "
            "interval); below it flow is missing. A feed polled every 5 minutes holds 1 minute in 5: 0.2 accepts "
            "that guess."
        ),
    ] = 0.5,
    max_unpacked_gib: Annotated[
        float,
        typer.Option(
            min=0,
            help="Most a 7z archive may unpack to, in GiB: it is unpacked whole beside --out before it is read "
            "(a day of one-minute snapshots of 1,500 detectors is about 6 GiB).",
        ),
    ] = 16.0,
) -> None:
    """Taiwan MOTC VD feeds (VDList.xml + VDLiveList.xml snapshots, XML or JSON)."""
    from social_xlstm.data.importers.taiwan_vd import import_taiwan_vd as run

    # the sums of past days, and unpacked 7z archives, wait on the disk that will hold the dataset,
    # not in /tmp (often memory)
    parent = out.absolute().parent
    spill_dir = parent if parent.is_dir() else None
    with console.status("reading the feed") as status:
        dataset = run(
            paths,
            interval=interval,
            timezone=timezone,
            name=name,
            workers=workers,
            spill_dir=spill_dir,
            progress=_feed_progress(status),
            min_flow_coverage=min_flow_coverage,
            max_unpacked_bytes=int(max_unpacked_gib * 2**30),
        )
        status.update(f"writing {out}")
        counts = _write(dataset, out)
    dropped = dataset.meta["import_counts"]["flow_intervals_missing_for_low_coverage"]
    if dropped > counts["readings_present"]["flow"]:
        notice(
            err_console,
            f"{dropped:,} flow values are missing because their interval held a volume in fewer than "
            f"{min_flow_coverage:.0%} of its minutes (the feed skips minutes, or was polled less often than every "
            f"minute); --min-flow-coverage lowers that share",
        )


def _feed_progress(status):
    """Shows how far a feed import is (a month of snapshots takes a while): files, records, rate, the file."""
    started, files = time.monotonic(), 0

    def show(name: str, tally) -> None:
        nonlocal files
        files += 1
        records = tally["live_records_read"]
        rate = records / max(time.monotonic() - started, 1e-6)
        where = name if len(name) <= 36 else "..." + name[-33:]  # the snapshot folder and file, on one line
        status.update(f"{files:,} files, {records:,} link records ({rate:,.0f}/s) {where}")

    return show


@app.command("demo")
def demo(
    out: OutOption,
    sensors: Annotated[int, typer.Option(help="Number of VDs (both travel directions count).")] = 48,
    days: Annotated[int, typer.Option(help="Days to simulate, starting on a Monday.")] = 28,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 0,
    interval: Annotated[str, typer.Option(help="Reading interval, a multiple of 20s, e.g. 5min.")] = "5min",
) -> None:
    """The embedded demo network: a freeway corridor simulated with the Cell Transmission Model."""
    from social_xlstm.data.demo import make_demo

    with console.status(f"simulating {sensors} VDs over {days} days"):
        dataset = make_demo(sensors=sensors, days=days, seed=seed, interval=interval)
    _write(dataset, out)


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _render_quality(report: dict, directory: Path) -> None:
    from rich.table import Table

    s = report["summary"]
    named = f" ({escape(str(s['name']))})" if s["name"] and s["name"] != directory.name else ""
    console.print(
        f"[bold]{escape(str(directory))}[/]{named}: {s['sensors']} sensors x {s['steps']} steps every "
        f"{s['interval']}, {s['start']} .. {s['end']} ({s['span']}); usable {_percent(s['usable'])}"
    )
    with_flow = "flow" in s["features"]  # a zero beside a flow: only where the data has flow
    summary = Table(title=f"Per feature (runs of >= {s['run_steps']} steps; VDs / steps)")
    columns = ("feature", "coverage", "no data", "longest gap", "stuck", "zero runs") + (("0 with flow",) * with_flow)
    for column in columns:
        summary.add_column(column, justify="left" if column == "feature" else "right")
    for name, f in report["features"].items():
        summary.add_row(
            name,
            _percent(f["coverage"]),
            str(f["sensors_without_data"]),
            f["longest_gap"],
            f"{f['sensors_with_stuck_runs']} / {f['stuck_steps']}",
            f"{f['sensors_with_zero_runs']} / {f['zero_steps']}",
            *((str(f["zero_conflicts"]),) * with_flow),
        )
    console.print(summary)
    n = s["run_steps"]
    console.print(
        f"usable: steps with a reading in neither a stuck run ({n}+ steps of one non-zero value) nor a zero run "
        f"({n}+ zeros); stuck, zero runs: VDs with one / their steps; no data: VDs without a reading"
        + ("; 0 with flow: steps where speed or occupancy is 0 while flow counted vehicles" if with_flow else ""),
        style="dim",
        highlight=False,
        soft_wrap=True,
    )
    worst = Table(title=f"Worst {len(report['worst_sensors'])} sensors by usable share (coverage per feature)")
    for column in ("sensor_id", "usable", *s["features"], "longest gap", "stuck", "zero"):
        worst.add_column(column, justify="left" if column == "sensor_id" else "right", no_wrap=column == "sensor_id")
    for row in report["worst_sensors"]:
        detail = report["sensors"][row["sensor_id"]].values()
        gap = max((d["longest_gap"] for d in detail), key=lambda g: g["steps"])
        worst.add_row(
            row["sensor_id"],
            _percent(row["usable"]),
            *(_percent(row[name]) for name in s["features"]),
            gap["duration"],
            str(sum(d["stuck"]["steps"] for d in detail)),
            str(sum(d["zero"]["steps"] for d in detail)),
        )
    console.print(worst)


@app.command("inspect")
def inspect(
    directory: Annotated[Path, typer.Argument(help="Dataset directory (as written by 'data import' or 'data demo').")],
    json_path: Annotated[
        Optional[Path], typer.Option("--json", help="Where to write the full report (default: DIRECTORY/quality.json).")
    ] = None,
    top: Annotated[int, typer.Option(help="How many of the worst sensors to list.")] = 20,
    run_steps: Annotated[
        int, typer.Option(help="Steps a repeated or zero value must last to count as stuck / dead.")
    ] = 12,
) -> None:
    """Quality report: coverage, gaps, stuck and zero sensors; full detail goes to JSON."""
    from social_xlstm.data.dataset import INPUT_FILES, QUALITY_FILE, read_dataset, unlocated_sensors
    from social_xlstm.data.quality import quality_report, write_report
    from social_xlstm.files import refuse_replacing

    if json_path is not None:
        refuse_replacing(json_path, [directory / name for name in INPUT_FILES], "--json")
    dataset = read_dataset(directory)
    report = quality_report(dataset, run_steps=run_steps, top_k=top)
    _render_quality(report, directory)
    counts = dataset.meta.get("counts") or {}
    for feature, count in (counts.get("readings_infinite_made_missing") or {}).items():
        if count:
            console.print(
                f"[yellow]note:[/] {count:,} '{feature}' readings were infinite at import and count as missing"
            )
    for feature, count in (counts.get("readings_negative") or {}).items():
        if count:
            console.print(
                f"[yellow]note:[/] {count:,} '{feature}' readings are negative (read as values)", soft_wrap=True
            )
    unlocated = unlocated_sensors(dataset.sensors)
    if unlocated:
        named = first_few(unlocated)
        notice(
            console,
            f"{len(unlocated):,} sensors have no coordinates ({escape(named)}): unless the dataset's "
            "edges link them, they forecast from their own readings",
        )
    written = write_report(report, json_path or directory / QUALITY_FILE)
    console.print(f"wrote [bold]{written}[/]")
