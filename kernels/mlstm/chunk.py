"""Chunkwise mLSTM in plain PyTorch (autograd backward): the algorithm the Triton kernels follow.

1. pad S up to a multiple of the chunk size with inert steps (k = v = q = 0, forget gate
   log 0 = no decay, input gate -1e30 = never the maximum), so any S works;
2. run the chunk-level recurrence for the state at every chunk start (sequential, cheap);
3. compute every chunk's outputs from its start state with the parallel form, all chunks at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..gates import log_sigmoid
from .naive import EPS, _checked, end_state, initial_state, parallel_outputs, state_dtype

PAD_INPUT_GATE = -1e30


def pad_to_chunks(q, k, v, lf, i, chunk_size: int):
    """Pad the time axis (dim 2) to a multiple of chunk_size with steps that change nothing."""
    pad = (-q.shape[2]) % chunk_size
    if pad == 0:
        return q, k, v, lf, i
    q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
    lf = F.pad(lf, (0, pad), value=0.0)
    i = F.pad(i, (0, pad), value=PAD_INPUT_GATE)
    return q, k, v, lf, i


def mlstm_chunkwise_torch(
    q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, chunk_size=64, return_last_states=False, eps=EPS
):
    _checked(q, k, v, i, f)
    B, NH, S, DHQK = q.shape
    dt = state_dtype(q)
    chunk_size = max(1, min(chunk_size, S))  # a short sequence is one chunk, unpadded
    c, n, m = initial_state(q, v, c_initial, n_initial, m_initial)
    lf = log_sigmoid(f.to(dt))
    qp, kp, vp, lfp, ip = pad_to_chunks(q.to(dt), k.to(dt), v.to(dt), lf, i.to(dt), chunk_size)
    K = qp.shape[2] // chunk_size

    def chunked(x):
        return x.reshape(B, NH, K, chunk_size, *x.shape[3:])

    qc, kc, vc, lfc, ic = (chunked(x) for x in (qp, kp, vp, lfp, ip))
    starts = []
    for chunk in range(K):
        starts.append((c, n, m))
        c, n, m = end_state(kc[:, :, chunk], vc[:, :, chunk], lfc[:, :, chunk], ic[:, :, chunk], c, n, m)
    c0, n0, m0 = (torch.stack(s, dim=2) for s in zip(*starts))
    h = parallel_outputs(qc, kc, vc, lfc, ic, c0, n0, m0, eps)
    h = h.reshape(B, NH, K * chunk_size, -1)[:, :, :S].to(q.dtype)
    return (h, (c, n, m)) if return_last_states else h
