"""Incidents: temporary capacity drops at one cell (a crash, a breakdown, debris).

In the CTM a capacity drop makes the cell send less than arrives, so a queue builds in the
cells behind it and its tail travels upstream; once the incident clears the queue discharges
at capacity. Incidents happen in daytime, when there is traffic to queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INCIDENTS_PER_LINE_PER_DAY = 0.15
DURATION_MIN = (20.0, 90.0)
REMAINING_CAPACITY = (0.3, 0.6)
DAYTIME_HOURS = (6.0, 21.0)


@dataclass(frozen=True)
class Incident:
    line: int
    cell: int
    start: int  # first interval with reduced capacity
    end: int  # first interval back to normal
    remaining_capacity: float


def sample_incidents(
    rng: np.random.Generator, lines: int, cells: int, days: int, intervals_per_day: int, first_interval: int
) -> list[Incident]:
    """Poisson number of incidents per line, at uniform daytime moments and random cells."""
    interval_min = 1440.0 / intervals_per_day
    incidents = []
    for line in range(lines):
        for _ in range(rng.poisson(INCIDENTS_PER_LINE_PER_DAY * days)):
            day = int(rng.integers(days))
            start = first_interval + day * intervals_per_day + int(rng.uniform(*DAYTIME_HOURS) * 60 / interval_min)
            length = max(1, int(round(rng.uniform(*DURATION_MIN) / interval_min)))
            incidents.append(
                Incident(
                    line,
                    int(rng.integers(cells // 4, cells - 2)),
                    start,
                    start + length,
                    float(rng.uniform(*REMAINING_CAPACITY)),
                )
            )
    return sorted(incidents, key=lambda i: i.start)


def capacity_schedule(incidents: list[Incident], lines: int, cells: int) -> dict[int, np.ndarray]:
    """Capacity factors ``[lines, cells]`` from each interval where an incident starts or ends."""
    moments = sorted({i.start for i in incidents} | {i.end for i in incidents})
    schedule = {}
    for moment in moments:
        factor = np.ones((lines, cells))
        for incident in incidents:
            if incident.start <= moment < incident.end:
                factor[incident.line, incident.cell] = min(
                    factor[incident.line, incident.cell], incident.remaining_capacity
                )
        schedule[moment] = factor
    return schedule
