"""Structural features of the NOISY graph, recomputed at every denoising step.

All features are computed from the adjacency of a :class:`~sympe.diffusion.graph.DenseGraph`

    A_ij = 1 - E_ij0   on real off-diagonal pairs (i != j, both real),   A_ij = 0 elsewhere,

(B, n, n); ``d = A 1`` (B, n) are the degrees. Every feature is permutation equivariant (node and
edge features) or invariant (graph features), and padding (any content) never changes it. Node and
edge features are zero on padded nodes / pairs and edge features are zero on the diagonal.

Cycle counts (:func:`cycle_counts`), exact for a simple graph, from ``A² = A·A`` and ``A³ = A²·A``
only (two matmuls per call: ``(A⁴)_ii = Σ_j (A²)_ij²``, ``(A⁵)_ii = Σ_j (A²)_ij (A³)_ij``,
``tr A⁶ = Σ_ij (A³)_ij²``); with ``t = diag(A³)``:

* node i, 3-cycles: ``c3_i = t_i / 2``
* node i, 4-cycles: ``c4_i = ((A⁴)_ii - d_i (d_i - 1) - (A d)_i) / 2``
* node i, 5-cycles: ``c5_i = ((A⁵)_ii - (A t)_i - t_i (2 d_i - 5) - 2 ((A ⊙ A²) d)_i) / 2``
* graph: ``C3 = tr A³ / 6``, ``C4 = (tr A⁴ - 2 Σ d_i² + Σ d_i) / 8``,
  ``C5 = (tr A⁵ - 5 Σ d_i t_i + 5 tr A³) / 10``,
  ``12 C6 = tr A⁶ - 3 Σ t_i² + 9 Σ_ij A_ij (A²)_ij² - 6 Σ d_i (A⁴)_ii + 6 tr A⁴ - 4 tr A³
  + 4 Σ d_i³ + 3 Σ_ij (A³)_ij - 12 Σ d_i² + 4 Σ d_i``  (closed-walk counting, Harary & Manvel 1971).

(Each formula subtracts from the closed walks of length k those that are not simple cycles: for
k = 4, back-and-forth walks; for k = 5, a triangle plus one edge walked back and forth.)
Normalised counts (:func:`normalize_cycle_counts`, DiGress's convention) are ``min(count / 10, 1)``.

Spectral features (:func:`laplacian_features`) of the combinatorial Laplacian ``L = D - A`` of
the real nodes. Padded diagonal entries are set to ``n + 1``, above every real eigenvalue
(``λ_max(L) <= n`` for 0 <= A_ij <= 1), so padding adds no fake zero eigenvalue; one
``torch.linalg.eigh`` per call (float64 by default). Eigenvalues below ``zero_tol`` count as zero.

* ``n_components`` (B, 1): number of zero eigenvalues = number of connected components.
* ``eigenvalues`` (B, k): the first k non-zero eigenvalues, ascending; 0 marks "absent" (a graph
  with fewer than k non-zero eigenvalues).
* ``eigenvectors`` (B, n, k'): the matching unit eigenvectors (0 where absent). Their sign (and the
  basis of a repeated eigenvalue) is whatever ``eigh`` returns: equivariant only up to that choice.
* ``lcc`` (B, n, 1): 1 on nodes of a largest connected component (every one, if several tie). The
  projector on the null space of L has ``P_ii = 1 / |component of i|``, so the component size is
  ``round(1 / P_ii)`` — exact and independent of the null-space basis.

RRWP (:func:`rrwp_features`): with ``P = D⁻¹A`` the random-walk matrix (rows of isolated nodes are
zero) and its symmetric twin ``Ŝ = D^{-1/2} A D^{-1/2} = D^{1/2} P D^{-1/2}``, node features are
``diag(P^k) = diag(Ŝ^k)`` for k = 1..K (B, n, K) (k = 1 is 0 for a simple graph; it is kept so the
node and edge channels line up) and the optional edge features are ``(Ŝ^k)_ij`` (B, n, n, K),
symmetric, zero on the diagonal. K matmuls of (n, n) and no eigendecomposition: the cheap option
for large graphs.

:class:`ExtraFeatures` bundles them; see its docstring for the channel layout of each ``kind``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph

__all__ = [
    "noisy_adjacency",
    "cycle_counts",
    "normalize_cycle_counts",
    "laplacian_features",
    "rrwp_features",
    "ExtraFeatures",
]


def noisy_adjacency(graph: DenseGraph) -> Tensor:
    """``A = 1 - E[..., 0]`` on real off-diagonal pairs, 0 elsewhere: (B, n, n), dtype of ``E``."""
    if graph.E.dim() != 4 or graph.E.shape[-1] < 1:
        raise ValueError(f"noisy_adjacency: E must be (B, n, n, de) with de >= 1, got {tuple(graph.E.shape)}")
    return (1.0 - graph.E[..., 0]) * graph.edge_mask.to(graph.E.dtype)


def _check_adjacency(A: Tensor, node_mask: Tensor, name: str) -> None:
    if A.dim() != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"{name}: A must be (B, n, n), got shape {tuple(A.shape)}")
    if node_mask.shape != A.shape[:2] or node_mask.dtype != torch.bool:
        raise ValueError(f"{name}: node_mask must be a bool tensor of shape {tuple(A.shape[:2])}, "
                         f"got {node_mask.dtype} {tuple(node_mask.shape)}")


# ---------------------------------------------------------------------------------------- cycles
def cycle_counts(A: Tensor, node_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Raw k-cycle counts (formulas in the module docstring).

    ``A``: (B, n, n) symmetric 0/1 adjacency, zero diagonal and zero on padding;
    ``node_mask``: (B, n) bool. Returns ``node`` (B, n, 3) = number of 3-, 4-, 5-cycles through
    each node (0 on padding) and ``graph`` (B, 4) = number of 3-, 4-, 5-, 6-cycles.
    """
    _check_adjacency(A, node_mask, "cycle_counts")
    d = A.sum(dim=-1)  # (B, n)
    A2 = A @ A
    A3 = A2 @ A
    t = torch.diagonal(A3, dim1=1, dim2=2)  # (A³)_ii
    a4 = (A2 * A2).sum(dim=-1)  # (A⁴)_ii
    a5 = (A2 * A3).sum(dim=-1)  # (A⁵)_ii
    Ad = (A @ d.unsqueeze(-1)).squeeze(-1)
    At = (A @ t.unsqueeze(-1)).squeeze(-1)
    AA2d = ((A * A2) @ d.unsqueeze(-1)).squeeze(-1)

    c3 = t / 2
    c4 = (a4 - d * (d - 1) - Ad) / 2
    c5 = (a5 - At - t * (2 * d - 5) - 2 * AA2d) / 2
    node = torch.stack([c3, c4, c5], dim=-1) * node_mask.unsqueeze(-1).to(A.dtype)

    tr3, tr4, tr5 = t.sum(-1), a4.sum(-1), a5.sum(-1)
    tr6 = (A3 * A3).sum(dim=(1, 2))
    sd, sd2, sd3 = d.sum(-1), d.square().sum(-1), d.pow(3).sum(-1)
    C3 = tr3 / 6
    C4 = (tr4 - 2 * sd2 + sd) / 8
    C5 = (tr5 - 5 * (d * t).sum(-1) + 5 * tr3) / 10
    C6 = (
        tr6
        - 3 * t.square().sum(-1)
        + 9 * (A * A2.square()).sum(dim=(1, 2))
        - 6 * (d * a4).sum(-1)
        + 6 * tr4
        - 4 * tr3
        + 4 * sd3
        + 3 * A3.sum(dim=(1, 2))
        - 12 * sd2
        + 4 * sd
    ) / 12
    graph = torch.stack([C3, C4, C5, C6], dim=-1)
    return node, graph


