"""The Cell Transmission Model (Daganzo 1994) for many parallel freeway lines at once.

A line is one travel direction of one road, cut into cells of length ``free_speed * dt`` so
that a vehicle in free flow crosses exactly one cell per step (the CFL limit). The
fundamental diagram is triangular: flow = min(free_speed * k, capacity, w * (k_jam - k)).
Every step moves ``min(sending upstream, receiving downstream)`` across each cell boundary;
on-ramps merge with a priority share of the receiving cell (Daganzo's merge), off-ramps take
a fixed share of a cell's outflow (FIFO diverge). Arrays are ``[lines, cells]``, so one numpy
expression updates every cell of every line: the only Python loop is over time.

Vehicles that cannot enter (at the upstream end or on a ramp) wait in a point queue, so the
model conserves vehicles exactly: what entered minus what left equals the change in cells
and queues.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LANE_CAPACITY_VEH_H = 2000.0
LANE_JAM_DENSITY_VEH_KM = 120.0
RAMP_CAPACITY_VEH_H = 1800.0


@dataclass(frozen=True)
class CellNetwork:
    """Static layout of ``lines`` x ``cells``; cell 0 is the upstream end of each line.

    ``exit_share[l, c]`` is the share of cell c's outflow that leaves by an off-ramp right
    after it; ``onramp[l, c]`` says an on-ramp merges at the upstream edge of cell c. The two
    never meet at one boundary (a diverge and a merge are separate nodes).
    """

    lanes: np.ndarray
    free_speed_kmh: float
    dt_s: float
    onramp: np.ndarray
    exit_share: np.ndarray
    lane_capacity_veh_h: float = LANE_CAPACITY_VEH_H
    lane_jam_density_veh_km: float = LANE_JAM_DENSITY_VEH_KM
    ramp_capacity_veh_h: float = RAMP_CAPACITY_VEH_H
    onramp_cells: np.ndarray = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "onramp_cells", np.flatnonzero(self.onramp))
        exits_into = np.zeros_like(self.exit_share)
        exits_into[:, 1:] = self.exit_share[:, :-1]
        if (self.onramp & (exits_into > 0)).any():
            raise ValueError("an off-ramp and an on-ramp share one cell boundary")
        if (self.exit_share[:, -1] > 0).any() or (self.exit_share >= 1).any():
            raise ValueError("exit shares must be below 1, and 0 on the last cell")

    @property
    def shape(self) -> tuple[int, int]:
        return self.lanes.shape

    @property
    def dt_h(self) -> float:
        return self.dt_s / 3600.0

    @property
    def cell_length_km(self) -> float:
        return self.free_speed_kmh * self.dt_h

    @property
    def wave_speed_kmh(self) -> float:
        """Backward (congestion) wave speed of the triangular diagram."""
        critical = self.lane_capacity_veh_h / self.free_speed_kmh
        return self.lane_capacity_veh_h / (self.lane_jam_density_veh_km - critical)

    @property
    def max_vehicles(self) -> np.ndarray:
        return self.lanes * self.lane_jam_density_veh_km * self.cell_length_km

    def capacity_per_step(self, capacity_factor: np.ndarray | float = 1.0) -> np.ndarray:
        return self.lanes * self.lane_capacity_veh_h * self.dt_h * capacity_factor


@dataclass
class CellState:
    """Vehicles in cells, in each line's entry queue and in each on-ramp queue."""

    vehicles: np.ndarray
    entry_queue: np.ndarray
    ramp_queue: np.ndarray

    @classmethod
    def empty(cls, net: CellNetwork) -> "CellState":
        lines, cells = net.shape
        return cls(np.zeros((lines, cells)), np.zeros(lines), np.zeros(len(net.onramp_cells)))

    def total(self) -> float:
        return float(self.vehicles.sum() + self.entry_queue.sum() + self.ramp_queue.sum())


@dataclass
class StepFlows:
    """Vehicles moved in one step: ``into[l, c]`` mainline inflow to cell c, ``ramp_in`` from
    its on-ramp, ``out`` leaving cell c (to the next cell and the off-ramp). The ledger terms
    are computed on demand, as the simulation loop needs only ``out``."""

    into: np.ndarray
    ramp_in: np.ndarray
    out: np.ndarray
    exit_share: np.ndarray
    entry_demand: np.ndarray
    ramp_demand: np.ndarray

    @property
    def exits(self) -> np.ndarray:
        """Vehicles taking the off-ramp after each cell."""
        return self.out * self.exit_share

    @property
    def entered(self) -> float:
        """Vehicles that joined the entry and ramp queues from outside this step."""
        return float(self.entry_demand.sum() + self.ramp_demand.sum())


def _median(a, b, c):
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


