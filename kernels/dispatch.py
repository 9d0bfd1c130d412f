"""Which implementation runs a kernel call, one rule for every kernel: "auto" runs Triton for
CUDA tensors and the PyTorch reference otherwise; "triton" forces the kernel (on CPU tensors it
needs TRITON_INTERPRET=1, set before triton is imported: how CI runs the GPU's code path);
"torch" forces the reference."""

from __future__ import annotations

import torch

BACKENDS = ("auto", "triton", "torch")


def use_triton(backend: str, x: torch.Tensor, kernel: str) -> bool:
    if backend not in BACKENDS:
        raise ValueError(f"{kernel}: backend must be one of {BACKENDS}, got {backend!r}")
    return backend == "triton" or (backend == "auto" and x.is_cuda)
