r"""Linear permutation-equivariant layers (Maron, Ben-Hamu, Shamir, Lipman, ICLR 2019) on padded batches.

Tensors of order 1 (node features) are ``(B, n, d)``; tensors of order 2 (pair features) are
``(B, n, n, d)``; order 0 is ``(B, d)``. A node mask ``node_mask`` (B, n) bool marks real nodes; graph
``b`` has ``n_b = node_mask[b].sum()`` real nodes. A permutation ``σ`` acts by
``(σ·v)_i = v_{σ^{-1}(i)}`` and ``(σ·A)_{ij} = A_{σ^{-1}(i) σ^{-1}(j)}``.

Every linear map ``L`` with ``L(σ·x) = σ·L(x)`` for all ``σ ∈ S_n`` is a linear combination of a
fixed basis whose size is the Bell number of (input order + output order):
2→2: bell(4) = 15, 2→1: bell(3) = 5, 1→2: bell(3) = 5, 1→1: bell(2) = 2, 2→0: bell(2) = 2.
The bases used here, written for one channel with the *normalised* aggregates of graph ``b``

.. math::
    a_i = A_{ii},\quad r_i = \tfrac{1}{n_b}\sum_j A_{ij},\quad c_j = \tfrac{1}{n_b}\sum_i A_{ij},\quad
    \mathrm{tr} = \tfrac{1}{n_b}\sum_i A_{ii},\quad s = \tfrac{1}{n_b^2}\sum_{ij} A_{ij},\quad
    \bar v = \tfrac{1}{n_b}\sum_i v_i,

(all sums run over real nodes only; ``n_b`` is the graph's OWN node count, clamped to >= 1) are

2→2 (output ``B_{ij}``, ``δ_{ij}`` = 1 on the diagonal):
  1. ``A_{ij}`` (identity)                 2. ``A_{ji}`` (transpose)
  3. ``δ_{ij} a_i`` (diagonal kept)         4. ``δ_{ij} r_i`` (row sums on diagonal)
  5. ``δ_{ij} c_i`` (column sums on diag.)  6. ``δ_{ij} tr`` (trace on diagonal)
  7. ``δ_{ij} s`` (total sum on diagonal)   8. ``a_i`` (diagonal broadcast along rows)
  9. ``a_j`` (diagonal broadcast along columns)
  10. ``r_i`` (row sums along rows)         11. ``r_j`` (row sums along columns)
  12. ``c_i`` (column sums along rows)      13. ``c_j`` (column sums along columns)
  14. ``tr`` (trace everywhere)             15. ``s`` (total sum everywhere)
2→1 (output ``u_i``): ``a_i``, ``r_i``, ``c_i``, ``tr``, ``s``.
1→2 (output ``B_{ij}``): ``δ_{ij} v_i``, ``v_i``, ``v_j``, ``δ_{ij} \bar v``, ``\bar v``.
1→1 (output ``u_i``): ``v_i``, ``\bar v``.
2→0 (output ``z``): ``tr``, ``s``.

A layer with ``d_in`` input and ``d_out`` output channels owns one weight matrix
``W_k ∈ R^{d_in × d_out}`` per basis op ``k`` and computes ``Σ_k op_k(x) W_k + bias``. The bias is the
equivariant one: for order-2 outputs one vector on the diagonal and one off it (bell(2) = 2), for
order-1 and order-0 outputs a single vector. Outputs are zero at padded positions (rows/columns of
padded nodes), and inputs are masked before use, so garbage in padded entries never leaks into real
outputs, and the real outputs do not depend on the padded size ``n``.

The per-op functions ``basis_2to2`` etc. return every basis op stacked on a last axis (memory
``O(#ops · B n² d)``, used by the tests); the layers compute the same sum without materialising the
stack.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sympe.symbreak.masks import pair_mask

__all__ = [
    "IGN2to2",
    "IGN2to1",
    "IGN1to2",
    "IGN1to1",
    "IGN2to0",
    "basis_2to2",
    "basis_2to1",
    "basis_1to2",
    "basis_1to1",
    "basis_2to0",
    "pair_standardize",
]


# ---------------------------------------------------------------------------------- helpers
def _check_order1(v: Tensor, node_mask: Tensor, name: str = "input") -> None:
    if v.dim() != 3:
        raise ValueError(f"{name} must be (B, n, d) node features, got shape {tuple(v.shape)}")
    if node_mask.shape != v.shape[:2]:
        raise ValueError(
            f"node_mask must be (B, n) = {tuple(v.shape[:2])} matching {name}, got {tuple(node_mask.shape)}"
        )


def _check_order2(A: Tensor, node_mask: Tensor, name: str = "input") -> None:
    if A.dim() != 4 or A.shape[1] != A.shape[2]:
        raise ValueError(f"{name} must be (B, n, n, d) pair features, got shape {tuple(A.shape)}")
    if node_mask.shape != A.shape[:2]:
        raise ValueError(
            f"node_mask must be (B, n) = {tuple(A.shape[:2])} matching {name}, got {tuple(node_mask.shape)}"
        )


def pair_standardize(H: Tensor, node_mask: Tensor, eps: float = 1e-5) -> Tensor:
    r"""Per-graph, per-channel standardisation of pair features, separately on and off the diagonal.

    For graph ``b``, channel ``c`` and each of the two pair orbits ``O ∈ {diagonal, off-diagonal}``
    (real pairs only): ``H'_{ij} = (H_{ij} - μ_O) / sqrt(σ²_O + eps)`` with ``μ_O``, ``σ²_O`` the mean and
    (biased) variance of ``H`` over ``O``. Permutation-equivariant (the statistics are invariant),
    parameter-free; padded entries are zero. (B, n, n, d) -> (B, n, n, d). It keeps the node-dependent
    part of deep IGN features at unit scale instead of letting it shrink under the normalised sums.
    """
    _check_order2(H, node_mask)
    pm = pair_mask(node_mask).unsqueeze(-1).to(H.dtype)
    H = H * pm
    nb = node_mask.sum(dim=1).to(H.dtype).view(-1, 1, 1, 1)
    cnt_diag = nb.clamp(min=1)
    cnt_off = (nb * (nb - 1)).clamp(min=1)
    d = torch.diagonal(H, dim1=1, dim2=2).unsqueeze(1)  # (B, 1, d, n)
    sum_diag, sq_diag = d.sum(dim=-1, keepdim=True), (d * d).sum(dim=-1, keepdim=True)  # (B, 1, d, 1)
    sum_diag, sq_diag = sum_diag.transpose(2, 3), sq_diag.transpose(2, 3)  # (B, 1, 1, d)
    sum_all, sq_all = H.sum(dim=(1, 2), keepdim=True), (H * H).sum(dim=(1, 2), keepdim=True)
    mu_d = sum_diag / cnt_diag
    mu_o = (sum_all - sum_diag) / cnt_off
    var_d = (sq_diag / cnt_diag - mu_d * mu_d).clamp(min=0)
    var_o = ((sq_all - sq_diag) / cnt_off - mu_o * mu_o).clamp(min=0)
    out = (H - mu_o) * torch.rsqrt(var_o + eps)
    diag_new = (torch.diagonal(H, dim1=1, dim2=2) - mu_d.squeeze(1).transpose(1, 2)) * torch.rsqrt(
        var_d + eps
    ).squeeze(1).transpose(1, 2)  # (B, d, n)
    out = out * pm
    out.diagonal(dim1=1, dim2=2).copy_(diag_new * node_mask.unsqueeze(1).to(H.dtype))
    return out


def _counts(node_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, 1) float: n_b clamped to >= 1 (an empty graph gives zero sums, not NaN)."""
    return node_mask.sum(dim=1, keepdim=True).clamp(min=1).to(dtype)


