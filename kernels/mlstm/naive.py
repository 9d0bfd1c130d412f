"""Plain-PyTorch mLSTM references: the parallel form and the recurrent form (a loop of steps).

These define *our* forward; every other path (chunkwise PyTorch, Triton) must match them.
Conventions (those of NX-AI's mlstm-kernels): q, k [B, NH, S, DHQK], v [B, NH, S, DHV], gate
pre-activations i, f [B, NH, S]; states C [B, NH, DHQK, DHV], n [B, NH, DHQK], m [B, NH, 1].
q is scaled by DHQK^-0.5 inside. States and accumulation are float32 (float64 for float64
inputs); h comes back in the input dtype.

Two choices make all forms agree exactly (not only up to eps):
- the initial state is part of every form: the parallel form treats it as an extra input
  "before step 1" with log-weight F_t + m_0 (zeros, m_0 = 0 when absent), as the recurrence does;
- the stabiliser has a floor, m_t = max(logsigmoid(f_t) + m_{t-1}, i_t, M_FLOOR). Since
  h = q C* / (max(|q n*|, 1) + eps e^m) in unstabilised terms, m only moves the eps term, so the
  floor changes h by at most eps * e^M_FLOOR relative; it keeps exp(-m) finite in float32 when
  forget gates or input gates are extremely negative (otherwise exp(-m) overflows and gradients
  turn into NaN). NX-AI's parallel form has no floor and no initial-state term; the two differ
  only in that vanishing eps term.
"""

from __future__ import annotations

import torch

from ..gates import log_sigmoid

EPS = 1e-6
M_FLOOR = -30.0


