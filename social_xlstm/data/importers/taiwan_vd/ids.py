"""Detector ids: the VDList and the VDLiveList do not always spell the same VDID alike.

Real archives pad numeric fields differently (``VD-11-0020-002-01`` in one feed,
``VD-11-0020-002-001`` in the other). We compare ids by value: upper case, trimmed, and each
all-digit field read as an integer. Fields that differ in value (``-01`` vs ``-002``) stay
different detectors; merging them would mix two detectors' readings, so such live records are
reported as unmatched instead.
"""

from __future__ import annotations


def normalise_vdid(vdid: str) -> str:
    fields = vdid.strip().upper().split("-")
    return "-".join(str(int(field)) if field.isdigit() else field for field in fields)


def sensor_id(vdid: str, link_id: str, direction: str, directions_of_vd: list[str]) -> str:
    """``VDID:direction`` (e.g. ``VD-11-0020-002-01:E``), the name a traffic engineer uses.

    When the direction is unknown or two links of one detector share it, the LinkID is the only
    unambiguous name, so ``VDID:LinkID`` is used instead.
    """
    if direction and directions_of_vd.count(direction) == 1:
        return f"{vdid}:{direction}"
    return f"{vdid}:{link_id}"
