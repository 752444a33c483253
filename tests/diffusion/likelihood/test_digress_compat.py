"""`digress_compat` against an independent re-computation of DiGress's NLL formula.

The reference below is written from the formulas (DiGress, Vignac et al. 2023; the likelihood issue), with
numpy and explicit loops over graphs, nodes and ordered pairs, from a fixed prediction tensor and the
noisy graphs the library drew (recorded by a spy denoiser), and matrices built from the schedule's ᾱ and
the transition's limit as ``Q(a) = a I + (1 - a) 1 mᵀ``. It shares no code with the library path.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sympe.diffusion.likelihood import digress_compat as dg
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.likelihood.bound import nll_terms
from sympe.diffusion.process.discrete_process import DiscreteProcess
from sympe.diffusion.process.schedule import CosineSchedule
from sympe.diffusion.process.transition import MarginalTransition

DT = torch.float64
EPS = 1e-7
DX, DE, N_PAD, T = 3, 3, 5, 6


def _setup(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    node_m = torch.softmax(torch.randn(DX, generator=g, dtype=DT), 0)
    edge_m = torch.softmax(torch.randn(DE, generator=g, dtype=DT), 0)
    process = DiscreteProcess(CosineSchedule(T).double(), MarginalTransition(node_m, edge_m).double())
    sizes = [3, 5, 4]
    B = len(sizes)
    Xi = torch.randint(0, DX, (B, N_PAD), generator=g)
    Ei = torch.triu(torch.randint(0, DE, (B, N_PAD, N_PAD), generator=g), 1)
    Ei = Ei + Ei.transpose(1, 2)
    mask = torch.arange(N_PAD).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)
    x = DenseGraph.from_indices(Xi, Ei, mask, DX, DE)
    x = DenseGraph(x.X.to(DT), x.E.to(DT), x.y.to(DT), x.node_mask)
    # a fixed prediction: random logits, edge logits symmetric (as the transformer's)
    lX = 2.0 * torch.randn(B, N_PAD, DX, generator=g, dtype=DT)
    lE = 2.0 * torch.randn(B, N_PAD, N_PAD, DE, generator=g, dtype=DT)
    lE = 0.5 * (lE + lE.transpose(1, 2))
    n_nodes_dist = torch.tensor([0.0, 0.1, 0.1, 0.3, 0.3, 0.2], dtype=DT)
    return process, x, lX, lE, n_nodes_dist


class Spy:
    """A denoiser that always returns the same logits and records every noisy graph and time it is given."""

    def __init__(self, lX, lE):
        self.lX, self.lE, self.calls = lX, lE, []

    def __call__(self, z, t, generator=None):
        self.calls.append((z.clone(), t.clone()))
        return self.lX.clone(), self.lE.clone()


# ------------------------------------------------------------------------------------------ reference
def Qfam(a: float, m: np.ndarray) -> np.ndarray:
    return a * np.eye(len(m)) + (1 - a) * np.ones((len(m), 1)) * m[None, :]


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def kl(p, q):
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q) if pi > 0)


def smooth(p):
    p = np.asarray(p, dtype=np.float64) + EPS
    return p / p.sum()


def onehot0(d):
    r = np.zeros(d)
    r[0] = 1.0
    return r


class Reference:
    def __init__(self, process, x, lX, lE, n_nodes_dist):
        self.ab = process.schedule.alpha_bars.double().numpy()
        mX, mE = process.limit()
        self.mX = (mX.double() / mX.double().sum()).numpy()
        self.mE = (mE.double() / mE.double().sum()).numpy()
        Xi, Ei = x.collapse(fill=-1)
        self.Xi, self.Ei = Xi.numpy(), Ei.numpy()
        self.mask = x.node_mask.numpy()
        self.pX = np.stack([[softmax(lX[b, i].numpy()) for i in range(N_PAD)] for b in range(len(self.mask))])
        pE = np.zeros((len(self.mask), N_PAD, N_PAD, DE))
        for b in range(len(self.mask)):
            for i in range(N_PAD):
                for j in range(N_PAD):
                    pE[b, i, j] = softmax(lE[b, i, j].numpy())
        self.pE = pE
        self.pN = n_nodes_dist.numpy()

    def rows(self, b):
        """(kind, i, j, real) for every node row and every ordered pair row of graph b's padded tensors."""
        for i in range(N_PAD):
            yield "X", i, None, bool(self.mask[b, i])
        for i in range(N_PAD):
            for j in range(N_PAD):
                yield "E", i, j, bool(self.mask[b, i] and self.mask[b, j] and i != j)

    def prior(self, b):
        total = 0.0
        for kind, i, j, real in self.rows(b):
            m, d = (self.mX, DX) if kind == "X" else (self.mE, DE)
            if real:
                x0 = self.Xi[b, i] if kind == "X" else self.Ei[b, i, j]
                q = Qfam(self.ab[T], m)[x0]
                total += kl(smooth(m), smooth(q))  # KL(limit ‖ q), both smoothed
            else:
                total += kl(smooth(onehot0(d)), smooth(onehot0(d)))  # = 0
        return total

    def Lt(self, b, z, t):
        """DiGress's KL(q(z_s|z_t,x) ‖ p^rw(z_s|z_t)) over every padded row of graph b (without T)."""
        Zi, Zei = z
        s = t - 1
        total = 0.0
        for kind, i, j, real in self.rows(b):
            m, d = (self.mX, DX) if kind == "X" else (self.mE, DE)
            if not real:
                # true: the class-0 row, unsmoothed; pred: the class-0 row, smoothed
                total += kl(onehot0(d), smooth(onehot0(d)))
                continue
            Qts, Qs, Qt = Qfam(self.ab[t] / self.ab[s], m), Qfam(self.ab[s], m), Qfam(self.ab[t], m)
            x0 = self.Xi[b, i] if kind == "X" else self.Ei[b, i, j]
            zt = Zi[b, i] if kind == "X" else Zei[b, i, j]
            phat = self.pX[b, i] if kind == "X" else 0.5 * (self.pE[b, i, j] + self.pE[b, j, i])
            true = np.array([Qts[a, zt] * Qs[x0, a] / Qt[x0, zt] for a in range(d)])
            # p̂ put in the one-hot posterior formula: Q_ts[a, z_t] (p̂ Q̄_s)[a] / (p̂ Q̄_t)[z_t]
            num = np.array([Qts[a, zt] * sum(phat[k] * Qs[k, a] for k in range(d)) for a in range(d)])
            den = sum(phat[k] * Qt[k, zt] for k in range(d))
            pred = smooth(num / den)
            total += kl(true, pred)
        return total

    def reconstruction(self, b):
        total = 0.0
        for kind, i, j, real in self.rows(b):
            if not real:
                continue
            if kind == "X":
                total -= math.log(self.pX[b, i][self.Xi[b, i]])
            else:
                total -= math.log(0.5 * (self.pE[b, i, j] + self.pE[b, j, i])[self.Ei[b, i, j]])
        return total

    def log_pN(self, b):
        return math.log(self.pN[int(self.mask[b].sum())])