class CellTransmission:
    """Advances a :class:`CellNetwork` one step at a time, vectorised over all cells."""

    def __init__(self, net: CellNetwork):
        self.net = net
        lanes = net.lanes.astype(float)
        self.merge_priority = lanes / (lanes + 1.0)  # the mainline keeps one lane's share per lane
        self.wave_ratio = net.wave_speed_kmh / net.free_speed_kmh
        self.max_vehicles = net.max_vehicles
        self.ramp_send_cap = net.ramp_capacity_veh_h * net.dt_h
        self.pass_share = np.ones_like(lanes)
        self.pass_share[:, 1:] = 1.0 - net.exit_share[:, :-1]
        self.set_capacity_factor(1.0)

    def set_capacity_factor(self, factor: np.ndarray | float) -> None:
        """Scale each cell's capacity (incidents); jam density and wave speed stay."""
        self.capacity = self.net.capacity_per_step(factor)

    def step(self, state: CellState, entry_demand: np.ndarray, ramp_demand: np.ndarray) -> StepFlows:
        """Move vehicles one step; ``entry_demand`` [lines] and ``ramp_demand`` [ramps] arrive
        this step (vehicles). ``state`` is updated in place."""
        n, cap = state.vehicles, self.capacity
        state.entry_queue += entry_demand
        state.ramp_queue += ramp_demand
        send = np.minimum(n, cap)
        receive = np.minimum(cap, self.wave_ratio * (self.max_vehicles - n))
        upstream = np.empty_like(n)
        upstream[:, 1:] = send[:, :-1]
        upstream[:, 0] = np.minimum(state.entry_queue, cap[:, 0])
        ramp_send = np.zeros_like(n)
        ramp_send.flat[self.net.onramp_cells] = np.minimum(state.ramp_queue, self.ramp_send_cap)
        # What the upstream cell may send in total when a share of it leaves before this cell.
        room = receive / self.pass_share
        congested = upstream + ramp_send > room
        p = self.merge_priority
        moved = np.where(congested, _median(upstream, room - ramp_send, p * room), upstream)
        ramp_in = np.where(congested, _median(ramp_send, room - upstream, (1.0 - p) * room), ramp_send)
        into = moved * self.pass_share
        out = np.empty_like(n)
        out[:, :-1] = moved[:, 1:]
        out[:, -1] = send[:, -1]
        state.entry_queue -= moved[:, 0]
        state.ramp_queue -= ramp_in.flat[self.net.onramp_cells]
        n += into + ramp_in - out
        return StepFlows(into, ramp_in, out, self.net.exit_share, entry_demand, ramp_demand)


@dataclass
class SensorSeries:
    """Per-interval readings of the cells that hold a sensor: ``flow`` vehicles per interval
    over all lanes, ``density`` mean vehicles/km over all lanes, ``speed`` space-mean km/h."""

    flow: np.ndarray
    density: np.ndarray
    speed: np.ndarray


def simulate(
    net: CellNetwork,
    entry_veh_h: np.ndarray,
    ramp_veh_h: np.ndarray,
    substeps: int,
    sensor_cells: np.ndarray,
    capacity_schedule: dict[int, np.ndarray] | None = None,
) -> SensorSeries:
    """Run the model for ``len(entry_veh_h)`` intervals of ``substeps`` steps each.

    Demands (veh/h, ``[intervals, lines]`` and ``[intervals, ramps]``) hold within an
    interval; ``capacity_schedule[i]`` replaces the capacity factors from interval i on.
    Speed is total distance over total time in the cell (sum of outflow / sum of vehicles
    times free speed), so it is never above free speed.
    """
    model = CellTransmission(net)
    state = CellState.empty(net)
    schedule = capacity_schedule or {}
    intervals = len(entry_veh_h)
    flow = np.empty((intervals, len(sensor_cells)))
    vehicles = np.empty_like(flow)
    acc_out = np.zeros(net.shape)
    acc_vehicles = np.zeros(net.shape)
    for i in range(intervals):
        if i in schedule:
            model.set_capacity_factor(schedule[i])
        entry = entry_veh_h[i] * net.dt_h
        ramp = ramp_veh_h[i] * net.dt_h
        acc_out.fill(0.0)
        acc_vehicles.fill(0.0)
        for _ in range(substeps):
            acc_vehicles += state.vehicles
            acc_out += model.step(state, entry, ramp).out
        flow[i] = acc_out.flat[sensor_cells]
        vehicles[i] = acc_vehicles.flat[sensor_cells]
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(vehicles > 1e-9, flow / vehicles * net.free_speed_kmh, net.free_speed_kmh)
    density = vehicles / (substeps * net.cell_length_km)
    return SensorSeries(flow=flow, density=density, speed=np.minimum(speed, net.free_speed_kmh))
