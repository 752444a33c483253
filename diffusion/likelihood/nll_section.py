"""The NLL section of an evaluation: every requested convention × estimator, the floor beside each, the leak test.

This is what ``scripts/evaluate.py checkpoint=...`` reports about likelihoods; it lives here so that other
scripts (the report, notebooks) get the same numbers under the same keys.

Keys (every number names its convention; units: nats per graph)
-----------------------------------------------------------------
With ``<c>`` a convention label (:func:`~sympe.diffusion.likelihood.bound.convention_name`: ``ours_plain``,
``ours_reweighted``, ``digress``, ``ours_plain_mix16_prior``, ``ours_plain_mix_exact``, ``ours_plain_avg4``, ...) and ``<e>`` an estimator
(``mc``, ``stratified``, ``exact``):

* ``nll_<c>_<e>``: mean over the test graphs; ``nll_<c>_<e>_sem`` its standard error;
  ``nll_<c>_<e>_graphs`` the number of graphs; ``nll_<c>_<e>_terms``: ``{term: {"mean", "sem"}}`` for
  ``log_pN``, ``kl_prior``, ``diffusion``, ``reconstruction``; ``nll_<c>_<e>_bins`` (``stratified``,
  ``exact``): ``[{"t_min", "t_max", "mean", "sem"}]``, the nats per graph that each time bin contributes;
  ``nll_<c>_<e>_floor`` / ``_floor_sem``: the exchangeable floor of the same graphs (when given).
* ``leak_test_<c>_<e>``: the node-order leak test (:mod:`~sympe.diffusion.likelihood.leak_test`) as a dict.
* ``nll_conventions``: ``{<c>: one sentence saying which model it bounds}``; ``nll_units``.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.likelihood.leak_test import leak_test
from sympe.diffusion.likelihood.bound import (ESTIMATORS, convention_name, describe_convention, evaluate_nll,
                                        nll_summary, summarize_terms)


#: ``nll_estimator`` values of ``evaluate.py``: one estimator of :data:`ESTIMATORS`, or a group of them.
ESTIMATOR_GROUPS = {"both": ("mc", "exact"), "all": ESTIMATORS, "none": ()}
ESTIMATOR_CHOICES = tuple(ESTIMATORS) + tuple(ESTIMATOR_GROUPS)


def estimator_list(choice: str) -> list[str]:
    """The estimators an ``nll_estimator`` value names (:data:`ESTIMATOR_CHOICES`): ``"both"`` = mc + exact,
    ``"all"`` = every estimator, ``"none"`` = none. Raises ``ValueError`` for another value."""
    if choice in ESTIMATOR_GROUPS:
        return list(ESTIMATOR_GROUPS[choice])
    if choice in ESTIMATORS:
        return [choice]
    raise ValueError(f"nll_estimator={choice!r} is unknown; choose from {ESTIMATOR_CHOICES}")


def parse_convention(label: str) -> dict:
    """Evaluation options of a convention label (the inverse of :func:`~sympe.diffusion.likelihood.bound.convention_name`).

    ``"digress"`` -> ``{digress_compat: True, mixture_draws: 0, num_draws: 1}`` (kernel unchanged: DiGress's
    formula uses the reweighted kernel in L_t whatever it is); ``"ours_<kernel>[_mix<K>_<proposal>|_mix_exact|
    _avg<K>]"`` -> ``{digress_compat: False, x0_kernel, mixture_draws, mixture_proposal, num_draws}``. Raises
    ``ValueError`` naming the label.
    """
    if label == "digress":
        return {"digress_compat": True, "mixture_draws": 0, "num_draws": 1}
    parts = str(label).split("_")
    ok = len(parts) in (2, 3, 4) and parts[0] == "ours" and parts[1] in ("plain", "reweighted")
    opts = {"digress_compat": False, "x0_kernel": parts[1] if ok else None, "mixture_draws": 0, "num_draws": 1,
            "mixture_proposal": "prior"}
    if ok and len(parts) == 4:
        if parts[2] == "mix" and parts[3] == "exact":
            opts.update(mixture_draws=1, mixture_proposal="exact")
        elif (parts[2].startswith("mix") and parts[2][3:].isdigit() and int(parts[2][3:]) >= 1
              and parts[3] in ("prior", "canonical", "defensive")):
            opts.update(mixture_draws=int(parts[2][3:]), mixture_proposal=parts[3])
        else:
            ok = False
    elif ok and len(parts) == 3:
        ok = parts[2].startswith("avg") and parts[2][3:].isdigit() and int(parts[2][3:]) >= 1
        if ok:
            opts["num_draws"] = int(parts[2][3:])
    if not ok:
        raise ValueError(f"NLL convention {label!r} is not one of: digress, ours_plain, ours_reweighted, "
                         "ours_<kernel>_mix<K>_<prior|canonical|defensive> (mixture bound, K draws of g~ from a "
                         "proposal), ours_<kernel>_mix_exact (exact sum over g~), ours_<kernel>_avg<K> (num_draws=K)")
    return opts


def _subset(dataset, k):
    return dataset if k is None or int(k) >= len(dataset) else dataset[: int(k)]


def nll_section(model, test, conventions: Sequence[str] | None = None, estimators: Sequence[str] = ("mc",),
                batch_size: int = 256, exact_graphs: int | None = 100, seed: int = 0, device=None,
                floor_per_graph: torch.Tensor | None = None, leak_permutations: int = 0,
                leak_estimator: str = "exact", leak_graphs: int | None = 100, progress: bool = True,
                log: Callable[[str], None] | None = None) -> dict:
    """Evaluate the NLL of ``model`` on ``test`` under several conventions and estimators (module docstring).

    Args:
        model: a :class:`~sympe.diffusion.runs.model.DiscreteDiffusion` (its evaluation options are restored after).
        test: a sequence of PyG ``Data`` (the test split, or its first graphs).
        conventions: labels (:func:`parse_convention`); ``None`` = the model's current options only.
        estimators: any of ``mc``, ``stratified``, ``exact``; ``stratified`` and ``exact`` run on the first
            ``exact_graphs`` graphs (None = all).
        batch_size, seed, device: NLL batch size, the seed of one generator per (convention, estimator), device.
        floor_per_graph: (len(test),) per-graph exchangeable floor (:func:`sympe.datasets.floor.exchangeable.floor_per_graph`),
            summarised over the same graphs as each NLL.
        leak_permutations: K > 0 runs the leak test with K relabellings per graph, on the first
            ``leak_graphs`` graphs, with ``leak_estimator``, under the first convention.
        progress: tqdm bars over batches; log: where one human-readable line per number goes (default stderr).

    Returns: the dict of keys of the module docstring. Raises ``ValueError`` for an unknown estimator or label.
    """
    from torch_geometric.loader import DataLoader

    log = log or (lambda s: print(s, file=sys.stderr))
    for est in list(estimators) + ([leak_estimator] if leak_permutations else []):
        if est not in ESTIMATORS:
            raise ValueError(f"NLL estimator {est!r} is unknown; choose from {ESTIMATORS}")
    labels = list(conventions) if conventions else [model.nll_convention]
    options = [parse_convention(c) for c in labels]
    saved = {"digress_compat": model.digress_compat, "num_draws": model.num_draws,
             "mixture_draws": model.mixture_draws, "x0_kernel": model.x0_kernel,
             "mixture_proposal": model.mixture_proposal}
    device = device if device is not None else model.device
    out: dict = {"nll_units": "nats per graph", "num_test_graphs": len(test), "nll_conventions": {}}
    spec = getattr(model, "condition", None)  # a conditional model's NLL is -log p(x | y): its keys say so
    prefix = "nll" if spec is None else "nll_given_y"
    if spec is not None:
        out["nll_given"] = list(spec.names)
    model.eval()
    try:
        for label, opts in zip(labels, options):
            model.set_eval_options(**{**saved, **opts})
            assert model.nll_convention == label, (model.nll_convention, label)
            out["nll_conventions"][label] = describe_convention(label)
            for est in estimators:
                ds = test if est == "mc" else _subset(test, exact_graphs)
                gen = torch.Generator(device=device).manual_seed(int(seed))
                terms = evaluate_nll(model, DataLoader(ds, batch_size=int(batch_size)), estimator=est, generator=gen,
                                     device=device, progress=f"NLL {label} {est}" if progress else False)
                s = summarize_terms(terms, T=model.T, num_bins=model.num_bins)
                key = f"{prefix}_{label}_{est}"
                out[key], out[key + "_sem"], out[key + "_graphs"] = s["mean"], s["sem"], s["num_graphs"]
                out[key + "_terms"] = s["terms"]
                if "bins" in s:
                    out[key + "_bins"] = s["bins"]
                line = f"test NLL [{label}, {est}]: {s['mean']:.3f} ± {s['sem']:.3f} nats per graph ({len(ds)} graphs)"
                if floor_per_graph is not None:
                    fm, fs = nll_summary(floor_per_graph[: len(ds)])
                    out[key + "_floor"], out[key + "_floor_sem"] = fm, fs
                    line += f"; exchangeable NLL floor of these graphs {fm:.3f} ± {fs:.3f}"
                log(line)
        if leak_permutations:
            label = labels[0]
            model.set_eval_options(**{**saved, **options[0]})
            ds = _subset(test, leak_graphs)
            gen = torch.Generator(device=device).manual_seed(int(seed))

            def batches():
                for b in DataLoader(ds, batch_size=int(batch_size)):
                    yield DenseGraph.from_pyg(b.to(device))

            res = leak_test(lambda x, g: model.nll(x, estimator=leak_estimator, generator=g)["nll"], batches(),
                            num_permutations=int(leak_permutations), generator=gen,
                            progress=f"leak test {label} {leak_estimator}" if progress else False)
            out[f"leak_test_{label}_{leak_estimator}"] = res.as_dict()
            log(f"[{label}, {leak_estimator}] {res}")
    finally:
        model.set_eval_options(**saved)
    return out
