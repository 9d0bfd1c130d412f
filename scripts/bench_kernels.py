"""Benchmark the project's kernels over traffic shapes: forward and forward+backward time and
peak memory, printed as a markdown table.

Traffic shapes are many short sequences: one per sensor and sample (B*N from 1k to 64k), T from
12 (one hour of 5-minute readings) to 2016 (a week), 4 heads, head dim 16..64.

mLSTM methods (inputs q, k, v [B*N, heads, T, head_dim], gates [B*N, heads, T]):
  ours-chunkwise   our chunkwise PyTorch reference (backend="torch")
  ours-parallel    our parallel PyTorch reference (O(T^2) memory; skipped for T > --max-parallel-len)
  ours-triton      our Triton chunkwise kernels (CUDA)
  ours-compile     torch.compile of our chunkwise PyTorch reference (CUDA)
  nx-parallel      mlstm-kernels' native parallel form (autograd)
  nx-chunkwise     mlstm-kernels' native chunkwise form (needs T divisible by its chunk size)
  nx-triton        mlstm-kernels' Triton chunkwise kernels, triton_xl_chunk (CUDA; T multiple of 16)
  torch-lstm       nn.LSTM of the same width (heads x dim) over the same sequences, for scale
Defaults: on the CPU the PyTorch paths, ours against NX-AI's; on CUDA every method.

  python scripts/bench_kernels.py --quick
  python scripts/bench_kernels.py --device cuda --sequences 1024 16384 65536 --seq 12 288 2016 --head-dim 16 64
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from benchreport import Table, add_doc_option


@dataclass(frozen=True)
class Shape:
    sequences: int
    seq_len: int
    heads: int
    head_dim: int
    dtype: torch.dtype
    device: torch.device


@dataclass
class Case:
    """One kernel family: how to make its inputs and the methods that compute the same thing.
    Each method maps the inputs to one output tensor, or returns None when it cannot run the
    shape (then the row says n/a)."""

    name: str
    make_inputs: Callable[[Shape, bool], tuple[torch.Tensor, ...]]
    methods: Callable[[Shape, argparse.Namespace], dict[str, Callable[..., torch.Tensor | None]]]


# ---------------------------------------------------------------------------------- mLSTM
def mlstm_inputs(shape: Shape, requires_grad: bool) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator(device=shape.device).manual_seed(0)
    B, NH, S, DH = shape.sequences, shape.heads, shape.seq_len, shape.head_dim

    def rand(*dims, scale=1.0, shift=0.0):
        x = torch.randn(*dims, generator=gen, device=shape.device, dtype=torch.float32) * scale + shift
        return x.to(shape.dtype).requires_grad_(requires_grad)

    return (
        rand(B, NH, S, DH),
        rand(B, NH, S, DH),
        rand(B, NH, S, DH),
        rand(B, NH, S),
        rand(B, NH, S, scale=2.0, shift=3.0),
    )


def mlstm_methods(shape: Shape, args: argparse.Namespace) -> dict[str, Callable]:
    from mlstm_kernels.torch.chunkwise import mlstm_chunkwise__native_autograd
    from mlstm_kernels.torch.parallel import mlstm_parallel__native_autograd

    from social_xlstm_kernels import mlstm_chunkwise, mlstm_parallel

    chunk = args.chunk_size
    short_enough = shape.seq_len <= args.max_parallel_len

    def ours(backend):
        return lambda *x: mlstm_chunkwise(*x, chunk_size=chunk, backend=backend)

    def nx_chunkwise(*x):
        # its chunkwise form needs T divisible by the chunk size: the largest such power of two
        nx_chunk = next((c for c in (64, 32, 16, 8, 4) if c <= chunk and shape.seq_len % c == 0), None)
        return None if nx_chunk is None else mlstm_chunkwise__native_autograd(*x, chunk_size=nx_chunk)

    lstm = torch.nn.LSTM(shape.heads * shape.head_dim, shape.heads * shape.head_dim, batch_first=True)
    lstm = lstm.to(shape.device, shape.dtype)

    def torch_lstm(q, k, v, i, f):
        b, nh, s, dh = v.shape
        return lstm(v.permute(0, 2, 1, 3).reshape(b, s, nh * dh))[0]

    methods = {
        "ours-chunkwise": ours("torch"),
        "ours-parallel": (lambda *x: mlstm_parallel(*x, backend="torch") if short_enough else None),
        "nx-chunkwise": nx_chunkwise,
        "nx-parallel": (lambda *x: mlstm_parallel__native_autograd(*x) if short_enough else None),
        "torch-lstm": torch_lstm,
    }
    if shape.device.type == "cuda":
        from mlstm_kernels.torch.chunkwise import mlstm_chunkwise__xl_chunk

        compiled = torch.compile(ours("torch"), dynamic=False)
        methods["ours-triton"] = ours("triton")
        methods["ours-compile"] = compiled
        # its kernels need the length to divide by the chunk: the largest power of two from 128
        # down to 16 that does (288 and 2016 take 32; 12 has none, and the row is skipped)
        nx_chunk = next((c for c in (128, 64, 32, 16) if shape.seq_len % c == 0), None)
        methods["nx-triton"] = lambda *x: (
            None if nx_chunk is None else mlstm_chunkwise__xl_chunk(*x, chunk_size=nx_chunk)
        )
    return methods


CASES: list[Case] = [Case("mlstm", mlstm_inputs, mlstm_methods)]  # the fused sLSTM has its own script: bench_slstm.py

MEMORY_NOTE = {
    "cpu": "Memory: peak resident set size above the level at entry, sampled every millisecond (approximate). "
    "`torch-lstm` is `nn.LSTM` of the same width (heads x dim) over the same sequences, for scale.",
    "cuda": "Memory: peak CUDA memory allocated above the level at entry. "
    "`torch-lstm` is `nn.LSTM` (cuDNN) of the same width (heads x dim) over the same sequences, for scale.",
}


# --------------------------------------------------------------------------------- runner
class PeakMemory:
    """Peak memory above the level at entry: the CUDA allocator's peak, or on the CPU the peak
    resident set size sampled every millisecond (approximate)."""

    def __init__(self, device: torch.device):
        self.device, self.peak_bytes = device, 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while self._running:
            self._peak = max(self._peak, self._rss())
            time.sleep(0.001)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self._base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        else:
            self._base = self._peak = self._rss()
            self._running = True
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated() - self._base
        else:
            self._running = False
            self._thread.join()
            self.peak_bytes = max(self._peak, self._rss()) - self._base


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 0) -> float:
    """Median wall seconds of `repeats` calls after `warmup` untimed ones (CUDA work waited for)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, int]:
    """Median seconds over repeats (after one warm-up run) and the peak memory of one run."""
    fn()
    with PeakMemory(device) as memory:
        fn()
    return median_seconds(fn, device, repeats), memory.peak_bytes