def state_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 stays float64 (for gradient checks); everything else accumulates in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def zero_state(q: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    B, NH, _, DHQK = q.shape
    dt = state_dtype(q)
    return (
        q.new_zeros(B, NH, DHQK, v.shape[-1], dtype=dt),
        q.new_zeros(B, NH, DHQK, dtype=dt),
        q.new_zeros(B, NH, 1, dtype=dt),
    )


def initial_state(q, v, c_initial, n_initial, m_initial):
    """All three given, or none (zeros); cast to the accumulation dtype."""
    given = [s is not None for s in (c_initial, n_initial, m_initial)]
    if any(given) and not all(given):
        raise ValueError("mlstm: pass all of c_initial, n_initial, m_initial or none of them")
    if not any(given):
        return zero_state(q, v)
    dt = state_dtype(q)
    return c_initial.to(dt), n_initial.to(dt), m_initial.to(dt)


def exclusive_reverse_cumsum(x: torch.Tensor) -> torch.Tensor:
    """out_t = sum_{s > t} x_s, summed from the end, so no long cumulative sums are subtracted."""
    flipped = x.flip(-1).cumsum(-1).flip(-1)
    return flipped - x


def segment_sums(lf: torch.Tensor) -> torch.Tensor:
    """seg[..., t, j] = sum_{r=j+1}^{t} lf_r for t >= j (0 on and above the diagonal).

    Built as a cumulative sum down the columns of a strictly lower-triangular matrix, so the
    log-forget matrix never comes from subtracting two long cumulative sums (cancellation).
    """
    S = lf.shape[-1]
    strict = torch.ones(S, S, dtype=torch.bool, device=lf.device).tril(-1)
    return (lf[..., :, None] * strict).cumsum(-2)


def end_weights(lf, i, m0):
    """Stabilised weights at the end of a (sub)sequence: of each input j [..., S], of the
    carried state [..., 1], and the end stabiliser m [..., 1]."""
    scale_exponent = exclusive_reverse_cumsum(lf) + i  # a_j: log weight of input j at the end
    g = lf.sum(-1, keepdim=True)  # log decay of the carried state over the sequence
    m = torch.maximum(torch.maximum(g + m0, scale_exponent.amax(-1, keepdim=True)), torch.full_like(g, M_FLOOR))
    return torch.exp(scale_exponent - m), torch.exp(g + m0 - m), m


def end_state(k, v, lf, i, c0, n0, m0):
    """State after a whole (sub)sequence, from the state before it (chunk-level recurrence)."""
    weights, carry, m = end_weights(lf, i, m0)
    c = carry[..., None] * c0 + (k * weights[..., None]).transpose(-2, -1) @ v
    n = carry * n0 + (k * weights[..., None]).sum(-2)
    return c, n, m


def last_output(q, k, v, lf, i, c0, n0, m0, eps: float = EPS):
    """h of the last step only, from the state before the sequence; all in acc dtype.

    The last row of ``parallel_outputs``: its log weights and stabiliser are those of
    ``end_state`` (``end_weights``), so this is the step formula on the end state, computed
    without C (O(S * DH) instead of O(S * DHQK * DHV)). A forecast from a window reads nothing else.
    """
    S, DHQK = q.shape[-2], q.shape[-1]
    weights, carry, m = end_weights(lf, i, m0)
    qs = q[..., S - 1 :, :] * DHQK**-0.5  # [..., 1, DHQK]
    scores = (qs @ k.transpose(-2, -1)) * weights[..., None, :]  # [..., 1, S]
    num = (scores @ v + carry[..., None] * (qs @ c0))[..., 0, :]
    qn = scores.sum(-1)[..., 0] + carry[..., 0] * (qs[..., 0, :] * n0).sum(-1)
    den = torch.maximum(qn.abs(), torch.exp(-m[..., 0]))
    return num / (den[..., None] + eps)


def parallel_outputs(q, k, v, lf, i, c0, n0, m0, eps: float = EPS):
    """h for every step of a (sub)sequence that starts from state (c0, n0, m0); all in acc dtype.

    Works on any leading batch dims, so the chunkwise reference reuses it with chunks as batch.
    """
    S, DHQK = q.shape[-2], q.shape[-1]
    causal = torch.ones(S, S, dtype=torch.bool, device=q.device).tril()
    log_d = torch.where(causal, segment_sums(lf) + i[..., None, :], float("-inf"))
    log_init = lf.cumsum(-1) + m0  # log weight of the carried state at step t
    m = torch.maximum(torch.maximum(log_d.amax(-1), log_init), torch.full_like(log_init, M_FLOOR))
    decay = torch.exp(log_d - m[..., None])
    init_weight = torch.exp(log_init - m)
    qs = q * DHQK**-0.5
    scores = (qs @ k.transpose(-2, -1)) * decay
    num = scores @ v + init_weight[..., None] * (qs @ c0)
    qn = scores.sum(-1) + init_weight * (qs @ n0[..., None])[..., 0]
    den = torch.maximum(qn.abs(), torch.exp(-m))
    return num / (den[..., None] + eps)


def _checked(q, k, v, i, f):
    B, NH, S, DHQK = q.shape
    if k.shape != q.shape or v.shape[:3] != (B, NH, S) or i.shape != (B, NH, S) or f.shape != (B, NH, S):
        raise ValueError(
            f"mlstm: expected q, k [B, NH, S, DHQK], v [B, NH, S, DHV], i, f [B, NH, S]; got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}, i {tuple(i.shape)}, f {tuple(f.shape)}"
        )


def mlstm_parallel_torch(
    q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, return_last_states=False, eps=EPS
):
    """Parallel form over the whole sequence: O(S^2) memory, the clearest statement of the forward."""
    _checked(q, k, v, i, f)
    dt = state_dtype(q)
    c0, n0, m0 = initial_state(q, v, c_initial, n_initial, m_initial)
    qa, ka, va, ia = q.to(dt), k.to(dt), v.to(dt), i.to(dt)
    lf = log_sigmoid(f.to(dt))
    h = parallel_outputs(qa, ka, va, lf, ia, c0, n0, m0, eps).to(q.dtype)
    if not return_last_states:
        return h
    return h, end_state(ka, va, lf, ia, c0, n0, m0)


def mlstm_last_torch(q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, eps=EPS):
    """h [B, NH, DHV] of the last step of the sequence: equal to the other forms' h[:, :, -1]."""
    _checked(q, k, v, i, f)
    dt = state_dtype(q)
    c0, n0, m0 = initial_state(q, v, c_initial, n_initial, m_initial)
    return last_output(q.to(dt), k.to(dt), v.to(dt), log_sigmoid(f.to(dt)), i.to(dt), c0, n0, m0, eps).to(q.dtype)


def mlstm_step_torch(q, k, v, i, f, c, n, m, eps=EPS):
    """One recurrent step. q, k [B, NH, DHQK], v [B, NH, DHV], i, f [B, NH, 1] -> h, (c, n, m)."""
    dt = state_dtype(q)
    qa, ka, va, ia = q.to(dt), k.to(dt), v.to(dt), i.to(dt)
    c, n, m = c.to(dt), n.to(dt), m.to(dt)
    lf = log_sigmoid(f.to(dt))
    m_new = torch.maximum(torch.maximum(lf + m, ia), torch.full_like(m, M_FLOOR))
    forget = torch.exp(lf + m - m_new)
    inp = torch.exp(ia - m_new)
    c_new = forget[..., None] * c + inp[..., None] * (ka[..., :, None] * va[..., None, :])
    n_new = forget * n + inp * ka
    qs = qa * q.shape[-1] ** -0.5
    num = (qs[..., None, :] @ c_new)[..., 0, :]
    qn = (qs * n_new).sum(-1, keepdim=True)
    den = torch.maximum(qn.abs(), torch.exp(-m_new))
    h = num / (den + eps)
    return h.to(q.dtype), (c_new, n_new, m_new)


def run_recurrence(step, q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps):
    """Loop a step function (PyTorch or Triton) over the sequence."""
    _checked(q, k, v, i, f)
    c, n, m = initial_state(q, v, c_initial, n_initial, m_initial)
    hs = []
    for t in range(q.shape[2]):
        h, (c, n, m) = step(q[:, :, t], k[:, :, t], v[:, :, t], i[:, :, t, None], f[:, :, t, None], c, n, m, eps)
        hs.append(h)
    h = torch.stack(hs, dim=2) if hs else v.new_zeros(v.shape)
    return (h, (c, n, m)) if return_last_states else h


def mlstm_recurrent_torch(
    q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, return_last_states=False, eps=EPS
):
    """The recurrence, one step at a time: the definition the other forms are checked against."""
    return run_recurrence(mlstm_step_torch, q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps)
