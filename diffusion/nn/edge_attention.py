"""Edge-modulated per-channel attention of the graph transformer, as one autograd node.

Steps 2-4 of a :class:`~sympe.diffusion.nn.transformer.GraphTransformerLayer` (the math is in that module's
docstring): scores ``S_ij = (Q_i ⊙ K_j)/sqrt(d_head) ⊙ (E1_ij + 1) + E2_ij`` (B, n, n, dx), the new edge stream
``W_out((m_E + 1) ⊙ S) + c`` (B, n, n, de) and the attention ``h_i = Σ_j softmax_j(S_ij) ⊙ V_j`` over real keys
(B, n, dx). :func:`edge_attention` computes them as one autograd node: on CPU in float32 with the C loops of
:mod:`~sympe.diffusion.nn.cpu_kernel` (keeps the scores, and the multiplier ``E1 + 1`` unless ``recompute``),
elsewhere with PyTorch operations and a hand-written backward (keeps ``E1 + 1``, the scores and the attention
weights); :func:`edge_attention_reference` is the same math in plain autograd (the oracle of the tests, and
what ``torch.compile`` traces).
"""
from __future__ import annotations


import torch

from torch import Tensor, nn

from sympe.diffusion.nn import cpu_kernel

__all__ = ["edge_attention", "edge_attention_reference"]


def _check_attention_shapes(Q: Tensor, K: Tensor, V: Tensor, E: Tensor, W: Tensor, b: Tensor, m: Tensor,
                            W_out: Tensor, c: Tensor, node_mask: Tensor) -> None:
    ok = Q.dim() == 3 and E.dim() == 4
    if ok:
        B, n, d = Q.shape
        de_in, de_out = E.shape[3], W_out.shape[0]
        ok = (K.shape == Q.shape and V.shape == Q.shape and E.shape[:3] == (B, n, n)
              and W.shape == (2 * d, de_in) and b.shape == (2 * d,) and m.shape == (B, d)
              and W_out.shape == (de_out, d) and c.shape == (B, de_out)
              and node_mask.shape == (B, n) and node_mask.dtype == torch.bool)
    if not ok:
        raise ValueError(
            "edge_attention: expected Q, K, V (B, n, d), E (B, n, n, de), W (2d, de), b (2d,), m (B, d), "
            "W_out (de', d), c (B, de'), node_mask (B, n) bool; got "
            + ", ".join(str(tuple(t.shape)) for t in (Q, K, V, E, W, b, m, W_out, c))
            + f", {node_mask.dtype} {tuple(node_mask.shape)}")


def _key_bias(node_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, 1, n, 1): 0 for real keys, the most negative finite number for padded keys (a finite fill keeps a
    graph with no real node NaN-free)."""
    B, n = node_mask.shape
    bias = torch.zeros(B, 1, n, 1, dtype=dtype, device=node_mask.device)
    return bias.masked_fill_(~node_mask.view(B, 1, n, 1), torch.finfo(dtype).min)


def edge_attention_reference(Q: Tensor, K: Tensor, V: Tensor, E: Tensor, W: Tensor, b: Tensor, m: Tensor,
                             W_out: Tensor, c: Tensor, node_mask: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`edge_attention` written as plain autograd operations (the oracle of the tests, and the
    formulation ``torch.compile`` sees, which it can fuse into a few loops itself)."""
    d = Q.shape[-1]
    M = nn.functional.linear(E, W[:d], b[:d] + 1.0)
    A = nn.functional.linear(E, W[d:], b[d:])
    S = Q.unsqueeze(2) * K.unsqueeze(1) * M + A
    attn = torch.softmax(S + _key_bias(node_mask, S.dtype), dim=2)
    h = (attn * V.unsqueeze(1)).sum(dim=2)
    E_out = nn.functional.linear(S * m[:, None, None, :], W_out) + c[:, None, None, :]
    return E_out, h


