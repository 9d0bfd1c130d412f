"""Benchmark the sLSTM over traffic shapes: forward and forward+backward time and peak memory.

Every method runs the same work: an input projection D -> 4D followed by the recurrence over T
steps for B*N sequences (one per sensor), width D = heads * head_dim.
  torch    the per-step PyTorch reference (social_xlstm_kernels, backend="torch")
  triton   the fused Triton kernel (one launch per direction)
  compile  the per-step loop with torch.compile'd cell
  lstm     torch.nn.LSTM of the same width (cuDNN on CUDA)
Defaults: on CPU torch vs lstm; on CUDA triton vs torch vs compile vs lstm. Speed-up is against
the per-step PyTorch loop. Prints a markdown table.

  python scripts/bench_slstm.py --quick
  python scripts/bench_slstm.py --device cuda --batch 1024 16384 65536 --seq 12 288 2016
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import torch
from bench_kernels import median_seconds
from benchreport import Table, add_doc_option

from social_xlstm_kernels import slstm_sequence
from social_xlstm_kernels.slstm.naive import initial_state, slstm_cell

METHODS = ("torch", "triton", "compile", "lstm")
METHODS_NOTE = (
    "Each method: input projection D -> 4D, then the recurrence over T steps. `torch` is the per-step PyTorch "
    "reference, `triton` the fused kernel, `compile` the per-step loop with a torch.compile'd cell, `lstm` nn.LSTM "
    "of the same width. Memory: CUDA allocator peak on GPU; on CPU the resident-set high-water mark of a child process."
)


def _proc_status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_bytes(fn, device: torch.device) -> int:
    """Peak memory of one call above the level before it: the CUDA allocator's peak, or on the
    CPU (Linux) the resident-set high-water mark, reset through /proc/self/clear_refs. The CPU
    figure follows the live tensors only in a process whose large allocations are each mmapped
    and unmapped on free (see cpu_peak_bytes_in_child)."""
    fn()  # warm-up: lazy initialisation and compilation are not the workload
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    base = _proc_status_bytes("VmRSS")
    fn()
    return _proc_status_bytes("VmHWM") - base


def _child_peak_bytes(case: dict, workload: str, threads: int | None) -> int:
    if threads:
        torch.set_num_threads(threads)
    return peak_bytes(make_workloads(**case, device=torch.device("cpu"))[workload], torch.device("cpu"))


def cpu_peak_bytes_in_child(case: dict, workload: str, threads: int | None) -> int:
    """Measure in a fresh process started with glibc's mmap threshold fixed at 64 KiB: with the
    default adaptive threshold freed blocks stay resident and are reused, hiding the peak."""
    previous = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_child_peak_bytes, case, workload, threads).result()
    finally:
        if previous is None:
            del os.environ["MALLOC_MMAP_THRESHOLD_"]
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = previous


def sequence_fn(method: str, heads: int, head_dim: int, device: torch.device):
    """A callable x [B, T, D] -> h_all [B, T, D] with its parameters, for one method."""
    width = heads * head_dim
    if method == "lstm":
        lstm = torch.nn.LSTM(width, width, batch_first=True).to(device)
        return lambda x: lstm(x)[0], list(lstm.parameters())

    projection = torch.nn.Linear(width, 4 * width).to(device)
    r = (torch.randn(heads, head_dim, 4, head_dim, device=device) / head_dim**0.5).requires_grad_()
    b = torch.zeros(heads, 4, head_dim, device=device, requires_grad=True)
    params = [*projection.parameters(), r, b]

    def preactivations(x):
        return projection(x).view(*x.shape[:2], heads, 4, head_dim)

    if method in ("torch", "triton"):
        return lambda x: slstm_sequence(preactivations(x), r, b, backend=method)[0].flatten(2), params

    cell = torch.compile(slstm_cell, dynamic=False)

    def compiled_loop(x):
        wx = preactivations(x)
        state = initial_state(wx, None, None, None, None)
        outputs = []
        for wx_t in wx.unbind(dim=1):
            state = cell(wx_t, r, b, state)
            outputs.append(state[0])
        return torch.stack(outputs, 1).flatten(2)

    return compiled_loop, params


def make_workloads(method, batch, seq, heads, head_dim, device) -> dict:
    """The two measured calls for one method and shape: forward only, and forward + backward."""
    fn, params = sequence_fn(method, heads, head_dim, device)
    x = torch.randn(batch, seq, heads * head_dim, device=device)

    def forward():
        with torch.no_grad():
            fn(x)

    def forward_backward():
        for p in params:
            p.grad = None
        fn(x).square().mean().backward()

    return {"fwd": forward, "fwd+bwd": forward_backward}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[1024, 16384, 65536], help="B*N sequences")
    parser.add_argument("--seq", type=int, nargs="+", default=[12, 288, 2016], help="time steps T")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="default: by device")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="B*N 1024, T 12, head dim 16, 3 repeats")
    add_doc_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.batch, args.seq, args.head_dim, args.repeats, args.warmup = [1024], [12], [16], 3, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = args.methods or (["torch", "lstm"] if device.type == "cpu" else ["torch", "triton", "compile", "lstm"])

    table = Table(
        f"bench_slstm-{device.type}",
        f"Fused sLSTM over time on {device.type.upper()}: time and peak memory",
        [
            "method",
            "B*N",
            "T",
            "heads x dim",
            "fwd ms",
            "fwd+bwd ms",
            "fwd+bwd speed-up vs torch",
            "peak fwd MiB",
            "peak fwd+bwd MiB",
        ],
        right_aligned=5,
    )
    for batch, seq, head_dim in itertools.product(args.batch, args.seq, args.head_dim):
        baseline = None
        for method in methods:
            case = dict(method=method, batch=batch, seq=seq, heads=args.heads, head_dim=head_dim)
            try:
                workloads = make_workloads(**case, device=device)
                seconds = {
                    name: median_seconds(fn, device, args.repeats, args.warmup) for name, fn in workloads.items()
                }
                if device.type == "cuda":
                    memory = {name: peak_bytes(fn, device) for name, fn in workloads.items()}
                else:
                    memory = {name: cpu_peak_bytes_in_child(case, name, args.threads) for name in workloads}
            except torch.OutOfMemoryError:  # the largest shapes need more than a GPU holds: say so, go on
                table.add(method, batch, seq, f"{args.heads} x {head_dim}", *["OOM"] * 5)
                workloads = None  # the shape's tensors go before the cache is handed back
                torch.cuda.empty_cache()
                continue
            if method == "torch":
                baseline = seconds["fwd+bwd"]
            speedup = f"{baseline / seconds['fwd+bwd']:.1f}x" if baseline else "-"
            table.add(
                method,
                batch,
                seq,
                f"{args.heads} x {head_dim}",
                f"{seconds['fwd'] * 1e3:.1f}",
                f"{seconds['fwd+bwd'] * 1e3:.1f}",
                speedup,
                f"{memory['fwd'] / 2**20:.0f}",
                f"{memory['fwd+bwd'] / 2**20:.0f}",
            )
    if not (args.quick or args.no_doc):
        table.write(METHODS_NOTE)


if __name__ == "__main__":
    main()
