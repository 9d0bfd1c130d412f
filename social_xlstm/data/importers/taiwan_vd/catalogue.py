"""The static side: every detector and link seen in any VDList version, latest version winning.

Detectors appear and disappear across VDList versions, and live records of a detector may
predate the version that dropped it, so no version is thrown away: a detector's (and each
link's) description comes from the newest VDList (by UpdateTime, then reading order) that has it.
"""

from __future__ import annotations

import math

import pandas as pd

from social_xlstm.data.importers.taiwan_vd.ids import normalise_vdid, sensor_id
from social_xlstm.data.importers.taiwan_vd.records import DetectionLink, StaticVD

SENSOR_COLUMNS = ("sensor_id", "vdid", "link_id", "direction", "latitude", "longitude", "lanes", "road_id", "road_name")


class StaticCatalogue:
    def __init__(self) -> None:
        self._vds: dict[str, tuple[tuple, StaticVD]] = {}
        self._links: dict[tuple[str, str], tuple[tuple, DetectionLink]] = {}
        self._versions_read = 0

    def add_version(self, update_time: int | None, vds: tuple[StaticVD, ...]) -> None:
        self._versions_read += 1
        rank = (-math.inf if update_time is None else update_time, self._versions_read)
        for vd in vds:
            key = normalise_vdid(vd.vdid)
            if key not in self._vds or self._vds[key][0] <= rank:
                self._vds[key] = (rank, vd)
            for link in vd.links:
                if (key, link.link_id) not in self._links or self._links[key, link.link_id][0] <= rank:
                    self._links[key, link.link_id] = (rank, link)

    @property
    def n_versions(self) -> int:
        return self._versions_read

    @property
    def n_detectors(self) -> int:
        return len(self._vds)

    def has_detector(self, norm_vdid: str) -> bool:
        return norm_vdid in self._vds

    def has_link(self, norm_vdid: str, link_id: str) -> bool:
        return (norm_vdid, link_id) in self._links

    def n_links_not_in(self, keys: set[tuple[str, str]]) -> int:
        return sum(1 for key in self._links if key not in keys)

    def sensors(self, keys: list[tuple[str, str]]) -> pd.DataFrame:
        """One row per (normalised VDID, LinkID) key, in the given order; see ``ids.sensor_id``."""
        directions_of: dict[str, list[str]] = {}
        for (norm_vdid, _), (_, link) in self._links.items():
            directions_of.setdefault(norm_vdid, []).append(link.direction)
        rows = []
        for norm_vdid, link_id in keys:
            vd = self._vds[norm_vdid][1]
            link = self._links[norm_vdid, link_id][1]
            rows.append(
                {
                    "sensor_id": sensor_id(vd.vdid, link_id, link.direction, directions_of[norm_vdid]),
                    "vdid": vd.vdid,
                    "link_id": link_id,
                    "direction": link.direction,
                    "latitude": vd.latitude,
                    "longitude": vd.longitude,
                    "lanes": link.lanes,
                    "road_id": vd.road_id,
                    "road_name": vd.road_name,
                }
            )
        frame = pd.DataFrame(rows, columns=list(SENSOR_COLUMNS))
        frame["lanes"] = frame["lanes"].astype("Int64")
        return frame