class _EdgeAttention(torch.autograd.Function):
    """Fused forward and hand-written backward of :func:`edge_attention`.

    Forward, with ``[M | A] = E Wᵀ + b`` (``M`` gets ``+1``), ``P = Q_i ⊙ K_j``::

        S = A + P ⊙ M                       (in place in A's buffer)
        α = softmax_j(S + key_bias)         (in place in P's buffer)
        h_i = Σ_j α_ij ⊙ V_j
        E_out = (m ⊙ S) W_outᵀ + c          (one GEMM over all B·n·n rows)

    Kept for backward: Q, K, V, h (B, n, d), E (B, n, n, de), m, the weights, and M, S, α (B, n, n, d).
    Backward (``g_O``, ``g_h`` the incoming gradients), using ``Σ_j α_ij V_j = h_i``::

        g_F = g_O W_out,   ∂W_out = g_Oᵀ (m ⊙ S),   ∂c = Σ_ij g_O,ij,   ∂m = Σ_ij g_F,ij ⊙ S_ij
        ∂S_ij = m ⊙ g_F,ij + α_ij ⊙ g_h,i ⊙ (V_j − h_i)   (softmax and weighted sum in one expression)
        ∂V_j  = Σ_i α_ij ⊙ g_h,i
        ∂M_ij = ∂S_ij ⊙ Q_i ⊙ K_j,     ∂A = ∂S
        ∂Q_i  = Σ_j ∂S_ij ⊙ M_ij ⊙ K_j,     ∂K_j = Σ_i ∂S_ij ⊙ M_ij ⊙ Q_i
        ∂E = ∂M W_1 + ∂A W_2,   ∂W = [∂Mᵀ E ; ∂Aᵀ E],   ∂b = [Σ ∂M ; Σ ∂A]   (W = [W_1 ; W_2])

    Padded keys have α = 0 exactly, so they receive no gradient through the softmax. Reduced-precision
    inputs (autocast) compute the softmax in float32.
    """

    @staticmethod
    def forward(ctx, Q, K, V, E, W, b, m, W_out, c, node_mask):
        B, n, d = Q.shape
        M = nn.functional.linear(E, W[:d], b[:d] + 1.0)  # (B, n, n, d)
        S = nn.functional.linear(E, W[d:], b[d:])  # A; becomes S in place
        cdt = S.dtype
        P = Q.unsqueeze(2).to(cdt) * K.unsqueeze(1).to(cdt)  # (B, n, n, d)
        S.addcmul_(P, M)
        if cdt in (torch.float16, torch.bfloat16):
            attn = torch.softmax(S.float() + _key_bias(node_mask, torch.float32), dim=2)
            del P
        else:
            torch.add(S, _key_bias(node_mask, cdt), out=P)
            attn = torch.ops.aten._softmax.out(P, 2, False, out=P)
        h = _weighted_sum_over_keys(attn, V.to(attn.dtype)).to(cdt)  # (B, n, d)
        mc, W_outc = m.to(cdt), W_out.to(cdt)
        F = S * mc[:, None, None, :]
        E_out = (F.view(-1, d) @ W_outc.t()).view(B, n, n, -1)
        del F
        E_out.add_(c.to(cdt)[:, None, None, :])
        ctx.save_for_backward(Q, K, V, E, W, M, attn, h, S, mc, W_outc)
        return E_out, h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gO: Tensor | None, gh: Tensor | None):
        Q, K, V, E, W, M, attn, h, S, m, W_out = ctx.saved_tensors
        B, n, d = Q.shape
        cdt = M.dtype
        need = ctx.needs_input_grad
        Qc, Kc = Q.to(cdt), K.to(cdt)
        gm = gW_out = gc = gF = None
        if gO is not None:
            gO = gO.to(cdt)
            gO2 = gO.reshape(-1, gO.shape[-1])  # (B·n·n, de')
            gF = (gO2 @ W_out).view(B, n, n, d)
            if need[7]:
                F = S * m[:, None, None, :]
                gW_out = gO2.t() @ F.view(-1, d)
                del F
            if need[6]:
                gm = (gF * S).view(B, n * n, d).sum(dim=1)
            if need[8]:
                gc = gO.view(B, n * n, -1).sum(dim=1)
            gF.mul_(m[:, None, None, :])  # ∂S from E_out
        # ∂S (B, n, n, d), contiguous (elementwise kernels writing into a strided half of a wider buffer
        # are many times slower on CPU)
        gV = None
        if gh is not None:
            gh = gh.to(attn.dtype)
            aw = attn * gh.unsqueeze(2)  # α_ij ⊙ g_h,i
            gV = aw.sum(dim=1)
            gSt = torch.sub(V.unsqueeze(1).to(aw.dtype), h.unsqueeze(2).to(aw.dtype))
            gSt.mul_(aw)
            del aw
            if gF is not None:
                gSt.add_(gF)
            gSt = gSt.to(cdt)
        elif gF is not None:
            gSt = gF
        else:
            gSt = torch.zeros_like(M)
        del gF
        gM = Qc.unsqueeze(2) * Kc.unsqueeze(1)
        gM.mul_(gSt)
        gQ = gK = None
        if need[0] or need[1]:
            gSM = gSt * M  # ∂S ⊙ M
            if need[0]:
                gQ = _weighted_sum_over_keys(gSM, Kc)
            if need[1]:
                gK = _weighted_sum_over_queries(gSM, Qc)
            del gSM
        gM2, gS2 = gM.view(-1, d), gSt.view(-1, d)  # ∂M, ∂A = ∂S
        Wc = W.to(cdt)
        gE = gW = gb = None
        if need[3]:
            gE = gM2 @ Wc[:d]
            gE.addmm_(gS2, Wc[d:])
            gE = gE.view(E.shape)
        if need[4]:
            E2 = E.reshape(-1, E.shape[-1]).to(cdt)
            gW = torch.cat([gM2.t() @ E2, gS2.t() @ E2])
        if need[5]:
            gb = torch.cat([gM2.sum(dim=0), gS2.sum(dim=0)])
        return gQ, gK, gV, gE, gW, gb, gm, gW_out, gc, None