def normalize_cycle_counts(counts: Tensor, scale: float = 10.0) -> Tensor:
    """``min(counts / scale, 1)`` elementwise (DiGress divides by 10 and clips at 1)."""
    if scale <= 0:
        raise ValueError(f"normalize_cycle_counts: scale must be positive, got {scale}")
    return (counts / scale).clamp(max=1.0)


# ---------------------------------------------------------------------------------------- spectral
def laplacian_features(
    A: Tensor,
    node_mask: Tensor,
    k_eig: int = 5,
    k_eigvec: int = 2,
    zero_tol: float = 1e-6,
    dtype: torch.dtype = torch.float64,
) -> dict[str, Tensor]:
    """Spectral features of ``L = D - A`` on real nodes (module docstring), one ``eigh`` per call.

    ``A``: (B, n, n), ``node_mask``: (B, n) bool. Returns a dict (dtype of ``A``):
    ``n_components`` (B, 1), ``eigenvalues`` (B, k_eig), ``eigenvectors`` (B, n, k_eigvec),
    ``lcc`` (B, n, 1). ``zero_tol`` must be below the smallest non-zero eigenvalue (>= 4 / n² for
    a connected simple graph): the float64 default 1e-6 is safe up to n ≈ 2000.
    """
    _check_adjacency(A, node_mask, "laplacian_features")
    if k_eig < 0 or k_eigvec < 0:
        raise ValueError(f"laplacian_features: k_eig and k_eigvec must be >= 0, got {k_eig}, {k_eigvec}")
    B, n, _ = A.shape
    out_dtype = A.dtype
    if n == 0:
        zeros_n = torch.zeros(B, 0, 1, dtype=out_dtype, device=A.device)
        return {
            "n_components": torch.zeros(B, 1, dtype=out_dtype, device=A.device),
            "eigenvalues": torch.zeros(B, k_eig, dtype=out_dtype, device=A.device),
            "eigenvectors": torch.zeros(B, 0, k_eigvec, dtype=out_dtype, device=A.device),
            "lcc": zeros_n,
        }
    Ad = A.to(dtype)
    real = node_mask.to(dtype)
    pad_diag = (1.0 - real) * (n + 1)
    L = torch.diag_embed(Ad.sum(-1) + pad_diag) - Ad
    evals, evecs = torch.linalg.eigh(L)  # ascending; (B, n), (B, n, n)

    is_zero = evals < zero_tol  # padded eigenvalues are n + 1
    n_comp = is_zero.sum(-1)  # (B,)
    n_real = node_mask.sum(-1)

    # eigenvalues / eigenvectors c, c+1, ..., c+k-1 where c = number of zero eigenvalues
    def take(k: int) -> tuple[Tensor, Tensor]:
        idx = n_comp.unsqueeze(-1) + torch.arange(k, device=A.device)  # (B, k)
        valid = idx < n_real.unsqueeze(-1)
        idx = idx.clamp(max=n - 1)
        return idx, valid

    idx, valid = take(k_eig)
    vals = torch.gather(evals, 1, idx) * valid.to(dtype)
    idx_v, valid_v = take(k_eigvec)
    vecs = torch.gather(evecs, 2, idx_v.unsqueeze(1).expand(B, n, k_eigvec)) * valid_v.unsqueeze(1).to(dtype)
    vecs = vecs * real.unsqueeze(-1)

    # component sizes from the null-space projector's diagonal: P_ii = 1 / |C(i)|
    P_diag = (evecs.square() * is_zero.unsqueeze(1).to(dtype)).sum(-1)  # (B, n)
    size = torch.where(node_mask & (P_diag > 0.5 / n), (1.0 / P_diag.clamp_min(1e-12)).round(),
                       torch.zeros_like(P_diag))
    lcc = node_mask & (size == size.amax(dim=-1, keepdim=True)) & (size > 0)

    return {
        "n_components": n_comp.unsqueeze(-1).to(out_dtype),
        "eigenvalues": vals.to(out_dtype),
        "eigenvectors": vecs.to(out_dtype),
        "lcc": lcc.unsqueeze(-1).to(out_dtype),
    }


