"""log(sigmoid(x)) for the PyTorch references, exact in every form the model runs in.

torch's TorchScript ONNX exporter writes ``F.logsigmoid`` as Log(Sigmoid(x)): below x ~ -88 the
float32 sigmoid underflows to 0 and the log is -inf, and the mLSTM's cumulative forget gates
then subtract -inf from -inf (a NaN forecast). Under export the same function is written as
min(x, 0) - log(1 + exp(-|x|)), which never leaves the range of float32; elsewhere it stays the
single fused ``F.logsigmoid``, so training and its compiled graphs are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    if torch.onnx.is_in_onnx_export():
        return torch.minimum(x, torch.zeros_like(x)) - torch.log1p(torch.exp(-x.abs()))
    return F.logsigmoid(x)