def _indices(z: DenseGraph):
    Xi, Ei = z.collapse(fill=-1)
    return Xi.numpy(), Ei.numpy()


# ------------------------------------------------------------------------------------------ tests
def test_digress_mc_nll_equals_the_formula_recomputed_by_hand():
    process, x, lX, lE, pN = _setup(0)
    ref = Reference(process, x, lX, lE, pN)
    spy = Spy(lX, lE)
    out = nll_terms(spy, x, process, pN, estimator="mc", digress_compat=True, generator=torch.Generator().manual_seed(3))
    (z_t, t), (z_0, t0) = spy.calls  # one call for L_t, one for L_0
    assert (t0 == 0).all() and (t >= 1).all() and (t <= T).all()
    for b in range(x.batch_size):
        tb = int(t[b])
        lt = T * ref.Lt(b, _indices(z_t), tb)
        assert float(out["diffusion"][b]) == pytest.approx(lt, rel=1e-9, abs=1e-12)
        assert float(out["kl_prior"][b]) == pytest.approx(ref.prior(b), rel=1e-9, abs=1e-12)
        assert float(out["reconstruction"][b]) == pytest.approx(ref.reconstruction(b), rel=1e-9)
        total = -ref.log_pN(b) + ref.prior(b) + lt + ref.reconstruction(b)
        assert float(out["nll"][b]) == pytest.approx(total, rel=1e-9)


