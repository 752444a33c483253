"""The report's PNG plots: one drawing function (:func:`plot_panels`) fed by one panel builder per plot.

Per task: the test NLL per variant with error bars and the seeds as dots (``nll_<task>.png``), the NLL per t bin
and its difference to ``none`` (``nll_bins_<task>.png``), validity against sampling steps
(``validity_<task>.png``) and the validation NLL curves (``val_nll_<task>.png``); NLLs in nats per graph.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sympe.diffusion.files import atomic_path
from sympe.diffusion.runs.report.layout import eval_dir, run_dir_of

__all__ = ["Series", "Panel", "plot_panels", "time_bin_centres", "nll_panel", "bins_panels", "validity_panel",
           "val_curve_panel", "report_plots"]

CONTROL_COLOR, COLOR = "#c33", "#26a"


@dataclass
class Series:
    """One drawn series: ``Axes.<kind>(x, y, **style)`` with ``kind`` "errorbar", "scatter" or "plot"."""

    kind: str
    x: list
    y: list
    style: dict = field(default_factory=dict)


@dataclass
class Panel:
    """One axes: its series (drawn in order), then horizontal lines ``(y, style)``, x ticks ``(positions, labels,
    style)``, axis scales and labels, the title and a legend of font size ``legend_size`` (None: no legend)."""

    series: list[Series]
    title: str = ""
    title_size: float = 9
    xlabel: str | None = None
    ylabel: str | None = None
    ylabel_size: float | None = None
    xscale: str | None = None
    yscale: str | None = None
    hlines: list[tuple[float, dict]] = field(default_factory=list)
    xticks: tuple[list, list, dict] | None = None
    legend_size: float | None = None


def plot_panels(path: Path, panels: list[Panel], figsize: tuple[float, float], dpi: int = 90) -> Path:
    """Draw ``panels`` side by side in one figure of ``figsize`` inches and write it to ``path`` as a PNG of
    ``dpi`` dots per inch (atomically: :func:`sympe.diffusion.files.atomic_path`); returns ``path``.

    Raises ``ValueError`` for an empty ``panels`` or a series kind other than errorbar / scatter / plot.
    """
    if not panels:
        raise ValueError("plot_panels needs at least one panel")
    for p in panels:
        for s in p.series:
            if s.kind not in ("errorbar", "scatter", "plot"):
                raise ValueError(f"series kind {s.kind!r} is not drawn; use errorbar, scatter or plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=figsize)
    for ax, p in zip([axes] if len(panels) == 1 else list(axes), panels):
        for s in p.series:
            getattr(ax, s.kind)(s.x, s.y, **s.style)
        for y, style in p.hlines:
            ax.axhline(y, **style)
        if p.xticks is not None:
            ax.set_xticks(p.xticks[0], p.xticks[1], **p.xticks[2])
        if p.xscale:
            ax.set_xscale(p.xscale)
        if p.yscale:
            ax.set_yscale(p.yscale)
        if p.xlabel is not None:
            ax.set_xlabel(p.xlabel)
        if p.ylabel is not None:
            ax.set_ylabel(p.ylabel)
        if p.ylabel_size is not None:
            ax.yaxis.label.set_size(p.ylabel_size)
        ax.set_title(p.title, fontsize=p.title_size)
        if p.legend_size is not None:
            ax.legend(fontsize=p.legend_size)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path, keep_suffix=True) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def time_bin_centres(T: int, num_bins: int) -> list[float]:
    """Centres of the contiguous bins ``[1 + floor(T b / B), floor(T (b+1) / B)]`` of ``1..T`` (B = num_bins)."""
    edges = [1 + (T * b) // num_bins for b in range(num_bins + 1)]
    return [(edges[b] + edges[b + 1] - 1) / 2 for b in range(num_bins)]


def _ls(row: dict) -> str:
    return "--" if row["control"] else "-"


def nll_panel(task: dict, K: int) -> Panel:
    """Test NLL per variant of a task entry of the report: per-draw and mixture bound (mean ± s.e. over seeds;
    controls in red), the seeds as dots, and the exchangeable floor and data entropy as lines."""
    rows, series = task["rows"], []
    for off, col, label, marker in ((-0.15, "nll", "per-draw bound", "o"), (0.15, "nll_mix", f"mixture bound K={K}", "s")):
        for i, r in enumerate(rows):
            color = CONTROL_COLOR if r["control"] else COLOR
            if r[col]["mean"] is not None:
                series.append(Series("errorbar", [i + off], [r[col]["mean"]], dict(
                    yerr=[r[col]["sem"] or 0.0], marker=marker, ms=6, capsize=4, color=color,
                    mfc="white" if marker == "s" else color, label=label if i == 0 else None)))
            pts = [rr[col] for rr in r["runs"] if rr[col] is not None]
            series.append(Series("scatter", [i + off + 0.05] * len(pts), pts,
                                 dict(color="k", s=6, zorder=3, alpha=0.6)))
    hlines = []
    if task["floor"] is not None:
        hlines.append((task["floor"], dict(color="r", ls="--", lw=1, label="exchangeable floor")))
    if task["entropy"] is not None:
        hlines.append((task["entropy"], dict(color="g", ls=":", lw=1.2, label="data entropy")))
    ticks = (np.arange(len(rows)), [r["title"] + (" (control)" if r["control"] else "") for r in rows],
             dict(rotation=20, fontsize=7, ha="right"))
    return Panel(series, title=task["title"], ylabel="test NLL (nats / graph), mean ± s.e. over seeds; dots: seeds",
                 ylabel_size=7, hlines=hlines, xticks=ticks, legend_size=7)


def bins_panels(task: dict) -> list[Panel] | None:
    """NLL per t bin of every variant (mean ± s.e. over seeds; log scale when all are positive) and, beside it,
    each variant's per-bin difference to ``none`` with s.e. ``hypot(se, se_none)``; None without bins."""
    rows = task["rows"]
    if not any(r["nll_bins"] for r in rows):
        return None
    left, right = [], []
    base = next((r["nll_bins"] for r in rows if r["variant"] == "none" and r["nll_bins"]), None)
    for r in rows:
        if not r["nll_bins"]:
            continue
        mean = np.asarray(r["nll_bins"]["mean"])
        sem = np.asarray(r["nll_bins"]["sem"]) if r["nll_bins"]["sem"] else np.zeros_like(mean)
        T = task.get("T")
        xs = (r["nll_bins"]["centres"] or (time_bin_centres(int(T), len(mean)) if T and T >= len(mean)
                                           else list(range(1, len(mean) + 1))))
        left.append(Series("errorbar", xs, mean, dict(yerr=sem, marker="o", ms=3, capsize=2, label=r["title"],
                                                      ls=_ls(r))))
        if base is not None and len(base["mean"]) == len(mean):
            bsem = np.asarray(base["sem"]) if base["sem"] else np.zeros_like(mean)
            right.append(Series("errorbar", xs, mean - np.asarray(base["mean"]), dict(
                yerr=np.hypot(sem, bsem), marker="o", ms=3, capsize=2, label=r["title"], ls=_ls(r))))
    positive = all(m > 0 for r in rows if r["nll_bins"] for m in r["nll_bins"]["mean"])
    return [Panel(left, title=task["title"], xlabel="diffusion time t (bin centre)",
                  ylabel="NLL of the bin (nats / graph)", yscale="log" if positive else None, legend_size=6),
            Panel(right, title="per-bin NLL minus that of none (mean ± s.e. over seeds)", title_size=8,
                  xlabel="diffusion time t (bin centre)", ylabel="difference to none (nats / graph)",
                  hlines=[(0.0, dict(color="k", lw=0.8))])]


