"""The graph-transformer denoiser (DiGress's layer semantics, Vignac et al., ICLR 2023, Appendix).

Streams and shapes (``B`` graphs, ``n`` padded nodes, ``node_mask`` (B, n) bool):

* node stream ``X`` (B, n, dx), edge stream ``E`` (B, n, n, de), graph stream ``y`` (B, dy).

One :class:`GraphTransformerLayer` computes, with ``d_head = dx / n_head``,

1. ``Q, K, V = X W_q, X W_k, X W_v`` (each (B, n, dx)).
2. Per-channel scores (no sum over a head's channels; heads only set the scale ``d_head``)::

       S_ij = (Q_i ⊙ K_j) / sqrt(d_head) ⊙ (E1_ij + 1) + E2_ij,     E1, E2 = linear maps of E_ij

   (B, n, n, dx).
3. New edge stream: FiLM by the graph stream, then a linear map to de::

       E'_ij = W_e ( a_E(y) + (m_E(y) + 1) ⊙ S_ij ) + b_e

   (B, n, n, de), zeroed where i or j is padding.
4. Attention per channel, softmax over the REAL keys j only::

       α_ijc = exp(S_ijc) / Σ_{j real} exp(S_ijc),     h_i = Σ_j α_ij ⊙ V_j

   and a FiLM of the graph stream, then a linear map: ``X'_i = W_x ( a_X(y) + (m_X(y) + 1) ⊙ h_i ) + b_x``.
5. Graph stream: ``y' = MLP( W_y y + P_X(X) + P_E(E) )`` where ``P_X`` / ``P_E`` are linear maps of the
   concatenated (mean, min, max, std) of X over REAL nodes and of E over REAL off-diagonal pairs
   (:func:`masked_statistics`; padding never enters, unlike DiGress's main branch).
6. Per stream: ``Z = LN(Z + dropout(Z'))``, ``Z = LN(Z + dropout(FFN(Z)))``, with FFN widths
   ``dim_ffX``, ``dim_ffE``, ``dim_ffy``; padding of X and E is re-zeroed.

Memory and speed: steps 2-4 are one autograd node (:func:`~sympe.diffusion.nn.edge_attention.edge_attention`). On
CPU in float32 its elementwise loops are C (:mod:`~sympe.diffusion.nn.cpu_kernel`) and the only (B, n, n, dx) tensor
it keeps for backward is the scores ``S`` (``recompute_attention=True``; ``E1`` is recomputed with one GEMM) or
``S`` and ``E1`` (``False``); elsewhere it keeps ``E1 + 1``, ``S`` and α. The graph FiLM of step 3 is applied as
``(m_E + 1) ⊙ S`` inside it, followed by one GEMM over all pairs. Parameters are stored fused: ``qkv``
(Q | K | V), ``e_film`` (E1 | E2), ``y_film`` (a_E | m_E | a_X | m_X). Dropout is
:class:`~sympe.diffusion.nn.dropout.Dropout` (``nn.Dropout`` semantics; on CPU a bit-mask draw, rate rounded to
2⁻¹⁵; with p = 0 an identity); the FFN's ReLU and dropout are one
:class:`~sympe.diffusion.nn.dropout.ReluDropout` that keeps one tensor; the pooled statistics of step 5 are one node
that keeps only its input (:mod:`~sympe.diffusion.nn.pooling`).

The model (:class:`GraphTransformer`) maps arbitrary input widths to hidden widths with two-layer
MLPs, runs ``n_layers`` layers and maps back with two-layer MLPs. Optional input residual
(``input_residual=True``, DiGress's choice): the first ``output_dims[k]`` input channels of each
stream are added to its output; this assumes the caller puts the noisy one-hot graph FIRST in the
concatenation of X and E (and the first ``output_dims['y']`` channels of y are the ones to pass
through). Outputs: X logits with zero padding; E logits symmetrised ``(E + Eᵀ)/2``, zero diagonal,
zero padding.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from sympe.diffusion.nn.dropout import Dropout, ReluDropout, dropout_or_identity
from sympe.diffusion.nn.edge_attention import edge_attention, edge_attention_reference
from sympe.diffusion.nn.pooling import masked_statistics

__all__ = [
    "masked_statistics",
    "edge_attention",
    "edge_attention_reference",
    "Dropout",
    "TwoLayerMLP",
    "FeedForward",
    "PooledToGraph",
    "NodeEdgeAttention",
    "GraphTransformerLayer",
    "GraphTransformer",
]


# ---------------------------------------------------------------------------------------- helpers
class TwoLayerMLP(nn.Module):
    """``f(x) = act(W2 act(W1 x + b1) + b2)`` (final activation optional), on the last dimension.

    Shapes: (..., d_in) -> (..., d_out). ``act`` is ReLU.
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, final_activation: bool):
        super().__init__()
        self.lin1 = nn.Linear(d_in, d_hidden)
        self.lin2 = nn.Linear(d_hidden, d_out)
        self.final_activation = final_activation
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        x = self.lin2(torch.relu(self.lin1(x)))
        return torch.relu(x) if self.final_activation else x