class _EdgeAttentionCPU(torch.autograd.Function):
    """:func:`edge_attention` on CPU in float32 with the fused C loops of :mod:`~sympe.diffusion.nn.cpu_kernel`.

    Forward: one GEMM ``[M0 | A0] = E Wᵀ`` (B·n·n, 2d) without biases; one C pass per query row that adds the
    biases, forms ``S``, the softmax statistics and ``h``, and writes ``F = m ⊙ S``; the GEMM
    ``E_out = F W_outᵀ + c``. α is never stored (backward recomputes it from S). Kept for backward: Q, K, V, h
    (B, n, d) and E, plus

    * ``recompute=False``: the buffer ``[M0 | S]`` (S written over A0): two (B, n, n, d) tensors (the PyTorch
      formulation keeps three: M, S, α);
    * ``recompute=True``: S alone (written to its own buffer; one (B, n, n, d) tensor); backward recomputes
      ``M0 = E W_1ᵀ`` with one more GEMM (B·n·n × de × d multiply-adds).

    Backward: ``g_F = g_O W_out`` (GEMM); one C pass (the formulas of :class:`_EdgeAttention`, α recomputed)
    that overwrites M0 and S with ``∂M`` and ``∂A = ∂S``; the GEMMs ``∂E = ∂M W_1 + ∂A W_2``,
    ``∂W = [∂M | ∂A]ᵀ E`` and ``∂W_out = g_Oᵀ (m ⊙ S)``. The saved buffers are consumed: a second backward through
    the same graph (``retain_graph=True``) raises ``RuntimeError``.
    """

    @staticmethod
    def forward(ctx, Q, K, V, E, W, b, m, W_out, c, node_mask, recompute):

        B, n, d = Q.shape
        Q, K, V, m = Q.contiguous(), K.contiguous(), V.contiguous(), m.contiguous()
        E2 = E.reshape(-1, E.shape[-1])
        MA = torch.mm(E2, W.t())  # (B·n·n, 2d): [M0 | A0]
        M0, A0 = MA[:, :d], MA[:, d:]
        S = torch.empty(E2.shape[0], d) if recompute else A0
        b1p, b2 = (b[:d] + 1.0).contiguous(), b[d:].contiguous()
        F, h = cpu_kernel.forward(Q, K, V, M0, A0, S, b1p, b2, m, node_mask)
        E_out = torch.mm(F.view(-1, d), W_out.t()).view(B, n, n, -1)
        del F
        E_out.add_(c[:, None, None, :])
        ctx.save_for_backward(Q, K, V, E, W, b1p, m, W_out, node_mask, S if recompute else MA, h)
        ctx.recompute, ctx.consumed = recompute, False
        return E_out, h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gO: Tensor | None, gh: Tensor | None):

        if ctx.consumed:
            raise RuntimeError("edge_attention: the fused CPU kernel's backward consumes its saved buffers and can "
                               "run only once per forward (retain_graph=True is not supported); set "
                               "SYMPE_CPU_KERNEL=0 to use the PyTorch formulation")
        ctx.consumed = True
        Q, K, V, E, W, b1p, m, W_out, node_mask, saved, h = ctx.saved_tensors
        B, n, d = Q.shape
        E2 = E.reshape(-1, E.shape[-1])
        if ctx.recompute:
            S, M0, MA = saved, torch.mm(E2, W[:d].t()), None
        else:
            MA = saved
            M0, S = MA[:, :d], MA[:, d:]
        need = ctx.needs_input_grad
        gF = gO2 = None
        if gO is not None:
            gO2 = gO.reshape(-1, gO.shape[-1]).contiguous()
            gF = torch.mm(gO2, W_out)  # (B·n·n, d)
        gh = gh.contiguous() if gh is not None else None
        r = cpu_kernel.backward(Q, K, V, h, M0, S, b1p, m, node_mask, gF, gh, want_F=gO is not None and need[7])
        del gF  # M0 now holds ∂M, S holds ∂A = ∂S
        gW_out = torch.mm(gO2.t(), r["F"].view(-1, d)) if r["F"] is not None else None
        gc = gO.reshape(B, n * n, -1).sum(dim=1) if (gO is not None and need[8]) else None
        gm = r["gm"] if (gO is not None and need[6]) else None
        gE = gW = None
        if need[3]:
            if MA is not None:
                gE = torch.mm(MA, W)
            else:
                gE = torch.mm(M0, W[:d]).addmm_(S, W[d:])
            gE = gE.view(E.shape)
        if need[4]:
            gW = torch.mm(MA.t(), E2) if MA is not None else torch.cat([torch.mm(M0.t(), E2), torch.mm(S.t(), E2)])
        gb = r["gb"] if need[5] else None
        return (r["gQ"] if need[0] else None, r["gK"] if need[1] else None, r["gV"] if need[2] else None,
                gE, gW, gb, gm, gW_out, gc, None, None)


