r"""Test helpers: exact equivariance and equivariance in distribution under node relabelling.

Permutations follow :mod:`sympe.symbreak.permutation`: relabelling a padded batch by ``perm`` makes new
node ``i`` the old node ``perm[b, i]``. Padded nodes move too (their position in the padded tensor is
arbitrary), so the tests also check that nothing depends on padding being at the end.

Kinds of outputs. A function of ``(X, E, node_mask)`` returns a tensor or a tuple of tensors (``None``
entries are skipped). Each output is of kind

* ``"edge"``: shape (B, n, n, ...) — must satisfy ``f(x')[b, i, j] = f(x)[b, perm[i], perm[j]]``,
* ``"node"``: shape (B, n, ...) — must satisfy ``f(x')[b, i] = f(x)[b, perm[i]]``,
* ``"graph"``: anything else with leading dim B — must be invariant,

inferred in that order from the shape (pass ``kinds`` to override, e.g. for a node output whose
channel count happens to equal n). Only real entries are compared (real nodes / real pairs).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from sympe.symbreak.masks import pair_mask
from sympe.symbreak.permutation import check_permutation, permute_graph, random_permutation, unpermute_nodes

__all__ = [
    "infer_kinds",
    "assert_equivariant",
    "equivariance_in_distribution_pvalue",
    "assert_equivariant_in_distribution",
    "graph_from_edges",
]


def graph_from_edges(
    n: int,
    edges: Sequence[tuple[int, int]],
    pad_to: int | None = None,
    node_classes: Sequence[int] | None = None,
    dx: int = 1,
    de: int = 2,
    edge_class: int = 1,
):
    """One padded graph (batch size 1) as one-hot tensors: X (1, N, dx), E (1, N, N, de), node_mask (1, N).

    ``N = pad_to or n``; real nodes are 0..n-1. Every listed undirected edge gets class ``edge_class``,
    other real off-diagonal pairs class 0; the diagonal and the padding are all-zero.
    """
    N = n if pad_to is None else pad_to
    if N < n:
        raise ValueError(f"pad_to={pad_to} is smaller than n={n}")
    if not 1 <= edge_class < de:
        raise ValueError(f"edge_class must lie in 1..de-1 = 1..{de - 1}, got {edge_class}")
    cls = torch.zeros(n, dtype=torch.long) if node_classes is None else torch.as_tensor(node_classes).long()
    if cls.shape != (n,) or (cls.numel() and (cls.min() < 0 or cls.max() >= dx)):
        raise ValueError(f"node_classes must be n={n} integers in 0..dx-1={dx - 1}")
    X = torch.zeros(1, N, dx)
    X[0, torch.arange(n), cls] = 1.0
    Ec = torch.zeros(N, N, dtype=torch.long)
    for i, j in edges:
        if not (0 <= i < n and 0 <= j < n) or i == j:
            raise ValueError(f"edge ({i}, {j}) must join two distinct nodes of 0..{n - 1}")
        Ec[i, j] = Ec[j, i] = edge_class
    E = torch.nn.functional.one_hot(Ec, de).float()
    real = torch.zeros(N, N, dtype=torch.bool)
    real[:n, :n] = True
    real.fill_diagonal_(False)
    E = (E * real.unsqueeze(-1)).unsqueeze(0)
    node_mask = torch.zeros(1, N, dtype=torch.bool)
    node_mask[0, :n] = True
    return X, E, node_mask


def _as_batch_perm(perm: Tensor, B: int, n: int, device) -> Tensor:
    perm = torch.as_tensor(perm, device=device).long()
    if perm.dim() == 1:
        perm = perm.unsqueeze(0).expand(B, n)
    if perm.shape != (B, n):
        raise ValueError(f"perm must be (n,) = ({n},) or (B, n) = ({B}, {n}), got {tuple(perm.shape)}")
    return check_permutation(perm)


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def infer_kinds(outputs: Sequence, B: int, n: int) -> tuple:
    """Kind of each output ('edge' | 'node' | 'graph' | None for None outputs), module rule."""
    kinds = []
    for o in outputs:
        if o is None:
            kinds.append(None)
        elif not isinstance(o, Tensor) or o.dim() == 0 or o.shape[0] != B:
            raise ValueError(f"every output must be a tensor with leading batch dim {B}, got {type(o)} "
                             f"{getattr(o, 'shape', None)}")
        elif o.dim() >= 3 and o.shape[1] == n and o.shape[2] == n:
            kinds.append("edge")
        elif o.dim() >= 2 and o.shape[1] == n:
            kinds.append("node")
        else:
            kinds.append("graph")
    return tuple(kinds)


def _unpermute(o: Tensor | None, kind: str | None, perm: Tensor) -> Tensor | None:
    """Map an output computed on the relabelled input back to the original labels."""
    if o is None or kind == "graph":
        return o
    return unpermute_nodes(o, perm, 1 if kind == "node" else 2)


def _real_mask(o: Tensor, kind: str, node_mask: Tensor) -> Tensor:
    """Bool mask broadcastable to ``o`` selecting the real entries."""
    if kind == "graph":
        return torch.ones_like(o, dtype=torch.bool)
    if kind == "node":
        m = node_mask
    else:
        m = pair_mask(node_mask)
    return m.view(*m.shape, *([1] * (o.dim() - m.dim()))).expand_as(o)


def assert_equivariant(
    f: Callable,
    X: Tensor,
    E: Tensor,
    node_mask: Tensor,
    perm: Tensor | None = None,
    trials: int = 3,
    kinds: Sequence[str] | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> None:
    """Assert ``f(σ·x) = σ·f(x)`` (node/edge outputs) and ``f(σ·x) = f(x)`` (graph outputs).

    ``f(X, E, node_mask)`` must be deterministic. Uses ``perm`` if given (one trial), else ``trials``
    independent random (B, n) permutations of the padded batch. Compares real entries with
    ``torch.allclose(atol, rtol)``; raises AssertionError naming the output, its kind and the error.
    """
    B, n = node_mask.shape
    ref = _as_tuple(f(X, E, node_mask))
    kinds = infer_kinds(ref, B, n) if kinds is None else tuple(kinds)
    if len(kinds) != len(ref):
        raise ValueError(f"kinds has {len(kinds)} entries but f returned {len(ref)} outputs")
    perms = [perm] if perm is not None else [random_permutation(B, n, generator).to(node_mask.device)
                                             for _ in range(trials)]
    for trial, p in enumerate(perms):
        p = _as_batch_perm(p, B, n, node_mask.device)
        out = _as_tuple(f(*permute_graph(X, E, node_mask, p)))
        if len(out) != len(ref):
            raise AssertionError(f"f returned {len(out)} outputs on the permuted input, {len(ref)} before")
        for k, (o_ref, o, kind) in enumerate(zip(ref, out, kinds)):
            if (o_ref is None) != (o is None):
                raise AssertionError(f"output {k}: None on one input but not on the permuted one")
            if o is None:
                continue
            back = _unpermute(o, kind, p)
            m = _real_mask(o_ref, kind, node_mask)
            a, b = o_ref[m], back[m]
            if not torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol):
                err = (a.double() - b.double()).abs().max().item()
                raise AssertionError(
                    f"output {k} (kind {kind!r}) is not permutation-{'invariant' if kind == 'graph' else 'equivariant'}"
                    f" (trial {trial}): max abs error {err:.3e} > atol={atol}, rtol={rtol}"
                )


def _chi2_homogeneity_pvalue(a: Tensor, b: Tensor, min_expected: float = 5.0) -> tuple[float, dict]:
    """Two-sample chi-square test of equal categorical distributions; categories with a small
    expected count (< ``min_expected``) are pooled into one. Returns (p-value, histograms)."""
    from scipy.stats import chi2

    cats = torch.unique(torch.cat([a, b]))
    ca = torch.stack([(a == c).sum() for c in cats]).double()
    cb = torch.stack([(b == c).sum() for c in cats]).double()
    hist = {int(c): (int(x), int(y)) for c, x, y in zip(cats, ca, cb)}
    na, nb = ca.sum(), cb.sum()
    tot = ca + cb
    exp_min = torch.minimum(tot * na, tot * nb) / (na + nb)
    small = exp_min < min_expected
    if small.any():
        ca = torch.cat([ca[~small], ca[small].sum().view(1)])
        cb = torch.cat([cb[~small], cb[small].sum().view(1)])
        tot = ca + cb
        keep = tot > 0
        ca, cb, tot = ca[keep], cb[keep], tot[keep]
    if ca.numel() < 2:
        return 1.0, hist
    ea, eb = tot * na / (na + nb), tot * nb / (na + nb)
    stat = (((ca - ea) ** 2) / ea).sum() + (((cb - eb) ** 2) / eb).sum()
    return float(chi2.sf(stat.item(), df=ca.numel() - 1)), hist


def _draw_statistics(sampler, X, E, node_mask, statistic, n_samples, chunk, perm, kinds):
    stats = []
    remaining = n_samples
    while remaining > 0:
        c = min(chunk, remaining)
        Xr = X.expand(c, *X.shape[1:])
        Er = E.expand(c, *E.shape[1:])
        mr = node_mask.expand(c, *node_mask.shape[1:])
        if perm is not None:
            p = perm.expand(c, -1)
            out = _as_tuple(sampler(*permute_graph(Xr, Er, mr, p)))
            ks = infer_kinds(out, c, X.shape[1]) if kinds is None else tuple(kinds)
            out = tuple(_unpermute(o, k, p) for o, k in zip(out, ks))
        else:
            out = _as_tuple(sampler(Xr, Er, mr))
        s = statistic(out[0] if len(out) == 1 else out)
        s = torch.as_tensor(s).long().reshape(c, -1).cpu()
        stats.append(s)
        remaining -= c
    return torch.cat(stats, dim=0)


def equivariance_in_distribution_pvalue(
    sampler: Callable,
    x: tuple[Tensor, Tensor, Tensor],
    statistic: Callable,
    n_samples: int = 2000,
    perm: Tensor | None = None,
    kinds: Sequence[str] | None = None,
    chunk: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, dict]:
    """Bonferroni-corrected p-value of "sampler(σ·x) ~ σ·sampler(x)" for one permutation σ.

    ``x = (X, E, node_mask)`` is ONE graph (batch size 1). It is repeated ``n_samples`` times (in
    chunks of ``chunk``) and given to ``sampler``, which must draw independently for every batch
    element; the same is done for the relabelled graph ``σ·x`` and its outputs are mapped back to the
    labels of ``x`` (kinds as in the module docstring). ``statistic(outputs)`` maps the (possibly
    tuple of) outputs of a chunk of size c to a (c, m) integer tensor: m discrete features per draw
    (e.g. the rank of every node). For every feature a two-sample chi-square test of homogeneity
    compares the two samples; the returned p-value is ``min(1, m · min_j p_j)``.

    Returns (p-value, details) where details holds the permutation and per-feature histograms.
    """
    X, E, node_mask = x
    if node_mask.dim() != 2 or node_mask.shape[0] != 1:
        raise ValueError(f"x must be one graph (batch size 1), got node_mask of shape {tuple(node_mask.shape)}")
    if n_samples < 10:
        raise ValueError(f"n_samples must be >= 10 for a chi-square test, got {n_samples}")
    n = node_mask.shape[1]
    if perm is None:
        perm = random_permutation(1, n, generator).to(node_mask.device)
    perm = _as_batch_perm(perm, 1, n, node_mask.device)
    sa = _draw_statistics(sampler, X, E, node_mask, statistic, n_samples, chunk, None, kinds)
    sb = _draw_statistics(sampler, X, E, node_mask, statistic, n_samples, chunk, perm, kinds)
    if sa.shape != sb.shape:
        raise ValueError(f"statistic gave shapes {tuple(sa.shape)} and {tuple(sb.shape)} on the two samples")
    m = sa.shape[1]
    pvals, hists = [], []
    for j in range(m):
        p, h = _chi2_homogeneity_pvalue(sa[:, j], sb[:, j])
        pvals.append(p)
        hists.append(h)
    p_min = min(pvals)
    j_min = pvals.index(p_min)
    return min(1.0, m * p_min), {"perm": perm[0].tolist(), "feature": j_min, "p_values": pvals,
                                 "histogram": hists[j_min]}


def assert_equivariant_in_distribution(
    sampler: Callable,
    x: tuple[Tensor, Tensor, Tensor],
    statistic: Callable,
    n_samples: int = 2000,
    alpha: float = 1e-3,
    perm: Tensor | None = None,
    trials: int = 1,
    kinds: Sequence[str] | None = None,
    chunk: int = 1000,
    generator: torch.Generator | None = None,
) -> None:
    """Assert that the law of ``sampler(σ·x)`` equals ``σ·`` (the law of ``sampler(x)``).

    Statistical test (see :func:`equivariance_in_distribution_pvalue`): per trial (one permutation
    σ, ``perm`` or random), a two-sample chi-square homogeneity test on each discrete feature of
    ``statistic``, Bonferroni-corrected over the m features and over the ``trials``. It raises
    AssertionError when the corrected p-value is below ``alpha``. False-alarm rate: when the sampler
    IS equivariant in distribution the assertion fails with probability at most ``alpha`` (default
    1e-3), up to the chi-square approximation (categories with expected count < 5 are pooled).
    Power: a sampler that is not equivariant is detected only if the statistic's law changes under
    the tested σ, and with enough samples.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    for trial in range(trials):
        p, details = equivariance_in_distribution_pvalue(
            sampler, x, statistic, n_samples, perm, kinds, chunk, generator
        )
        if p * trials < alpha:
            raise AssertionError(
                f"not equivariant in distribution (trial {trial}): corrected p-value {p * trials:.3e} < "
                f"alpha={alpha} for permutation {details['perm']}; feature {details['feature']} "
                f"histogram {{category: (count on x, count on σ·x mapped back)}} = {details['histogram']}"
            )
