"""The report as Markdown: overview tables (tasks × variants), then one detailed table per task.

Numbers are shown as ``mean ± s.e.`` over seeds (:func:`format_cell`); NLLs, entropies and floors in nats per
graph, validity and uniqueness in %.
"""
from __future__ import annotations

__all__ = ["format_cell", "markdown"]


def format_cell(cell: dict | None, digits: int = 2, scale: float = 1.0) -> str:
    """``"m ± s"`` of a ``{mean, sem}`` cell, both times ``scale`` with ``digits`` decimals; ``"m"`` without an
    s.e.; ``"–"`` for a missing cell or mean."""
    if not cell or cell.get("mean") is None:
        return "–"
    m = cell["mean"] * scale
    if cell.get("sem") is None:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {cell['sem'] * scale:.{digits}f}"


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(report: dict) -> str:
    """The Markdown text of a report (the dict of :func:`sympe.diffusion.runs.report.build.build_report`):
    what was run, one overview table per NLL bound, then per task its detailed table, plots and samples, and the
    failed runs. Ends with a newline."""
    fmt = format_cell
    est, K = report["keys"]["estimator"], report["keys"]["mixture_draws"]
    P = report["keys"].get("proposal_convention", "ours_plain_mix4_defensive")
    variants = report["variants"]
    lines = [f"# Symmetry-breaking benchmark ({report['preset']} preset)", "",
             f"Command: `{report['command']}`", "",
             f"Seeds {report['seeds']}. Every run trains with `scripts/train_diffusion.py` for a fixed number of "
             "optimizer steps and is evaluated with `scripts/evaluate.py` on its final checkpoint. NLL: test-set "
             f"variational bound in nats per graph, each undirected edge counted once, `{est}` estimator. "
             f"*Per-draw*: one draw of the symmetry breaker per term. *Mixture*: the importance-weighted bound of "
             f"the g̃-mixture model with K = {K} draws per term from the breaker itself. *Proposal*: the same bound "
             f"with draws from a proposal that follows the target (`{P}`); *exact*: the sum over every tie-consistent "
             "order of the breaker (small graphs only). All are upper bounds on the NLL of the model that is sampled. "
             "Cells: mean ± standard error over seeds (one seed: over the test graphs). *H*: exact entropy of the data "
             "distribution (the best possible NLL). *F(T)*: the best bound any deterministic factorised denoiser can "
             "reach (exact posterior marginals at every step; `datasets/floor/factorised.py`). "
             "*Floor*: the exchangeable floor E[−log p(N) + log N! − log |Aut(x)|] of the test set, below which no "
             "permutation-invariant model can go. Rows marked *control* read node indices (not equivariant): "
             "they exist to be flagged by the node-order leak test and are never results.",
             f"Compute: {report['total_cpu_s'] / 60:.1f} CPU-minutes over {report['num_runs']} runs "
             f"({report['runs_done']} done).", "",
             "Overrides of every run: training `" + " ".join(report["common"]["train"]) + "`; evaluation `"
             + " ".join(report["common"]["eval"]) + "`" + ("; appended last (smoke): `"
             + " ".join(report["last"]["train"] + report["last"]["eval"]) + "`" if report.get("last") else ""), "",
             "Variants: " + "; ".join(f"{v.get('title', k)} = `{' '.join(v.get('train', []))}`"
                                      for k, v in variants.items()), "",
             "Evaluation calls (`scripts/evaluate.py` overrides): " + "; ".join(
                 f"{k} = `{' '.join(v)}`" for k, v in report["evals"].items()), ""]
    overview = [("nll", "per-draw bound"), ("nll_mix", f"mixture bound (K = {K}, the breaker's own draws)")]
    for col, title in (("nll_iw", f"mixture bound with a proposal ({P})"),
                       ("nll_exact", "mixture bound, exact sum over the breaker's orders")):
        if any(r[col]["mean"] is not None for t in report["tasks"] for r in t["rows"]):
            overview.append((col, title))
    if any(r["nll_digress"]["mean"] is not None for t in report["tasks"] for r in t["rows"]):
        overview.append(("nll_digress", "DiGress's formula (edges twice, reweighted kernel; to compare with "
                                        "published numbers only)"))
    for col, title in overview:
        head = ["task", "H", "F(T)", "floor"] + [variants[v].get("title", v) for v in variants]
        lines += [f"## Test NLL, {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in report["tasks"]:
            cells = [t["title"], _f(t["entropy"]), fmt({"mean": t.get("factorised"), "sem": t.get("factorised_sem")}),
                     fmt({"mean": t["floor"], "sem": t.get("floor_sem")})]
            for row in t["rows"]:
                mark = " ↓floor" if row["below_floor"].get(col) else ""
                mark += " ↓H" if row.get("below_entropy", {}).get(col) else ""
                cells.append(fmt(row[col]) + mark)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["↓floor: more than two standard errors below the exchangeable floor (expected of a control only). "
              "↓H: more than two standard errors below the data entropy (impossible for a valid bound of an "
              "equivariant model: a defect, or a control that reads node indices).", ""]
    for t in report["tasks"]:
        lines += _task_section(t, K, report.get("plots", []))
    if report.get("failures"):
        lines += ["## Failed runs", ""] + [f"- {f}" for f in report["failures"]] + [""]
    return "\n".join(lines) + "\n"


def _task_section(t: dict, K: int, plots: list[str]) -> list[str]:
    fmt = format_cell
    lines = [f"## {t['title']}", "", "Training overrides: `" + " ".join(t["train_overrides"]) + "`  ",
             f"Evaluation calls: {', '.join(t['evals'])}  ",
             f"Data entropy H: {_f(t['entropy'])}; best factorised bound F(T): "
             f"{fmt({'mean': t.get('factorised'), 'sem': t.get('factorised_sem')})}; exchangeable floor: "
             f"{fmt({'mean': t['floor'], 'sem': t.get('floor_sem')})} nats per graph", ""]
    steps = sorted({s["steps"] for r in t["rows"] for s in r["sampling"]})
    shown = {m: [st for st in steps if any(p["steps"] == st and p[m]["mean"] is not None
                                           for r in t["rows"] for p in r["sampling"])]
             for m in ("validity", "uniqueness", "novelty")}
    has_digress = any(r["nll_digress"]["mean"] is not None for r in t["rows"])
    extra = [c for c in ("nll_iw", "nll_exact") if any(r[c]["mean"] is not None for r in t["rows"])]
    names = {"nll_iw": "NLL proposal", "nll_exact": "NLL exact mixture"}
    head = (["variant", "seeds", "NLL per-draw", "Δ vs none", f"NLL mixture K={K}", "Δ vs none"]
            + [h for c in extra for h in (names[c], "Δ vs none")]
            + (["NLL DiGress formula"] if has_digress else []) + ["leak diff. (flagged)"]
            + [f"validity @{s}" for s in shown["validity"]] + [f"uniqueness @{s}" for s in shown["uniqueness"]]
            + [f"novelty @{s}" for s in shown["novelty"]])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t["rows"]:
        name = f"*{r['title']} (control)*" if r["control"] else r["title"]
        by_steps = {s["steps"]: s for s in r["sampling"]}
        cells = [name, str(len(r["seeds_done"])), fmt(r["nll"]), fmt(r["nll_vs_none"]), fmt(r["nll_mix"]),
                 fmt(r["nll_mix_vs_none"])]
        for c in extra:
            cells += [fmt(r[c]), fmt(r[f"{c}_vs_none"])]
        if has_digress:
            cells.append(fmt(r["nll_digress"]))
        lf = r["leak_flagged"]
        cells.append(fmt(r["leak_diff"]) + (f" ({lf['flagged']}/{lf['of']})" if lf["of"] else ""))
        cells += [fmt(by_steps.get(s, {}).get("validity"), 1, 100) for s in shown["validity"]]
        cells += [fmt(by_steps.get(s, {}).get("uniqueness"), 1, 100) for s in shown["uniqueness"]]
        cells += [fmt(by_steps.get(s, {}).get("novelty"), 1, 100) for s in shown["novelty"]]
        lines.append("| " + " | ".join(cells) + " |")
    pics = [f"![NLL per variant](nll_{t['label']}.png)"]
    if any(r["nll_bins"] for r in t["rows"]):
        pics.append(f"![NLL per t bin](nll_bins_{t['label']}.png)")
    if any(p["validity"]["mean"] is not None for r in t["rows"] for p in r["sampling"]):
        pics.append(f"![validity against sampling steps](validity_{t['label']}.png)")
    samples = [f"[{r['variant']}](samples_{t['label']}_{r['variant']}.png)" for r in t["rows"]
               if f"samples_{t['label']}_{r['variant']}.png" in plots]
    lines += ["", "Validity and uniqueness in %. Leak diff.: NLL in the stored node order minus NLL under random "
              "relabellings (nats per graph; (k/n): seeds where the test flagged a leak).", "", " ".join(pics), ""]
    if samples:
        lines += ["Samples (first seed, all steps): " + " ".join(samples), ""]
    return lines