def _use_cpu_kernel(*tensors: Tensor) -> bool:
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return False
    if torch.is_autocast_enabled("cpu"):
        return False

    return cpu_kernel.kernel_available()


def _weighted_sum_over_keys(a: Tensor, v: Tensor) -> Tensor:
    """``Σ_j a_ij ⊙ v_j``: a (B, n, n, d), v (B, n, d) -> (B, n, d), without a (B, n, n, d) temporary."""
    out = a[:, :, 0] * v[:, 0:1]
    for j in range(1, a.shape[2]):
        out.addcmul_(a[:, :, j], v[:, j:j + 1])
    return out


def _weighted_sum_over_queries(a: Tensor, q: Tensor) -> Tensor:
    """``Σ_i a_ij ⊙ q_i``: a (B, n, n, d), q (B, n, d) -> (B, n, d), without a (B, n, n, d) temporary."""
    out = a[:, 0] * q[:, 0:1]
    for i in range(1, a.shape[1]):
        out.addcmul_(a[:, i], q[:, i:i + 1])
    return out


def edge_attention(Q: Tensor, K: Tensor, V: Tensor, E: Tensor, W: Tensor, b: Tensor, m: Tensor, W_out: Tensor,
                   c: Tensor, node_mask: Tensor, *, recompute: bool) -> tuple[Tensor, Tensor]:
    """Edge-modulated per-channel attention and the new edge stream (steps 2-4 of the module docstring), fused.

    With ``[E1 | E2] = E Wᵀ + b`` (W (2d, de), b (2d,)), ``Q`` already scaled by ``1/sqrt(d_head)``::

        S_ij     = Q_i ⊙ K_j ⊙ (E1_ij + 1) + E2_ij                    (B, n, n, d)
        h_i      = Σ_{j real} softmax_j(S_ij) ⊙ V_j                   (B, n, d)
        E_out_ij = (m ⊙ S_ij) W_outᵀ + c                               (B, n, n, de')

    where ``m`` (B, d) and ``c`` (B, de') are per-graph (the graph-stream FiLM: ``m = m_E + 1``,
    ``c = W_out a_E + b_out``). Shapes: Q, K, V (B, n, d), E (B, n, n, de), W_out (de', d), node_mask (B, n)
    bool. Returns ``(E_out, h)``: ``E_out`` on every pair (padding included; the caller masks it), the softmax
    runs over real keys only, and ``h`` of a padded query is finite (the caller zeroes it).

    Same values and gradients as :func:`edge_attention_reference`. Three implementations, one autograd node
    each:

    * CPU, float32, no autocast, and the C kernel builds (:mod:`~sympe.diffusion.nn.cpu_kernel`):
      :class:`_EdgeAttentionCPU`, the elementwise loops in C between four GEMMs; keeps S only
      (``recompute=True``: one more GEMM in backward) or S and E1 (``recompute=False``); α is never stored.
      Checked against float64 autograd of the reference (``tests/diffusion/nn/test_cpu_kernel.py``).
    * otherwise (CUDA, float64, autocast): :class:`_EdgeAttention`, PyTorch operations with a hand-written
      backward that keeps E1 + 1, S and α and builds no (B, n, n, d) product for its reductions (``gradcheck``
      in float64); ``recompute`` has no effect there.
    * under ``torch.compile``: the reference formulation, which the compiler fuses itself.

    Raises ``ValueError`` on inconsistent shapes; on the CPU kernel path a second backward through the same
    forward (``retain_graph=True``) raises ``RuntimeError`` (its saved buffers are consumed; set
    ``SYMPE_CPU_KERNEL=0`` where double backward is needed).
    """
    _check_attention_shapes(Q, K, V, E, W, b, m, W_out, c, node_mask)
    if torch.compiler.is_compiling():
        return edge_attention_reference(Q, K, V, E, W, b, m, W_out, c, node_mask)
    if _use_cpu_kernel(Q, K, V, E, W, b, m, W_out, c):
        # without a backward to feed (no_grad, inference) S is written over A0: nothing is kept either way
        training = torch.is_grad_enabled() and any(t.requires_grad for t in (Q, K, V, E, W, b, m, W_out, c))
        return _EdgeAttentionCPU.apply(Q, K, V, E, W, b, m, W_out, c, node_mask, recompute and training)
    return _EdgeAttention.apply(Q, K, V, E, W, b, m, W_out, c, node_mask)
