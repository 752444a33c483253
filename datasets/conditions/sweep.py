"""A guidance-weight sweep: how close samples come to their targets, and what validity it costs, as w grows.

For one or more properties, ``num`` targets are drawn from the test split's own values
(:func:`~sympe.datasets.conditions.targets.draw_split_targets`), so that the targets are ones real molecules have.
The conditional model samples one graph per target at each guidance weight w; each *unconditional* sampler (the same
network given the null condition, and any separately trained unconditional model) samples ``num`` graphs that are
scored against the same targets: their MAE is what knowing nothing of the target gives. Each row holds validity,
uniqueness and per property the MAE, the fraction within tolerance and the target/achieved correlation
(:func:`~sympe.datasets.conditions.scoring.condition_metrics`).

The samplers are callables, so that this module knows no model: ``sample(rows, w) -> (rows_in_sample_order, smiles,
graphs)`` for the conditional model, ``sample(num) -> (smiles, graphs)`` for an unconditional one.
"""
from __future__ import annotations

import time
from typing import Callable

from sympe.datasets.conditions.scoring import achieved_values, condition_metrics


def sweep(conditional: Callable, unconditional: dict[str, Callable], targets: list[dict], weights, props: dict,
          tolerances: dict, log: Callable[[str], None] = print) -> dict:
    """Rows ``{"sampler", "guidance", "seconds", **metrics}``: one per unconditional sampler, then one per w."""
    rows = []

    def record(label, w, rows_out, smiles, graphs, seconds):
        achieved = achieved_values(props, smiles, graphs)
        valid = [s is not None for s in smiles] if smiles is not None else [True] * len(rows_out)
        m = condition_metrics(rows_out, achieved, props, tolerances, valid, smiles=smiles, graphs=graphs)
        rows.append({"sampler": label, "guidance": w, "seconds": round(seconds, 1), **m})
        maes = ", ".join(f"{k} MAE {v['mae']:.3f}" if v.get("mae") is not None else f"{k} within "
                         f"{v['within_tolerance']}" for k, v in m["properties"].items())
        log(f"[sympe] {label}{'' if w is None else f' w={w:g}'}: validity {m['validity']:.3f}, {maes} ({seconds:.0f} s)")

    for label, fn in unconditional.items():
        t0 = time.perf_counter()
        smiles, graphs = fn(len(targets))
        record(label, None, targets, smiles, graphs, time.perf_counter() - t0)
    for w in weights:
        t0 = time.perf_counter()
        rows_out, smiles, graphs = conditional(targets, float(w))
        record("conditional", float(w), rows_out, smiles, graphs, time.perf_counter() - t0)
    return {"rows": rows}


def sweep_table(result: dict, names) -> str:
    """A Markdown table of :func:`sweep`'s rows."""
    head = "| sampler | w | validity | uniqueness | " + " | ".join(
        f"{n} MAE | {n} within tol. | {n} corr." for n in names) + " |"
    sep = "|" + "---|" * (4 + 3 * len(list(names)))
    lines = [head, sep]

    def f(v, fmt=".3f"):
        return "–" if v is None else format(v, fmt)

    for r in result["rows"]:
        cells = [r["sampler"], "–" if r["guidance"] is None else f"{r['guidance']:g}", f(r["validity"]),
                 f(r["uniqueness"])]
        for n in names:
            p = r["properties"][n]
            cells += [f(p.get("mae")), f(p.get("within_tolerance")), f(p.get("correlation"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_plot(path, result: dict, names) -> None:
    """MAE against validity, one panel per property: a point per guidance weight (labelled w), and one marker per
    unconditional sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(names)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, n in zip(axes[0], names):
        cond = [r for r in result["rows"] if r["guidance"] is not None and r["properties"][n].get("mae") is not None]
        ax.plot([r["validity"] for r in cond], [r["properties"][n]["mae"] for r in cond], "o-", label="conditional")
        for r in cond:
            ax.annotate(f"w={r['guidance']:g}", (r["validity"], r["properties"][n]["mae"]), fontsize=8,
                        textcoords="offset points", xytext=(4, 4))
        for r in result["rows"]:
            if r["guidance"] is None and r["properties"][n].get("mae") is not None:
                ax.plot([r["validity"]], [r["properties"][n]["mae"]], "s", label=r["sampler"])
        ax.set_xlabel("validity")
        ax.set_ylabel(f"MAE of {n}")
        ax.set_title(f"{n}: achieved vs requested")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