def _aggregates2(A: Tensor, node_mask: Tensor):
    """Masked input and its normalised aggregates a, r, c (B,n,d) and tr, s (B,d)."""
    m2 = pair_mask(node_mask).unsqueeze(-1).to(A.dtype)
    A = A * m2
    nb = _counts(node_mask, A.dtype)  # (B, 1)
    a = torch.diagonal(A, dim1=1, dim2=2).transpose(1, 2)  # (B, n, d)
    r = A.sum(dim=2) / nb.unsqueeze(-1)
    c = A.sum(dim=1) / nb.unsqueeze(-1)
    tr = a.sum(dim=1) / nb
    s = A.sum(dim=(1, 2)) / (nb * nb)
    return A, a, r, c, tr, s


def _diag_embed(v: Tensor) -> Tensor:
    """(B, n, d) -> (B, n, n, d) with v on the diagonal, zero elsewhere."""
    return torch.diag_embed(v.transpose(1, 2), dim1=1, dim2=2)


# ---------------------------------------------------------------------------------- bases
def basis_2to2(A: Tensor, node_mask: Tensor) -> Tensor:
    """All 15 basis ops of 2→2 (module docstring order): (B, n, n, d) -> (B, n, n, d, 15), masked."""
    _check_order2(A, node_mask)
    A, a, r, c, tr, s = _aggregates2(A, node_mask)
    n = A.shape[1]
    eye = torch.eye(n, dtype=A.dtype, device=A.device).view(1, n, n, 1)
    rows = lambda v: v.unsqueeze(2).expand_as(A)  # noqa: E731  B_ij = v_i
    cols = lambda v: v.unsqueeze(1).expand_as(A)  # noqa: E731  B_ij = v_j
    full = lambda z: z.view(z.shape[0], 1, 1, -1).expand_as(A)  # noqa: E731
    ops = [
        A,
        A.transpose(1, 2),
        _diag_embed(a),
        _diag_embed(r),
        _diag_embed(c),
        full(tr) * eye,
        full(s) * eye,
        rows(a),
        cols(a),
        rows(r),
        cols(r),
        rows(c),
        cols(c),
        full(tr),
        full(s),
    ]
    m2 = pair_mask(node_mask).unsqueeze(-1).to(A.dtype)
    return torch.stack([o * m2 for o in ops], dim=-1)


