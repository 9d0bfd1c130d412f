"""The embedded demo network: a simulated freeway corridor of VDs, made from a seed.

``make_demo(sensors=48, days=28, seed=0, interval="5min")`` returns a :class:`Dataset` with
flow (vehicles per interval, all lanes), speed (km/h) and occupancy (%) for each VD, the VDs'
coordinates along a Keelung-Taipei-Zhongli shaped freeway (both directions, ~0.55-1.1 km
apart) and the road graph. The defaults (48 VDs x 8064 five-minute steps) keep a CPU training
run within minutes; 400 VDs over 28 days generate in about 5 s (scripts/bench_demo.py).

Modules, in the order the data flows:
  corridor   roads, cells, lanes (with a lane drop), interchanges, VD positions, graph
  demand     daily and weekly demand at each line's entry and each on-ramp
  incidents  temporary capacity drops
  ctm        the Cell Transmission Model (Daganzo 1994), vectorised over cells
  detectors  what a VD reports: calibration, noise, outages
  network    assembly into a Dataset (``make_demo``)
"""

from social_xlstm.data.demo.network import make_demo

__all__ = ["make_demo"]