def test_digress_exact_sums_every_time_of_the_formula():
    process, x, lX, lE, pN = _setup(1)
    ref = Reference(process, x, lX, lE, pN)
    spy = Spy(lX, lE)
    out = nll_terms(spy, x, process, pN, estimator="exact", digress_compat=True, generator=torch.Generator().manual_seed(4))
    calls = spy.calls[:-1]  # the last one is the decoder's
    assert [int(t[0]) for _, t in calls] == list(range(1, T + 1))
    for b in range(x.batch_size):
        total = sum(ref.Lt(b, _indices(z), int(t[b])) for z, t in calls)
        assert float(out["diffusion"][b]) == pytest.approx(total, rel=1e-9)
        assert float(out["diffusion_bins"][b].sum()) == pytest.approx(total, rel=1e-9)


def test_masked_rows_follow_digress_padding_rule():
    """The same graph padded further adds exactly T · (#masked rows) · KL(e0 ‖ smooth(e0)) to DiGress's L_t."""
    process, x, lX, lE, pN = _setup(2)
    b = 0  # 3 real nodes padded to 5
    z = process.q_sample(x, torch.full((x.batch_size,), 3), generator=torch.Generator().manual_seed(0))
    pX, pE = torch.softmax(lX, -1), torch.softmax(lE, -1)
    base = dg.diffusion_kl(x, z, pX, pE, process, torch.full((x.batch_size,), 3))[b]
    per_row_X = -math.log((1 + EPS) / (1 + DX * EPS))
    per_row_E = -math.log((1 + EPS) / (1 + DE * EPS))
    # strip one padding node: 1 node row and 2·5 - 1 = 9 pair rows fewer
    xs = DenseGraph(x.X[:, :4], x.E[:, :4, :4], x.y, x.node_mask[:, :4])
    zs = DenseGraph(z.X[:, :4], z.E[:, :4, :4], z.y, z.node_mask[:, :4])
    small = dg.diffusion_kl(xs, zs, pX[:, :4], pE[:, :4, :4], process, torch.full((x.batch_size,), 3))[b]
    assert float(base - small) == pytest.approx(per_row_X + 9 * per_row_E, rel=1e-6)
    assert per_row_E > 0


def test_compat_differs_from_ours_beyond_doubling():
    """The reweighted kernel is another model: DiGress's L_t is neither ours nor ours with edges doubled."""
    process, x, lX, lE, pN = _setup(3)
    lX = torch.zeros_like(lX)  # uniform node predictions do not matter for the point
    ours = nll_terms(Spy(lX, lE), x, process, pN, estimator="exact", generator=torch.Generator().manual_seed(0))
    comp = nll_terms(Spy(lX, lE), x, process, pN, estimator="exact", digress_compat=True,
                     generator=torch.Generator().manual_seed(0))
    for factor in (1.0, 2.0):
        assert not torch.allclose(comp["diffusion"], factor * ours["diffusion"], rtol=0.05)
    # the prior term: other direction and both edge directions (tiny at T = 6 with a cosine schedule)
    assert not torch.allclose(comp["kl_prior"], ours["kl_prior"], rtol=1e-3, atol=0)