# ---------------------------------------------------------------------------------------- RRWP
def rrwp_features(A: Tensor, node_mask: Tensor, steps: int, edges: bool = False) -> tuple[Tensor, Tensor | None]:
    """Random-walk features (module docstring): node (B, n, steps) = ``diag(P^k)``, k = 1..steps, and
    (if ``edges``) edge (B, n, n, steps) = ``(Ŝ^k)_ij`` off the diagonal, ``Ŝ = D^{-1/2} A D^{-1/2}``.
    """
    _check_adjacency(A, node_mask, "rrwp_features")
    if steps < 1:
        raise ValueError(f"rrwp_features: steps must be >= 1, got {steps}")
    B, n, _ = A.shape
    d = A.sum(-1)
    inv_sqrt = torch.where(d > 0, d.clamp_min(1e-12).rsqrt(), torch.zeros_like(d))
    S = inv_sqrt.unsqueeze(-1) * A * inv_sqrt.unsqueeze(-2)
    power = S
    diags, offs = [], []
    for k in range(steps):
        if k > 0:
            power = power @ S
        diags.append(torch.diagonal(power, dim1=1, dim2=2))
        if edges:
            offs.append(power)
    node = torch.stack(diags, dim=-1) * node_mask.unsqueeze(-1).to(A.dtype)
    edge = None
    if edges:
        em = (node_mask.unsqueeze(2) & node_mask.unsqueeze(1)) & ~torch.eye(n, dtype=torch.bool, device=A.device)
        edge = torch.stack(offs, dim=-1) * em.unsqueeze(-1).to(A.dtype)
    return node, edge


