"""Import Taiwan MOTC vehicle-detector feeds (VDList + VDLiveList snapshots) into a Dataset.

One pass over the inputs, one document at a time. Byte-identical documents (the VDList copied
into every snapshot folder) are recognised by hash and read once. Documents are summarised
(``summaries``, in worker processes for large inputs), VDLists feed the static catalogue, and
live readings are de-duplicated and reduced at once to per-(sensor, interval) sums (``live``,
``accumulate``), so memory follows the sensors, never the number of records read; the sums
of all but the newest few blocks of time wait on disk (``blocks``), so it does not follow the
span of time either.
Live records are matched to detectors at the end, when every VDList version is known.

A sensor is one (VDID, LinkID) pair, i.e. one direction of one detector, named ``VDID:E``
(see ``ids.sensor_id``). Detectors listed in a VDList that never report are left out (and
counted); live records whose detector or link is in no VDList are left out and reported.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from social_xlstm.data.dataset import StreamedDataset
from social_xlstm.data.importers.provenance import table_meta
from social_xlstm.data.importers.taiwan_vd.accumulate import FEATURES, MIN_FLOW_COVERAGE, IntervalSums
from social_xlstm.data.importers.taiwan_vd.catalogue import StaticCatalogue
from social_xlstm.data.importers.taiwan_vd.ids import normalise_vdid
from social_xlstm.data.importers.taiwan_vd.live import LiveReadings
from social_xlstm.data.importers.taiwan_vd.quality import MAX_LANE_VOLUME, MISSING, SENTINELS, VALID_RANGE
from social_xlstm.data.importers.taiwan_vd.sources import MAX_UNPACKED_BYTES, iter_sources
from social_xlstm.data.importers.taiwan_vd.summaries import (
    DocumentPool,
    LiveSummary,
    StaticSummary,
    cyclic_gc_paused,
    parse,
    summarise,
)
from social_xlstm.data.importers.timeline import MAX_GRID_VALUES, check_timezone, parse_interval
from social_xlstm.errors import InputError

__all__ = ["import_taiwan_vd"]

SOURCE = "Taiwan MOTC vehicle detector feeds (VDList / VDLiveList, MOTC traffic-data standard)"
LICENCE = "Open Government Data License, version 1.0 (Taiwan)"
# Documents up to this size are read whole (hashed, so that copies are read once, and parsed in a
# worker); larger ones are parsed here as a stream. A snapshot is a few MB; the parent holds up to
# 2 x workers + 1 documents read whole, so this bounds what they cost (0.5 GiB with 8 workers).
WHOLE_FILE_BYTES = 32 * 2**20
UNITS = {"flow": "veh/interval", "speed": "km/h", "occupancy": "%"}


def _interval_seconds(interval: str) -> int:
    seconds = int(parse_interval(interval).total_seconds())
    if seconds % 60:
        raise InputError(
            "--interval", f"{interval!r} must be a whole number of minutes (the feed reports every minute)"
        )
    return seconds


@contextlib.contextmanager
def _readable(name: str) -> Iterator[None]:
    """A file that cannot be read (a corrupt archive member, a vanished file) is bad input."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise InputError(name, f"unreadable ({exc})") from None


def _default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)))