class FeedForward(nn.Module):
    """Position-wise FFN ``W2 dropout(relu(W1 x + b1)) + b2`` followed by dropout.

    Shapes: (..., d) -> (..., d); hidden width ``d_ff``. The hidden ReLU and dropout are one
    :class:`~sympe.diffusion.nn.dropout.ReluDropout` (one hidden-width tensor kept for backward).
    """

    def __init__(self, d: int, d_ff: int, dropout: float):
        super().__init__()
        self.lin1 = nn.Linear(d, d_ff)
        self.lin2 = nn.Linear(d_ff, d)
        self.act_drop = ReluDropout(dropout)
        self.drop2 = dropout_or_identity(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.lin2(self.act_drop(self.lin1(x))))


class PooledToGraph(nn.Module):
    """Linear map of masked pooled statistics to the graph stream.

    ``P(Z) = W [mean, min, max, std](Z over masked-in positions) + b``:
    Z (B, m, d), mask (B, m) -> (B, d_out). See :func:`masked_statistics`.
    """

    def __init__(self, d: int, d_out: int):
        super().__init__()
        self.lin = nn.Linear(4 * d, d_out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, z: Tensor, mask: Tensor) -> Tensor:
        return self.lin(masked_statistics(z, mask))


# ---------------------------------------------------------------------------------------- attention
class NodeEdgeAttention(nn.Module):
    """Steps 1–5 of the module docstring: (X, E, y, node_mask) -> (X', E', y').

    Shapes: X (B, n, dx), E (B, n, n, de), y (B, dy), node_mask (B, n) bool ->
    X' (B, n, dx) (zero on padding), E' (B, n, n, de) (zero where i or j is padding), y' (B, dy).
    Parameters: ``qkv`` (dx -> 3dx), ``e_film`` (de -> 2dx: E1 | E2), ``y_film`` (dy -> 4dx:
    a_E | m_E | a_X | m_X), ``e_out`` (dx -> de), ``x_out`` (dx -> dx), ``y_self`` (dy -> dy),
    ``x_pool`` / ``e_pool`` (:class:`PooledToGraph`), ``y_out`` (two-layer MLP dy -> dy).
    """

    def __init__(self, dx: int, de: int, dy: int, n_head: int, *, recompute: bool, update_y: bool = True):
        super().__init__()
        self.recompute = bool(recompute)  # see edge_attention: keep S only and recompute E1 in backward
        if dx % n_head != 0:
            raise ValueError(f"NodeEdgeAttention: dx={dx} must be divisible by n_head={n_head}")
        self.dx, self.de, self.dy, self.n_head = dx, de, dy, n_head
        self.scale = 1.0 / math.sqrt(dx // n_head)
        self.qkv = nn.Linear(dx, 3 * dx)
        self.e_film = nn.Linear(de, 2 * dx)
        self.y_film = nn.Linear(dy, 4 * dx)
        self.e_out = nn.Linear(dx, de)
        self.x_out = nn.Linear(dx, dx)
        # update_y=False (the last layer when the model has no graph output): y' = y, and the graph-stream
        # update is not built, so no parameter is left without a gradient (DDP requires that).
        self.update_y = bool(update_y)
        if self.update_y:
            self.y_self = nn.Linear(dy, dy)
            self.x_pool = PooledToGraph(dx, dy)
            self.e_pool = PooledToGraph(de, dy)
            self.y_out = TwoLayerMLP(dy, dy, dy, final_activation=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for mod in (self.qkv, self.e_film, self.y_film, self.e_out, self.x_out):
            mod.reset_parameters()
        if self.update_y:
            for mod in (self.y_self, self.x_pool, self.e_pool, self.y_out):
                mod.reset_parameters()

    def forward(self, X: Tensor, E: Tensor, y: Tensor, node_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, n, _ = X.shape
        dx = self.dx
        xm = node_mask.unsqueeze(-1).to(X.dtype)  # (B, n, 1)
        pair = node_mask.unsqueeze(2) & node_mask.unsqueeze(1)  # (B, n, n)

        Q, K, V = self.qkv(X).chunk(3, dim=-1)  # (B, n, dx) each
        a_E, m_E, a_X, m_X = self.y_film(y).chunk(4, dim=-1)  # (B, dx) each
        # E' = W_e (a_E + (m_E + 1) ⊙ S) + b_e = ((m_E + 1) ⊙ S) W_eᵀ + (W_e a_E + b_e); S and h in one fused
        # autograd node (see edge_attention), S never leaves it
        E_new, h = edge_attention(Q * self.scale, K, V, E, self.e_film.weight, self.e_film.bias, m_E + 1.0,
                                  self.e_out.weight, self.e_out(a_E), node_mask, recompute=self.recompute)
        E_new = E_new * pair.unsqueeze(-1).to(E_new.dtype)

        X_new = self.x_out(a_X.unsqueeze(1) + (m_X + 1.0).unsqueeze(1) * h) * xm

        if not self.update_y:
            return X_new, E_new, y
        offdiag = pair & ~torch.eye(n, dtype=torch.bool, device=pair.device)
        y_new = (
            self.y_self(y)
            + self.x_pool(X, node_mask)
            + self.e_pool(E.reshape(B, n * n, self.de), offdiag.reshape(B, n * n))
        )
        y_new = self.y_out(y_new)
        return X_new, E_new, y_new


class GraphTransformerLayer(nn.Module):
    """One transformer layer: :class:`NodeEdgeAttention`, then per stream residual + LayerNorm and
    residual FFN + LayerNorm (step 6 of the module docstring).

    Shapes: X (B, n, dx), E (B, n, n, de), y (B, dy), node_mask (B, n) -> same shapes; X and E
    are zero on padding (E zero where i or j is padding; the diagonal of real nodes is kept).
    """

    def __init__(self, dx: int, de: int, dy: int, n_head: int, dim_ffX: int, dim_ffE: int, dim_ffy: int, *,
                 dropout: float, recompute_attention: bool, layer_norm_eps: float = 1e-5, update_y: bool = True):
        super().__init__()
        self.update_y = bool(update_y)
        self.attn = NodeEdgeAttention(dx, de, dy, n_head, update_y=update_y, recompute=recompute_attention)
        self.norm_x1 = nn.LayerNorm(dx, eps=layer_norm_eps)
        self.norm_e1 = nn.LayerNorm(de, eps=layer_norm_eps)
        self.norm_x2 = nn.LayerNorm(dx, eps=layer_norm_eps)
        self.norm_e2 = nn.LayerNorm(de, eps=layer_norm_eps)
        self.ff_x = FeedForward(dx, dim_ffX, dropout)
        self.ff_e = FeedForward(de, dim_ffE, dropout)
        if self.update_y:
            self.norm_y1 = nn.LayerNorm(dy, eps=layer_norm_eps)
            self.norm_y2 = nn.LayerNorm(dy, eps=layer_norm_eps)
            self.ff_y = FeedForward(dy, dim_ffy, dropout)
        self.drop_x = dropout_or_identity(dropout)
        self.drop_e = dropout_or_identity(dropout)
        self.drop_y = dropout_or_identity(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.attn.reset_parameters()
        for mod in (self.norm_x1, self.norm_e1, self.norm_x2, self.norm_e2, self.ff_x, self.ff_e):
            mod.reset_parameters()
        if self.update_y:
            for mod in (self.norm_y1, self.norm_y2, self.ff_y):
                mod.reset_parameters()

    def forward(self, X: Tensor, E: Tensor, y: Tensor, node_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        X_new, E_new, y_new = self.attn(X, E, y, node_mask)
        X = self.norm_x1(X + self.drop_x(X_new))
        E = self.norm_e1(E + self.drop_e(E_new))
        X = self.norm_x2(X + self.ff_x(X))
        E = self.norm_e2(E + self.ff_e(E))
        if self.update_y:
            y = self.norm_y1(y + self.drop_y(y_new))
            y = self.norm_y2(y + self.ff_y(y))
        xm = node_mask.unsqueeze(-1).to(X.dtype)
        pm = (node_mask.unsqueeze(2) & node_mask.unsqueeze(1)).unsqueeze(-1).to(E.dtype)
        return X * xm, E * pm, y


# ---------------------------------------------------------------------------------------- model
def _dims(d: Mapping, required: tuple[str, ...], name: str, optional: Mapping | None = None) -> dict:
    """Read integer entries ``required`` (+ ``optional`` with defaults) from a mapping; reject others."""
    if not isinstance(d, Mapping):
        raise ValueError(f"GraphTransformer: {name} must be a mapping with keys {required}, got {type(d).__name__}")
    optional = dict(optional or {})
    missing = [k for k in required if k not in d]
    if missing:
        raise ValueError(f"GraphTransformer: {name} is missing keys {missing} (needs {list(required)})")
    unknown = [k for k in d if k not in required and k not in optional]
    if unknown:
        raise ValueError(f"GraphTransformer: {name} has unknown keys {unknown} (allowed: "
                         f"{list(required) + list(optional)})")
    out = {**optional, **{k: d[k] for k in d}}
    for k, v in out.items():
        if int(v) != v or int(v) < 0:
            raise ValueError(f"GraphTransformer: {name}['{k}'] must be a non-negative integer, got {v!r}")
        out[k] = int(v)
    return out


class GraphTransformer(nn.Module):
    """The denoiser: (X, E, y, node_mask) -> (logits_X, logits_E, y_out). See the module docstring.

    Args (plain ints / mappings, DiGress's config names):
        n_layers: number of :class:`GraphTransformerLayer`.
        input_dims: ``{X, E, y}`` input widths (any; the caller concatenates noisy one-hot graph and
            extra channels, noisy one-hot FIRST when ``input_residual``).
        hidden_mlp_dims: ``{X, E, y}`` hidden widths of the input/output MLPs.
        hidden_dims: ``{dx, de, dy, n_head, dim_ffX, dim_ffE, dim_ffy}`` layer widths (DiGress hard-codes
            ``dim_ffy = 2048``; sympe's configs set it).
        output_dims: ``{X, E, y}`` output widths (``y`` may be 0).
        dropout: dropout rate inside the layers (required, as ``recompute_attention``: the model config sets both).
        input_residual: add the first ``output_dims[k]`` input channels to the output of stream k.
        recompute_attention: the attention keeps only its scores for backward and recomputes ``E1`` (one more
            GEMM per layer in backward, about a fifth less training memory; see
            :func:`~sympe.diffusion.nn.edge_attention.edge_attention`). No effect on values or gradients.

    Shapes: X (B, n, input_dims.X), E (B, n, n, input_dims.E), y (B, input_dims.y), node_mask (B, n)
    bool -> logits_X (B, n, output_dims.X) zero on padding, logits_E (B, n, n, output_dims.E)
    symmetric with zero diagonal and zero padding, y_out (B, output_dims.y).
    The input MLP output of E is symmetrised ``(h + hᵀ)/2`` (as in DiGress).
    """

    def __init__(self, n_layers: int, input_dims: Mapping, hidden_mlp_dims: Mapping, hidden_dims: Mapping,
                 output_dims: Mapping, *, dropout: float, recompute_attention: bool, input_residual: bool = True):
        super().__init__()
        if int(n_layers) != n_layers or n_layers < 0:
            raise ValueError(f"GraphTransformer: n_layers must be a non-negative integer, got {n_layers!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"GraphTransformer: dropout must be in [0, 1), got {dropout!r}")
        self.input_dims = _dims(input_dims, ("X", "E", "y"), "input_dims")
        self.hidden_mlp_dims = _dims(hidden_mlp_dims, ("X", "E", "y"), "hidden_mlp_dims")
        self.hidden_dims = _dims(hidden_dims, ("dx", "de", "dy", "n_head", "dim_ffX", "dim_ffE", "dim_ffy"),
                                 "hidden_dims")
        self.output_dims = _dims(output_dims, ("X", "E", "y"), "output_dims")
        self.input_residual = bool(input_residual)
        ind, mid, hid, outd = self.input_dims, self.hidden_mlp_dims, self.hidden_dims, self.output_dims
        for k in ("X", "E"):
            if ind[k] == 0 or outd[k] == 0:
                raise ValueError(f"GraphTransformer: input_dims['{k}'] and output_dims['{k}'] must be positive")
        if self.input_residual:
            for k in ("X", "E", "y"):
                if outd[k] > ind[k]:
                    raise ValueError(
                        f"GraphTransformer: input_residual needs input_dims['{k}'] >= output_dims['{k}'] "
                        f"(got {ind[k]} < {outd[k]}); pass input_residual=False or widen the input")
        if hid["n_head"] == 0 or hid["dx"] % hid["n_head"] != 0:
            raise ValueError(f"GraphTransformer: hidden_dims dx={hid['dx']} must be divisible by n_head={hid['n_head']}")

        self.mlp_in_X = TwoLayerMLP(ind["X"], mid["X"], hid["dx"], final_activation=True)
        self.mlp_in_E = TwoLayerMLP(ind["E"], mid["E"], hid["de"], final_activation=True)
        self.mlp_in_y = TwoLayerMLP(ind["y"], mid["y"], hid["dy"], final_activation=True)
        self.layers = nn.ModuleList(
            GraphTransformerLayer(hid["dx"], hid["de"], hid["dy"], hid["n_head"], hid["dim_ffX"], hid["dim_ffE"],
                                  hid["dim_ffy"], dropout=float(dropout),
                                  update_y=bool(outd["y"]) or i < int(n_layers) - 1,
                                  recompute_attention=bool(recompute_attention))
            for i in range(int(n_layers))
        )
        self.mlp_out_X = TwoLayerMLP(hid["dx"], mid["X"], outd["X"], final_activation=False)
        self.mlp_out_E = TwoLayerMLP(hid["de"], mid["E"], outd["E"], final_activation=False)
        # no graph output head when output_dims['y'] == 0 (forward returns a (B, 0) tensor)
        self.mlp_out_y = TwoLayerMLP(hid["dy"], mid["y"], outd["y"], final_activation=False) if outd["y"] else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for mod in (self.mlp_in_X, self.mlp_in_E, self.mlp_in_y, self.mlp_out_X, self.mlp_out_E, self.mlp_out_y):
            if mod is not None:
                mod.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()

    def _check(self, X: Tensor, E: Tensor, y: Tensor, node_mask: Tensor) -> None:
        if X.dim() != 3:
            raise ValueError(f"GraphTransformer: X must be (B, n, dx), got shape {tuple(X.shape)}")
        B, n, dx = X.shape
        if dx != self.input_dims["X"]:
            raise ValueError(f"GraphTransformer: X has {dx} channels, input_dims['X'] is {self.input_dims['X']}")
        if E.dim() != 4 or E.shape[:3] != (B, n, n):
            raise ValueError(f"GraphTransformer: E must be ({B}, {n}, {n}, de), got shape {tuple(E.shape)}")
        if E.shape[3] != self.input_dims["E"]:
            raise ValueError(f"GraphTransformer: E has {E.shape[3]} channels, input_dims['E'] is {self.input_dims['E']}")
        if y.dim() != 2 or y.shape[0] != B or y.shape[1] != self.input_dims["y"]:
            raise ValueError(f"GraphTransformer: y must be ({B}, {self.input_dims['y']}), got shape {tuple(y.shape)}")
        if node_mask.shape != (B, n) or node_mask.dtype != torch.bool:
            raise ValueError(f"GraphTransformer: node_mask must be a bool tensor of shape ({B}, {n}), "
                             f"got {node_mask.dtype} {tuple(node_mask.shape)}")

    def forward(self, X: Tensor, E: Tensor, y: Tensor, node_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self._check(X, E, y, node_mask)
        B, n, _ = X.shape
        xm = node_mask.unsqueeze(-1).to(X.dtype)
        pair = node_mask.unsqueeze(2) & node_mask.unsqueeze(1)
        offdiag = pair & ~torch.eye(n, dtype=torch.bool, device=X.device)

        h_X = self.mlp_in_X(X) * xm
        h_E = self.mlp_in_E(E)
        h_E = 0.5 * (h_E + h_E.transpose(1, 2)) * pair.unsqueeze(-1).to(h_E.dtype)
        h_y = self.mlp_in_y(y)
        for layer in self.layers:
            h_X, h_E, h_y = layer(h_X, h_E, h_y, node_mask)

        out_X = self.mlp_out_X(h_X)
        out_E = self.mlp_out_E(h_E)
        out_y = self.mlp_out_y(h_y) if self.mlp_out_y is not None else h_y.new_zeros(B, 0)
        if self.input_residual:
            out_X = out_X + X[..., : self.output_dims["X"]]
            out_E = out_E + E[..., : self.output_dims["E"]]
            out_y = out_y + y[..., : self.output_dims["y"]]
        out_X = out_X * xm
        out_E = 0.5 * (out_E + out_E.transpose(1, 2)) * offdiag.unsqueeze(-1).to(out_E.dtype)
        return out_X, out_E, out_y
