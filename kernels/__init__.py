"""social_xlstm_kernels: the project's own Triton kernels for sLSTM and mLSTM, each beside a
plain PyTorch reference of the same function. Triton runs on CUDA (or under
TRITON_INTERPRET=1 for checking on a CPU); the references run everywhere.

Under torch.compile the Triton entry points are opaque (``torch.compiler.disable``): they are
already fused, and dynamo would otherwise trace into the launcher (or, under the interpreter,
into numpy). The compiled graph breaks around each kernel call and autograd goes through the
kernels' own backward; the PyTorch references are traced and compiled like any other code.

This folder (kernels/ at the repository root) installs as the package ``social_xlstm_kernels``:
setup.py maps the one to the other (docs/architecture.md, "Layers")."""

from .mlstm import mlstm_chunkwise, mlstm_last, mlstm_parallel, mlstm_recurrent, mlstm_step
from .slstm import slstm_sequence, slstm_step

__all__ = [
    "mlstm_chunkwise",
    "mlstm_last",
    "mlstm_parallel",
    "mlstm_recurrent",
    "mlstm_step",
    "slstm_sequence",
    "slstm_step",
]