def import_taiwan_vd(
    paths: list[Path],
    *,
    interval: str = "5min",
    timezone: str = "Asia/Taipei",
    name: str | None = None,
    workers: int | None = None,
    spill_dir: Path | None = None,
    progress: Callable[[str, Counter], None] | None = None,
    min_flow_coverage: float = MIN_FLOW_COVERAGE,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
) -> StreamedDataset:
    """Read VD snapshots (folders, XML/JSON files, zip/7z archives) into a regular-grid dataset.

    The result streams its readings a block of time at a time (``write_dataset`` writes it
    without ever holding the whole grid; ``.load()`` gives an in-memory Dataset).

    Per sensor and interval: flow = sum of lane volumes over vehicle types (veh/interval;
    scaled to the full interval when some minutes are missing, NaN when fewer than
    ``min_flow_coverage`` of them hold a reading, see ``accumulate``), speed = volume-weighted
    mean of lane speeds (plain mean when no volume), occupancy = mean over lanes and minutes.
    Sentinels (-99, -1, 255, 999) and out-of-range values are missing, never 0. ``workers`` parse
    processes are used for large inputs (default: the CPUs available, at most 8; 1 = never start a
    pool). The sums of older blocks of time, and the unpacked members of a 7z archive (at most
    ``max_unpacked_bytes`` of them, see ``sources``), wait in temporary folders inside ``spill_dir``
    (default: TMPDIR, which is memory where /tmp is a tmpfs; the CLI puts them beside the output).
    ``progress`` is called after each input file with its name and the counts so far, so a long
    import can show where it is.
    """
    interval_s = _interval_seconds(interval)
    check_timezone(timezone)
    if not 0 < min_flow_coverage <= 1:
        raise InputError("--min-flow-coverage", f"must be a share of the minutes in (0, 1], got {min_flow_coverage}")
    if not paths:
        raise InputError("taiwan-vd", "no input paths given")
    tally: Counter = Counter()
    catalogue = StaticCatalogue()
    live = LiveReadings(IntervalSums(interval_s, timezone, spill_dir, min_flow_coverage), spill_dir)

    def take(summary: StaticSummary | LiveSummary) -> None:
        if isinstance(summary, StaticSummary):
            catalogue.add_version(summary.update_time, summary.vds)
        else:
            tally["vdlivelist_files"] += 1
            live.add(summary, tally)

    digests: set[bytes] = set()
    sources = iter_sources(list(paths), tally, unpack_dir=spill_dir, max_unpacked_bytes=max_unpacked_bytes)
    with DocumentPool(workers or _default_workers()) as pool, contextlib.closing(sources):
        for source in sources:
            with _readable(source.name), source.open() as stream:
                data = stream.read(WHOLE_FILE_BYTES + 1)
            if len(data) > WHOLE_FILE_BYTES:  # too big to hold: parse here, as a stream
                data = b""  # not held meanwhile
                for summary in pool.drain():
                    take(summary)
                with _readable(source.name), source.open() as stream, cyclic_gc_paused():
                    take(summarise(parse(source.name, source.fmt, stream)))
            elif (digest := hashlib.sha1(data).digest()) in digests:
                tally["identical_files_skipped"] += 1  # a VDList copied into every snapshot, or a file archived twice
            else:
                digests.add(digest)
                for summary in pool.submit(source.name, source.fmt, data):
                    take(summary)
            if progress is not None:
                progress(source.name, tally)
        for summary in pool.drain():
            take(summary)
    return _assemble(paths, catalogue, live, tally, interval, timezone, name)