def basis_2to1(A: Tensor, node_mask: Tensor) -> Tensor:
    """All 5 basis ops of 2→1: (B, n, n, d) -> (B, n, d, 5), masked."""
    _check_order2(A, node_mask)
    A, a, r, c, tr, s = _aggregates2(A, node_mask)
    m1 = node_mask.unsqueeze(-1).to(A.dtype)
    ops = [a, r, c, tr.unsqueeze(1).expand_as(a), s.unsqueeze(1).expand_as(a)]
    return torch.stack([o * m1 for o in ops], dim=-1)


def basis_1to2(v: Tensor, node_mask: Tensor) -> Tensor:
    """All 5 basis ops of 1→2: (B, n, d) -> (B, n, n, d, 5), masked."""
    _check_order1(v, node_mask)
    m1 = node_mask.unsqueeze(-1).to(v.dtype)
    v = v * m1
    B, n, d = v.shape
    mean = v.sum(dim=1) / _counts(node_mask, v.dtype)  # (B, d)
    eye = torch.eye(n, dtype=v.dtype, device=v.device).view(1, n, n, 1)
    shape = (B, n, n, d)
    ops = [
        _diag_embed(v),
        v.unsqueeze(2).expand(shape),
        v.unsqueeze(1).expand(shape),
        mean.view(B, 1, 1, d).expand(shape) * eye,
        mean.view(B, 1, 1, d).expand(shape),
    ]
    m2 = pair_mask(node_mask).unsqueeze(-1).to(v.dtype)
    return torch.stack([o * m2 for o in ops], dim=-1)


def basis_1to1(v: Tensor, node_mask: Tensor) -> Tensor:
    """Both basis ops of 1→1: (B, n, d) -> (B, n, d, 2), masked."""
    _check_order1(v, node_mask)
    m1 = node_mask.unsqueeze(-1).to(v.dtype)
    v = v * m1
    mean = v.sum(dim=1, keepdim=True) / _counts(node_mask, v.dtype).unsqueeze(-1)
    return torch.stack([v, mean.expand_as(v) * m1], dim=-1)


def basis_2to0(A: Tensor, node_mask: Tensor) -> Tensor:
    """Both basis ops of 2→0: (B, n, n, d) -> (B, d, 2)."""
    _check_order2(A, node_mask)
    _, _, _, _, tr, s = _aggregates2(A, node_mask)
    return torch.stack([tr, s], dim=-1)


# ---------------------------------------------------------------------------------- layers
class _IGNLinear(nn.Module):
    """Shared parameter handling: ``weight`` (n_ops, d_in, d_out) and an equivariant bias."""

    n_ops: int = 0
    n_bias: int = 1

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"{type(self).__name__}: in_channels and out_channels must be >= 1, "
                f"got {in_channels}, {out_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.empty(self.n_ops, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(self.n_bias, out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/√fan_in, 1/√fan_in) with fan_in = n_ops · d_in (each op contributes d_in inputs)."""
        bound = 1.0 / math.sqrt(self.n_ops * self.in_channels)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, n_ops={self.n_ops}, bias={self.bias is not None}"

    def _mix(self, x: Tensor, k: int) -> Tensor:
        return x @ self.weight[k]


class IGN2to2(_IGNLinear):
    r"""Equivariant linear map of pair features: (B, n, n, d_in) -> (B, n, n, d_out).

    ``out = Σ_{k=1..15} op_k(A) W_k + δ_{ij} b_diag + (1-δ_{ij}) b_off``, masked to real pairs;
    ``op_k`` is the 2→2 basis of the module docstring.
    """

    n_ops = 15
    n_bias = 2

    def forward(self, A: Tensor, node_mask: Tensor) -> Tensor:
        _check_order2(A, node_mask)
        if A.shape[-1] != self.in_channels:
            raise ValueError(f"IGN2to2 expects {self.in_channels} input channels, got {A.shape[-1]}")
        A, a, r, c, tr, s = _aggregates2(A, node_mask)
        B = A.shape[0]
        W = self.weight
        out = A @ W[0] + (A @ W[1]).transpose(1, 2)
        diag = a @ W[2] + r @ W[3] + c @ W[4] + (tr @ W[5] + s @ W[6]).unsqueeze(1)  # (B, n, d_out)
        along_rows = a @ W[7] + r @ W[9] + c @ W[11]  # B_ij = u_i
        along_cols = a @ W[8] + r @ W[10] + c @ W[12]  # B_ij = u_j
        const = tr @ W[13] + s @ W[14]  # (B, d_out)
        if self.bias is not None:
            diag = diag + (self.bias[0] - self.bias[1])
            const = const + self.bias[1]
        out = out + (along_rows.unsqueeze(2) + const.view(B, 1, 1, -1) + along_cols.unsqueeze(1))
        out.diagonal(dim1=1, dim2=2).add_(diag.transpose(1, 2))
        return out * pair_mask(node_mask).unsqueeze(-1).to(out.dtype)


