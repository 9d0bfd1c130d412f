"""The load the dashboard holds: many clients at once against a `social-xlstm serve` process.

Starts the server as a child process (as a user runs it), then ``--clients`` concurrent clients
send ``--requests`` requests in all, half ``/api/forecast`` and half one sensor's
``/api/sensors/{id}`` with ``--history`` readings, each at an origin drawn from the last
``--origins`` time steps (operators scrubbing through the recent past; every origin is a new
forecast the first time). Reports latency percentiles per endpoint, errors, throughput and the
server's peak memory.

  python scripts/bench_dashboard_load.py runs/bench/demo-project-default-seed0 --data data/demo
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from benchreport import Table, add_bundle_argument, add_doc_option, bundle_of


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(bundle: Path, data: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "social_xlstm.cli", "serve", str(bundle), "--data", str(data), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve exited with status {server.returncode}: {server.stderr.read().strip()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/meta", timeout=2).raise_for_status()
            return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("serve did not answer /api/meta within 120 s")


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far (/proc/PID/stat, Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """A process's peak resident memory (VmHWM, Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(base: str, paths: list[tuple[str, str]], clients: int) -> tuple[dict[str, list[float]], int, float]:
    """Send every (endpoint, path) with ``clients`` at once; latencies in ms per endpoint,
    the number of failed requests, and the wall seconds."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in paths:
        queue.put_nowait(item)
    latencies: dict[str, list[float]] = {}
    errors = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            endpoint, path = queue.get_nowait()
            start = time.perf_counter()
            try:
                response = await http.get(path)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.setdefault(endpoint, []).append((time.perf_counter() - start) * 1e3)
            errors += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return latencies, errors, time.perf_counter() - start


def request_paths(meta: dict, sensors: list[str], args: argparse.Namespace) -> list[tuple[str, str]]:
    rng = random.Random(0)
    step = np.timedelta64(int(meta["minutes"][0] / meta["horizons"][0] * 60), "s")
    latest = np.datetime64(meta["latest_origin"][:19])
    origins = [str(latest - k * step) for k in range(args.origins)]
    paths = []
    for i in range(args.requests):
        at = rng.choice(origins)
        if i % 2:
            paths.append(("/api/forecast", f"/api/forecast?at={at}"))
        else:
            sensor = rng.choice(sensors)
            paths.append(("/api/sensors/{id}", f"/api/sensors/{sensor}?history={args.history}&at={at}"))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bundle_argument(parser)
    parser.add_argument("--data", type=Path, required=True, help="the dataset the dashboard serves")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=4000, help="requests in all")
    parser.add_argument("--origins", type=int, default=288, help="the origins drawn from: the last N time steps")
    parser.add_argument("--history", type=int, default=288, help="readings asked for by the sensor requests")
    add_doc_option(parser)
    args = parser.parse_args()
    if min(args.clients, args.requests, args.origins, args.history) < 1:
        parser.error("--clients, --requests, --origins and --history must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        bundle = bundle_of(args.run_or_bundle, Path(tmp))
        port = free_port()
        server = start_server(bundle, args.data, port)
        try:
            base = f"http://127.0.0.1:{port}"
            meta = httpx.get(f"{base}/api/meta").json()
            sensors = [s["sensor_id"] for s in httpx.get(f"{base}/api/sensors").json()["sensors"]]
            paths = request_paths(meta, sensors, args)
            cpu_before = cpu_seconds(server.pid)
            latencies, errors, seconds = asyncio.run(load(base, paths, args.clients))
            server_ms = (cpu_seconds(server.pid) - cpu_before) / len(paths) * 1e3
            rss = peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    table = Table(
        "bench_dashboard_load",
        f"Dashboard under load: {args.clients} clients, {len(sensors)} sensors",
        ["endpoint", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        right_aligned=5,
    )
    for endpoint, times in sorted(latencies.items()):
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        table.add(endpoint, len(times), f"{p50:.0f}", f"{p95:.0f}", f"{p99:.0f}", f"{max(times):.0f}")
    note = (
        f"{len(paths)} requests from {args.clients} concurrent clients (httpx, keep-alive) in {seconds:.1f} s: "
        f"{len(paths) / seconds:.0f} requests/s, {errors} errors. Origins drawn from the last {args.origins} "
        f"time steps, sensor requests with history={args.history}. One `social-xlstm serve` process "
        f"(uvicorn, one worker) on the same machine as the clients: {server_ms:.2f} ms of server CPU per request "
        f"(the clients take the rest of the cores), peak memory {rss:.0f} MiB. "
        f"Dataset `{args.data}`, model `{args.run_or_bundle}`."
    )
    print(table.markdown(note))
    if not args.no_doc:
        table.write(note)
    if errors:
        raise SystemExit(f"{errors} of {len(paths)} requests failed")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
