"""social_xlstm_kernels: the project's own Triton kernels for sLSTM and mLSTM, each beside a
plain PyTorch reference of the same function. Triton runs on CUDA (or under
TRITON_INTERPRET=1 for checking on a CPU); the references run everywhere."""

from .mlstm import mlstm_chunkwise, mlstm_parallel, mlstm_recurrent, mlstm_step
from .slstm import slstm_sequence, slstm_step