def validity_panel(task: dict) -> Panel | None:
    """Validity in % against the number of sampling steps (log scale), mean ± s.e. over seeds, per variant;
    None when no run reports validity."""
    series = []
    for r in task["rows"]:
        pts = [p for p in r["sampling"] if p["validity"]["mean"] is not None]
        if pts:
            series.append(Series("errorbar", [p["steps"] for p in pts], [100 * p["validity"]["mean"] for p in pts],
                                 dict(yerr=[100 * (p["validity"]["sem"] or 0) for p in pts], marker="o", ms=3,
                                      capsize=2, label=r["title"], ls=_ls(r))))
    if not series:
        return None
    return Panel(series, title=task["title"], xscale="log", xlabel="sampling steps", ylabel="validity (%)",
                 legend_size=6)


def val_curve_panel(task: dict) -> Panel | None:
    """Validation NLL (nats per graph) against the optimizer step, mean over the seeds' curves (cut to the
    shortest), per variant; None when no run logged one."""
    series = []
    for r in task["rows"]:
        cs = [c for c in (x["val_curve"] for x in r["runs"]) if c]
        if not cs:
            continue
        k = min(len(c) for c in cs)
        steps = [s for s, _ in cs[0][:k]]
        series.append(Series("plot", steps, np.mean([[v for _, v in c[:k]] for c in cs], axis=0),
                             dict(marker="o", ms=3, label=r["title"], ls=_ls(r))))
    if not series:
        return None
    return Panel(series, title=task["title"], xlabel="optimizer step", ylabel="validation NLL (nats / graph)",
                 legend_size=6)


def report_plots(report: dict, out: Path) -> list[str]:
    """Every plot of every task of ``report`` written under ``out``, and the sample grid of each variant's first
    finished seed (from its first evaluation call) copied there; returns the file names written, in order."""
    out = Path(out)
    written = []
    K = report["keys"]["mixture_draws"]
    for t in report["tasks"]:
        for r in t["rows"]:
            if r["runs"]:
                src = eval_dir(run_dir_of(out, t["label"], r["variant"], r["runs"][0]["seed"]), t["evals"][0])
                if (src / "samples.png").exists():
                    name = f"samples_{t['label']}_{r['variant']}.png"
                    shutil.copyfile(src / "samples.png", out / name)
                    written.append(name)
        figures = [(f"nll_{t['label']}.png", [nll_panel(t, K)], (7, 3.8)),
                   (f"nll_bins_{t['label']}.png", bins_panels(t), (10, 3.6)),
                   (f"validity_{t['label']}.png", validity_panel(t), (6, 3.5)),
                   (f"val_nll_{t['label']}.png", val_curve_panel(t), (6, 3.5))]
        for name, panels, size in figures:
            if panels is None:
                continue
            plot_panels(out / name, panels if isinstance(panels, list) else [panels], size)
            written.append(name)
    return written
