"""`DenoisingNetwork`: the function p̂(x0 | z_t) that the diffusion process calls.

    (z_t: DenseGraph, t_int (B,), generator=None) -> (logits_X (B, n, dx), logits_E (B, n, n, de))

It assembles the inputs of the :class:`~sympe.diffusion.nn.transformer.GraphTransformer`:

* node channels  = [z_t.X, structural node features, molecular node features, symmetry-breaking node channels]
* edge channels  = [z_t.E, structural edge features, symmetry-breaking edge channels]
* graph channels = [z_t.y, t / T, structural graph features, molecular graph features]

``z_t.y`` (B, condition_dim) is the encoded graph-level condition of a conditional model
(:class:`~sympe.diffusion.conditioning.ConditionSpec`; all zeros = the null condition), width 0 otherwise.

The structural features (:mod:`~sympe.diffusion.nn.features`) are functions of the noisy graph and so are
recomputed at every call (once per call, shared by all layers). The symmetry breaker
(:mod:`sympe.symbreak`) draws a fresh random group element g̃ (or fresh noise) at every call: every
training step, sampling step and NLL evaluation, from the ``generator`` handed to ``forward`` (the
caller's, so that sampling and the NLL are reproducible from one seed; ``None`` = the global random
state). Its node encodings enter only as extra channels: the
transformer itself is unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from sympe.diffusion.nn.features import ExtraFeatures
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.nn.molecular_features import MolecularFeatures
from sympe.diffusion.nn.transformer import GraphTransformer
from sympe.symbreak import NoiseInjection, SymPE, make_symmetry_breaker


class DenoisingNetwork(nn.Module):
    """Features + symmetry breaker + graph transformer.

    Args:
        info: the dataset statistics (class counts, max nodes, molecular constants).
        T: number of diffusion steps (the time input is t / T in [0, 1]).
        n_layers, hidden_mlp_dims, hidden_dims, dropout: transformer settings (DiGress's names).
        features: structural feature kind (``"all"``, ``"cycles"``, ``"eigenvalues"``, ``"rrwp"``, ``"none"``).
        feature_kwargs: extra keyword arguments of :class:`ExtraFeatures`.
        molecular_features: add valency / molecular weight (only used when ``info.is_molecular``).
        symbreak: ``"none"``, ``"noise"``, ``"sympe_nodes"`` or ``"sympe"``.
        symbreak_kwargs: keyword arguments of the breaker (encoding width, tie mode, ...).
        recompute_attention: trade one GEMM per layer in backward for less training memory
            (:class:`~sympe.diffusion.nn.transformer.GraphTransformer`); values and gradients are unchanged.
        condition_dim: width of the encoded condition ``z_t.y`` (:attr:`ConditionSpec.width`); 0 = unconditional.
    """

    def __init__(self, info: DatasetInfo, T: int, *, n_layers: int, hidden_mlp_dims: dict, hidden_dims: dict,
                 dropout: float, features: str, molecular_features: bool, symbreak: str, recompute_attention: bool,
                 feature_kwargs: dict | None = None, symbreak_kwargs: dict | None = None, condition_dim: int = 0):
        super().__init__()
        self.T = T
        self.condition_dim = int(condition_dim)
        self.dx, self.de = info.num_node_classes, info.num_edge_classes
        self.max_nodes = info.max_nodes
        fkw = {"max_nodes": info.max_nodes, **dict(feature_kwargs or {})}
        self.features = ExtraFeatures(features, **fkw)
        fx, fe, fy = self.features.dims()
        self.molecular = None
        mx = my = 0
        if molecular_features and info.is_molecular:
            self.molecular = MolecularFeatures(info.bond_orders, info.atom_weights, info.max_weight)
            mx, my = 1, 1
        self.breaker = make_symmetry_breaker(symbreak, max_nodes=info.max_nodes, node_in=self.dx, edge_in=self.de,
                                             **dict(symbreak_kwargs or {}))
        bx, be = self.breaker.node_dim, self.breaker.edge_dim
        input_dims = {"X": self.dx + fx + mx + bx, "E": self.de + fe + be, "y": self.condition_dim + 1 + fy + my}
        hidden_mlp_dims, hidden_dims = dict(hidden_mlp_dims), dict(hidden_dims)
        self.transformer = GraphTransformer(
            n_layers=n_layers, input_dims=input_dims, hidden_mlp_dims=hidden_mlp_dims, hidden_dims=hidden_dims,
            output_dims={"X": self.dx, "E": self.de, "y": 0}, dropout=dropout,
            recompute_attention=recompute_attention,
        )

    @property
    def breaker_draw(self) -> str:
        """What the symmetry breaker draws: ``"ranks"`` (SymPE: given ranks, tie groups and ``log p(g̃ | z_t)`` are
        available), ``"noise"`` (i.i.d. channels, or a straight-through SymPE: prior draws only) or ``"none"`` (a
        deterministic network: none, index, SymPE with deterministic tie-breaking)."""
        if isinstance(self.breaker, SymPE):
            canon = self.breaker.canonicalizer
            if canon.tie_mode == "deterministic":  # one order per graph: no mixture, like no breaker
                return "none"
            if canon.straight_through:  # its encodings follow the relaxed order, not given ranks
                return "noise"
            return "ranks"
        return "noise" if isinstance(self.breaker, NoiseInjection) else "none"

    @property
    def rank_distribution(self) -> str | None:
        """How the breaker's ranks are drawn given the tie groups: ``"uniform_ties"`` (uniform inside every group),
        ``"plackett_luce"`` (every order has mass), or None without a rank breaker."""
        return self.breaker.canonicalizer.tie_mode if self.breaker_draw == "ranks" else None

    def _breaker_time(self, z_t: DenseGraph, t_int: torch.Tensor) -> torch.Tensor:
        return (t_int.float() / self.T).view(z_t.batch_size, 1)

    def _need_ranks(self, what: str) -> None:
        if self.breaker_draw != "ranks":
            raise ValueError(f"{what} needs a rank-based symmetry breaker (model.symbreak=sympe or sympe_nodes); this "
                             f"network's breaker is {type(self.breaker).__name__}")

    def tie_groups(self, z_t: DenseGraph, t_int: torch.Tensor) -> torch.Tensor:
        """(B, n) tie groups of the breaker's canonicalizer on ``z_t`` (:meth:`sympe.symbreak.SymPE.tie_groups`)."""
        self._need_ranks("tie groups")
        return self.breaker.tie_groups(z_t.X, z_t.E, z_t.node_mask, self._breaker_time(z_t, t_int))

    def rank_log_prob(self, z_t: DenseGraph, t_int: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
        """``log p(g̃ | z_t)`` (B,) float64 of given ranks under the breaker (:meth:`sympe.symbreak.SymPE.rank_log_prob`)."""
        self._need_ranks("log p(ranks | z_t)")
        return self.breaker.rank_log_prob(z_t.X, z_t.E, z_t.node_mask, self._breaker_time(z_t, t_int), ranks)

    def sample_ranks(self, z_t: DenseGraph, t_int: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, n) ranks drawn as a call of the network draws them."""
        self._need_ranks("drawing ranks")
        return self.breaker.sample_ranks(z_t.X, z_t.E, z_t.node_mask, self._breaker_time(z_t, t_int), generator)

    def forward(self, z_t: DenseGraph, t_int: torch.Tensor, generator: torch.Generator | None = None,
                ranks: torch.Tensor | None = None):
        """Logits of the clean graph; ``ranks`` (B, n) long, given, replace the breaker's draw (SymPE only)."""
        B, n = z_t.node_mask.shape
        if n > self.max_nodes:
            raise ValueError(f"graphs with {n} nodes exceed the {self.max_nodes} nodes this network was built for")
        if (generator is not None and (self.breaker.node_dim or self.breaker.edge_dim)
                and generator.device.type != z_t.X.device.type):
            raise ValueError(f"the symmetry breaker draws on {z_t.X.device} but was given a generator on "
                             f"{generator.device}; create it with torch.Generator(device={str(z_t.X.device)!r})")
        if z_t.y.shape != (B, self.condition_dim):
            raise ValueError(f"the graph channels y have shape {tuple(z_t.y.shape)}, expected ({B}, {self.condition_dim})"
                             + (": this network is conditional; give the encoded condition (ConditionSpec.encode)"
                                if self.condition_dim else ": this network is unconditional"))
        t = (t_int.float() / self.T).view(B, 1)
        fx, fe, fy = self.features(z_t)
        xs, es, ys = [z_t.X, fx], [z_t.E, fe], [z_t.y, t, fy]
        if self.molecular is not None:
            mx, my = self.molecular(z_t)
            xs.append(mx)
            ys.append(my)
        if ranks is not None:
            self._need_ranks("given ranks")
            bx, be = self.breaker(z_t.X, z_t.E, z_t.node_mask, t, generator=generator, ranks=ranks)
        else:
            bx, be = self.breaker(z_t.X, z_t.E, z_t.node_mask, t, generator=generator)
        xs.append(bx)
        if be is not None:
            es.append(be)
        X = torch.cat(xs, dim=-1)
        E = torch.cat(es, dim=-1)
        y = torch.cat(ys, dim=-1)
        out = self.transformer(X, E, y, z_t.node_mask)
        return out[0], out[1]