def _assemble(
    paths,
    catalogue: StaticCatalogue,
    live: LiveReadings,
    tally: Counter,
    interval: str,
    timezone: str,
    name: str | None,
) -> StreamedDataset:
    where = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more inputs)"
    if not catalogue.n_detectors:
        raise InputError(
            where, "no VDList (detector positions) found; a snapshot folder holds VDList.xml and VDLiveList.xml"
        )
    if not tally["vdlivelist_files"]:
        raise InputError(
            where, "no VDLiveList (live readings) found; a snapshot folder holds VDList.xml and VDLiveList.xml"
        )
    if not live.rows:
        raise InputError(
            where,
            "no live reading in the VDLiveList files (each was empty, or every record was dropped as implausible)",
        )
    matched = [key for key in live.rows if catalogue.has_link(*key)]
    unknown_vd = [key for key in live.rows if not catalogue.has_detector(key[0])]
    unknown_link = [key for key in live.rows if catalogue.has_detector(key[0]) and not catalogue.has_link(*key)]
    spelled = {norm: raw for raw, norm in live.normalised.items()}
    unmatched_records = sum(live.records_per_row[live.rows[key]] for key in unknown_vd)
    if not matched:
        raise InputError(
            where,
            f"no live record matches a VDList detector; live VDIDs look like {spelled[next(iter(live.rows))[0]]!r}",
        )
    sensors = catalogue.sensors(matched).sort_values("sensor_id", kind="stable").reset_index(drop=True)
    rows = [live.rows[normalise_vdid(vdid), link_id] for vdid, link_id in zip(sensors["vdid"], sensors["link_id"])]
    span = live.sums.survey(rows)
    if span is not None and span.steps * len(rows) * len(FEATURES) > MAX_GRID_VALUES and span.filled < span.steps / 2:
        # a large grid mostly of steps without any reading: a snapshot of another year, not a long feed
        first, last = live.sums.bucket_start(span.first), live.sums.bucket_start(span.last)
        raise InputError(
            where,
            f"readings from {first} to {last} fill {span.filled:,} of its {span.steps:,} steps; with "
            f"{len(rows):,} sensors that grid is past {MAX_GRID_VALUES:,} values, most of them missing: "
            "check the snapshots' times (a folder of another year?)",
        )
    counts = {
        "vdlist_versions": catalogue.n_versions,
        "vdlivelist_files": tally["vdlivelist_files"],
        "identical_files_skipped": tally["identical_files_skipped"],
        "other_files_skipped": tally["files_skipped"],
        "static_detectors": catalogue.n_detectors,
        "static_links_without_readings": catalogue.n_links_not_in(set(matched)),
        "live_records_read": tally["live_records_read"],
        "live_records_deduplicated": tally["live_records_deduplicated"],
        "live_records_implausible_time": tally["live_records_implausible_time"],
        "live_records_implausible_volume": tally["live_records_implausible_volume"],
        "live_records_unmatched_detector": unmatched_records,
        "live_records_unmatched_link": sum(live.records_per_row[live.rows[key]] for key in unknown_link),
        "live_records_used": sum(live.records_per_row[live.rows[key]] for key in matched),
        "values_missing": {reason: int(count) for reason, count in zip(MISSING, live.missing) if count},
        "flow_intervals_scaled_for_missing_minutes": 0 if span is None else span.flow_scaled,
        "flow_intervals_missing_for_low_coverage": 0 if span is None else span.flow_too_sparse,
    }
    chunks = functools.partial(live.sums.chunks, rows, span)
    return StreamedDataset(
        features=list(FEATURES),
        sensors=sensors,
        chunks=chunks,
        meta=table_meta(
            format_name="taiwan-vd",
            source=SOURCE,
            licence=LICENCE,
            step=pd.Timedelta(interval),
            units=UNITS,
            missing_values=sorted(SENTINELS),
            inputs={f"input_{i}": path for i, path in enumerate(paths, 1)},
            name=name,
            timezone=timezone,
            missing_value_convention=(
                "null/NaN = missing. Source sentinels "
                + ", ".join(str(int(v)) for v in sorted(SENTINELS))
                + " and values outside speed 0..200 km/h, occupancy 0..100 %, volume >= 0 are missing, never 0; "
                "speed 0 with volume 0 is an empty road and is kept; a record with a lane volume above "
                f"{MAX_LANE_VOLUME:,.0f} (or infinite) is dropped whole (import_counts.live_records_implausible_volume)"
            ),
            aggregation={
                "label": "interval start; a reading belongs to the interval holding its DataCollectTime",
                "flow": (
                    "sum of lane volumes over vehicle types per interval; with missing minutes, the mean per-minute "
                    f"volume of complete readings x minutes per interval, NaN below {live.sums.min_flow_coverage:.0%} "
                    "of the minutes"
                ),
                "speed": (
                    "volume-weighted mean of lane speeds; plain mean of lane speeds when every volume is 0 or missing"
                ),
                "occupancy": "mean of lane occupancies over lanes and minutes",
            },
            sensor_id_convention=(
                "VDID:RoadDirection (VDID as in the newest VDList; VDID:LinkID when the direction is missing or "
                "shared by two links); VDIDs are matched with numeric fields compared by value (zero padding ignored)"
            ),
            valid_ranges={
                field: [low, None if high == float("inf") else high] for field, (low, high) in VALID_RANGE.items()
            },
            unmatched_live_records=unmatched_records,
            unmatched_vdids=sorted({spelled[key[0]] for key in unknown_vd})[:20],
            import_counts=counts,
        ),
    )