# ---------------------------------------------------------------------------------------- bundle
class ExtraFeatures:
    """Structural features of a noisy ``DenseGraph``: ``graph -> (x (B, n, kx), e (B, n, n, ke), y (B, ky))``.

    Channel layout (concatenated in this order; widths from :meth:`dims`):

    * ``kind="none"``: nothing (kx = ke = ky = 0).
    * ``"cycles"``: x = [c3, c4, c5] (3); y = [N / max_nodes]* + [C3, C4, C5, C6] (4).
    * ``"eigenvalues"``: as ``"cycles"``, and y += [n_components (1), first ``k_eig`` non-zero
      Laplacian eigenvalues (k_eig)].
    * ``"all"``: as ``"eigenvalues"``, and x += [lcc indicator (1), eigenvectors of the first
      ``k_eigvec`` non-zero eigenvalues (k_eigvec)]. With the defaults (k_eig=5, k_eigvec=2) the
      widths are DiGress's: kx = 6, ky = 11 (with the node count), ke = 0.
    * ``"rrwp"``: x = diag(P^k), k = 1..rrwp_steps; e = (Ŝ^k)_ij if ``rrwp_edges`` else nothing;
      y = [N / max_nodes]*.

    ``*`` only when ``max_nodes`` is given (N = number of real nodes). Cycle counts are normalised
    ``min(count / cycle_scale, 1)`` when ``normalize_cycles`` (DiGress's 10), raw otherwise; spectral
    values are raw (n_components is a count, eigenvalues lie in (0, n]).

    Precision: cycle counts (``cycle_dtype``) and the eigendecomposition (``eig_dtype``) run in
    float64 by default — the cycle formulas cancel large closed-walk counts (``tr A⁶`` grows like
    n⁶ on dense graphs), which float32 cannot hold exactly beyond n ≈ 15; outputs are cast back to
    the dtype of ``graph.X``.
    """

    KINDS = ("all", "cycles", "eigenvalues", "rrwp", "none")

    def __init__(
        self,
        kind: str = "all",
        k_eig: int = 5,
        k_eigvec: int = 2,
        rrwp_steps: int = 8,
        rrwp_edges: bool = False,
        max_nodes: int | None = None,
        normalize_cycles: bool = True,
        cycle_scale: float = 10.0,
        eig_dtype: torch.dtype = torch.float64,
        zero_tol: float = 1e-6,
        cycle_dtype: torch.dtype = torch.float64,
    ):
        if kind not in self.KINDS:
            raise ValueError(f"ExtraFeatures: kind must be one of {self.KINDS}, got {kind!r}")
        if k_eig < 0 or k_eigvec < 0:
            raise ValueError(f"ExtraFeatures: k_eig and k_eigvec must be >= 0, got {k_eig}, {k_eigvec}")
        if kind == "rrwp" and rrwp_steps < 1:
            raise ValueError(f"ExtraFeatures: rrwp_steps must be >= 1 for kind='rrwp', got {rrwp_steps}")
        if max_nodes is not None and max_nodes < 1:
            raise ValueError(f"ExtraFeatures: max_nodes must be a positive int or None, got {max_nodes}")
        if cycle_scale <= 0:
            raise ValueError(f"ExtraFeatures: cycle_scale must be positive, got {cycle_scale}")
        self.kind = kind
        self.k_eig, self.k_eigvec = int(k_eig), int(k_eigvec)
        self.rrwp_steps, self.rrwp_edges = int(rrwp_steps), bool(rrwp_edges)
        self.max_nodes = max_nodes
        self.normalize_cycles, self.cycle_scale = bool(normalize_cycles), float(cycle_scale)
        self.eig_dtype, self.zero_tol = eig_dtype, float(zero_tol)
        self.cycle_dtype = cycle_dtype

    def __repr__(self) -> str:
        return (f"ExtraFeatures(kind={self.kind!r}, k_eig={self.k_eig}, k_eigvec={self.k_eigvec}, "
                f"rrwp_steps={self.rrwp_steps}, rrwp_edges={self.rrwp_edges}, max_nodes={self.max_nodes})")

    def dims(self) -> tuple[int, int, int]:
        """(kx, ke, ky): the widths :meth:`__call__` returns, without running it."""
        if self.kind == "none":
            return 0, 0, 0
        ky = 1 if self.max_nodes is not None else 0
        if self.kind == "rrwp":
            return self.rrwp_steps, (self.rrwp_steps if self.rrwp_edges else 0), ky
        kx, ky = 3, ky + 4
        if self.kind in ("eigenvalues", "all"):
            ky += 1 + self.k_eig
        if self.kind == "all":
            kx += 1 + self.k_eigvec
        return kx, 0, ky

    def __call__(self, graph: DenseGraph) -> tuple[Tensor, Tensor, Tensor]:
        B, n = graph.node_mask.shape
        dt, dev = graph.X.dtype, graph.X.device
        xs, es, ys = [], [], []
        if self.kind != "none":
            A = noisy_adjacency(graph).to(dt)
            mask = graph.node_mask
            if self.max_nodes is not None:
                ys.append((graph.num_nodes.to(dt) / self.max_nodes).unsqueeze(-1))
            if self.kind == "rrwp":
                node, edge = rrwp_features(A, mask, self.rrwp_steps, self.rrwp_edges)
                xs.append(node)
                if edge is not None:
                    es.append(edge)
            else:
                cx, cy = cycle_counts(A.to(self.cycle_dtype), mask)
                cx, cy = cx.to(dt), cy.to(dt)
                if self.normalize_cycles:
                    cx, cy = normalize_cycle_counts(cx, self.cycle_scale), normalize_cycle_counts(cy, self.cycle_scale)
                xs.append(cx)
                ys.append(cy)
                if self.kind in ("eigenvalues", "all"):
                    spec = laplacian_features(A, mask, self.k_eig, self.k_eigvec if self.kind == "all" else 0,
                                              zero_tol=self.zero_tol, dtype=self.eig_dtype)
                    ys += [spec["n_components"], spec["eigenvalues"]]
                    if self.kind == "all":
                        xs += [spec["lcc"], spec["eigenvectors"]]
        kx, ke, ky = self.dims()
        x = torch.cat(xs, dim=-1) if xs else torch.zeros(B, n, 0, dtype=dt, device=dev)
        e = torch.cat(es, dim=-1) if es else torch.zeros(B, n, n, 0, dtype=dt, device=dev)
        y = torch.cat(ys, dim=-1) if ys else torch.zeros(B, 0, dtype=dt, device=dev)
        assert (x.shape[-1], e.shape[-1], y.shape[-1]) == (kx, ke, ky), "ExtraFeatures.dims() out of sync"
        return x, e, y