class IGN2to1(_IGNLinear):
    r"""Equivariant linear map pairs -> nodes: (B, n, n, d_in) -> (B, n, d_out).

    ``out_i = a_i W_1 + r_i W_2 + c_i W_3 + tr W_4 + s W_5 + b``, zero on padded nodes.
    """

    n_ops = 5

    def forward(self, A: Tensor, node_mask: Tensor) -> Tensor:
        _check_order2(A, node_mask)
        if A.shape[-1] != self.in_channels:
            raise ValueError(f"IGN2to1 expects {self.in_channels} input channels, got {A.shape[-1]}")
        _, a, r, c, tr, s = _aggregates2(A, node_mask)
        W = self.weight
        out = a @ W[0] + r @ W[1] + c @ W[2] + (tr @ W[3] + s @ W[4]).unsqueeze(1)
        if self.bias is not None:
            out = out + self.bias[0]
        return out * node_mask.unsqueeze(-1).to(out.dtype)


class IGN1to2(_IGNLinear):
    r"""Equivariant linear map nodes -> pairs: (B, n, d_in) -> (B, n, n, d_out).

    ``out_ij = δ_ij v_i W_1 + v_i W_2 + v_j W_3 + δ_ij \bar v W_4 + \bar v W_5
    + δ_ij b_diag + (1-δ_ij) b_off``, masked to real pairs.
    """

    n_ops = 5
    n_bias = 2

    def forward(self, v: Tensor, node_mask: Tensor) -> Tensor:
        _check_order1(v, node_mask)
        if v.shape[-1] != self.in_channels:
            raise ValueError(f"IGN1to2 expects {self.in_channels} input channels, got {v.shape[-1]}")
        v = v * node_mask.unsqueeze(-1).to(v.dtype)
        B = v.shape[0]
        mean = v.sum(dim=1) / _counts(node_mask, v.dtype)
        W = self.weight
        diag = v @ W[0] + (mean @ W[3]).unsqueeze(1)
        const = mean @ W[4]
        if self.bias is not None:
            diag = diag + (self.bias[0] - self.bias[1])
            const = const + self.bias[1]
        out = (v @ W[1] + const.unsqueeze(1)).unsqueeze(2) + (v @ W[2]).unsqueeze(1)
        out.diagonal(dim1=1, dim2=2).add_(diag.transpose(1, 2))
        return out * pair_mask(node_mask).unsqueeze(-1).to(out.dtype)


class IGN1to1(_IGNLinear):
    r"""Equivariant linear map of node features (DeepSets): (B, n, d_in) -> (B, n, d_out).

    ``out_i = v_i W_1 + \bar v W_2 + b``, zero on padded nodes.
    """

    n_ops = 2

    def forward(self, v: Tensor, node_mask: Tensor) -> Tensor:
        _check_order1(v, node_mask)
        if v.shape[-1] != self.in_channels:
            raise ValueError(f"IGN1to1 expects {self.in_channels} input channels, got {v.shape[-1]}")
        m1 = node_mask.unsqueeze(-1).to(v.dtype)
        v = v * m1
        mean = v.sum(dim=1) / _counts(node_mask, v.dtype)
        out = v @ self.weight[0] + (mean @ self.weight[1]).unsqueeze(1)
        if self.bias is not None:
            out = out + self.bias[0]
        return out * m1


class IGN2to0(_IGNLinear):
    r"""Invariant linear map pairs -> graph: (B, n, n, d_in) -> (B, d_out).

    ``out = tr W_1 + s W_2 + b``.
    """

    n_ops = 2

    def forward(self, A: Tensor, node_mask: Tensor) -> Tensor:
        _check_order2(A, node_mask)
        if A.shape[-1] != self.in_channels:
            raise ValueError(f"IGN2to0 expects {self.in_channels} input channels, got {A.shape[-1]}")
        _, _, _, _, tr, s = _aggregates2(A, node_mask)
        out = tr @ self.weight[0] + s @ self.weight[1]
        if self.bias is not None:
            out = out + self.bias[0]
        return out