def measure(case: Case, shape: Shape, method: Callable, repeats: int) -> dict | None:
    inputs = case.make_inputs(shape, False)
    with torch.no_grad():
        if method(*inputs) is None:
            return None
        forward_s, forward_mem = timed(lambda: method(*inputs), shape.device, repeats)
    grad_inputs = case.make_inputs(shape, True)

    def forward_backward():
        method(*grad_inputs).float().sum().backward()

    backward_s, backward_mem = timed(forward_backward, shape.device, repeats)
    return dict(
        fwd_ms=forward_s * 1e3, fwd_mib=forward_mem / 2**20, fwdbwd_ms=backward_s * 1e3, fwdbwd_mib=backward_mem / 2**20
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cases", nargs="+", default=[c.name for c in CASES], choices=[c.name for c in CASES])
    parser.add_argument("--methods", nargs="+", help="only these methods (default: all that run on the device)")
    parser.add_argument("--sequences", nargs="+", type=int, default=[1024, 16384], help="B*N")
    parser.add_argument("--seq", nargs="+", type=int, default=[12, 288], help="time steps T")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--max-parallel-len", type=int, default=512, help="skip O(T^2) parallel forms above this T")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one small shape, 2 repeats: a smoke run")
    add_doc_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.sequences, args.seq, args.head_dim, args.repeats = [256], [12, 96], [16], 2
    return args


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    table = Table(
        f"bench_kernels-{device.type}-{args.dtype}",
        f"Kernels on {device.type.upper()}, {args.dtype}: time and peak memory",
        ["case", "B*N", "T", "heads x dim", "method", "fwd ms", "fwd MiB", "fwd+bwd ms", "fwd+bwd MiB"],
        right_aligned=4,
    )
    for case in (c for c in CASES if c.name in args.cases):
        for sequences, seq_len, head_dim in itertools.product(args.sequences, args.seq, args.head_dim):
            shape = Shape(sequences, seq_len, args.heads, head_dim, dtype, device)
            for name, method in case.methods(shape, args).items():
                if args.methods and name not in args.methods:
                    continue
                try:
                    result = measure(case, shape, method, args.repeats)
                except torch.OutOfMemoryError:
                    result = "out of memory"
                cells = (
                    ["n/a"] * 4
                    if result is None
                    else ["OOM"] * 4
                    if isinstance(result, str)
                    else [f"{result[key]:.1f}" for key in ("fwd_ms", "fwd_mib", "fwdbwd_ms", "fwdbwd_mib")]
                )
                table.add(case.name, sequences, seq_len, f"{args.heads} x {head_dim}", name, *cells)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    if not (args.quick or args.no_doc):
        table.write(MEMORY_NOTE[device.type])


if __name__ == "__main__":
    main()
