"""The plots: one drawing function (series counted on the figure it draws), and the files of the fake grid."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from sympe.diffusion.runs.report import (Panel, Series, aggregate, bins_panels, collect, nll_panel,  # noqa: E402
                                         plot_panels, report_plots, time_bin_centres, val_curve_panel,
                                         validity_panel)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def drawn(monkeypatch):
    """The figures plot_panels closes (pyplot.close is spied on)."""
    figures = []
    close = plt.close

    def spy(fig=None):
        figures.append(fig)
        return close(fig)

    monkeypatch.setattr(plt, "close", spy)
    return figures


def test_plot_panels_writes_a_png_with_every_series(tmp_path, drawn):
    left = Panel([Series("errorbar", [1, 2], [3.0, 4.0], dict(yerr=[0.1, 0.2], label="a")),
                  Series("errorbar", [1, 2], [2.0, 5.0], dict(label="b")),
                  Series("scatter", [1, 1], [3.0, 3.5], dict(color="k"))],
                 title="left", xlabel="t", ylabel="NLL", yscale="log", hlines=[(2.5, dict(label="floor"))],
                 legend_size=6)
    right = Panel([Series("plot", [1, 2, 3], [1.0, 0.5, 0.2], dict(label="c"))], title="right",
                  xticks=([1, 2, 3], ["x", "y", "z"], dict(rotation=20)))
    path = plot_panels(tmp_path / "two.png", [left, right], figsize=(8, 3), dpi=50)
    assert path == tmp_path / "two.png" and path.read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.png"]          # no temporary file left
    img = plt.imread(path)
    assert img.shape[:2] == (150, 400)                                          # 3 x 8 inches at 50 dpi
    (fig,) = drawn
    ax_l, ax_r = fig.axes
    assert len(ax_l.containers) == 2                                            # the error bars a and b
    # the error bars of a (b has none) and the dots
    assert sorted(type(c).__name__ for c in ax_l.collections) == ["LineCollection", "PathCollection"]
    assert sorted(t.get_text() for t in ax_l.get_legend().get_texts()) == ["a", "b", "floor"]
    assert ax_l.get_yscale() == "log" and ax_l.get_title() == "left" and ax_l.get_xlabel() == "t"
    assert len(ax_r.lines) == 1 and ax_r.get_legend() is None
    assert [t.get_text() for t in ax_r.get_xticklabels()] == ["x", "y", "z"]


def test_plot_panels_rejects_what_it_cannot_draw(tmp_path):
    with pytest.raises(ValueError, match="at least one panel"):
        plot_panels(tmp_path / "x.png", [], figsize=(3, 3))
    with pytest.raises(ValueError, match="series kind 'bar'"):
        plot_panels(tmp_path / "x.png", [Panel([Series("bar", [1], [1])])], figsize=(3, 3))
    assert not list(tmp_path.iterdir())


def test_time_bin_centres():
    assert time_bin_centres(10, 2) == [3.0, 8.0]          # bins 1..5 and 6..10
    assert time_bin_centres(500, 10)[0] == pytest.approx(25.5)


def test_panels_of_the_fake_grid(fake, tmp_path):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    tasks = {t["label"]: t for t in aggregate(preset, collect(preset, tmp_path, fake.exact_numbers))["tasks"]}
    cycle, mol = tasks["cycle"], tasks["mol"]
    p = nll_panel(cycle, 16)
    # per variant and bound: one error bar and one scatter of the seeds; floor and entropy lines
    assert [s.kind for s in p.series].count("errorbar") == 6 and [s.kind for s in p.series].count("scatter") == 6
    assert [s.style.get("label") for s in p.series if s.kind == "errorbar"] == [
        "per-draw bound", None, None, "mixture bound K=16", None, None]
    assert [s.style["color"] for s in p.series if s.kind == "errorbar"][:3] == ["#26a", "#26a", "#c33"]
    assert sorted(len(s.y) for s in p.series if s.kind == "scatter") == [3] * 6
    assert [label for _, label in ((y, st["label"]) for y, st in p.hlines)] == ["exchangeable floor", "data entropy"]
    assert p.xticks[1] == ["none", "SymPE", "index (control)"]
    left, right = bins_panels(mol)
    assert len(left.series) == 3 and len(right.series) == 3 and left.yscale == "log"
    assert list(left.series[0].x) == [25.5 + 50 * b for b in range(10)]
    assert list(right.series[0].y) == [0.0] * 10
    v = validity_panel(mol)
    assert [s.x for s in v.series] == [[10, 50, 500]] * 3 and v.series[0].y == pytest.approx([10.0, 30.0, 60.0])
    assert validity_panel(cycle) is None and val_curve_panel(mol) is None


def test_report_plots_writes_the_files_of_each_task(fake, tmp_path, drawn):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    report = {"keys": {"mixture_draws": 16}, **aggregate(preset, collect(preset, tmp_path, fake.exact_numbers))}
    names = report_plots(report, tmp_path)
    assert names == ["samples_cycle_none.png", "samples_cycle_sympe.png", "samples_cycle_index.png", "nll_cycle.png",
                     "nll_bins_cycle.png", "samples_mol_none.png", "samples_mol_sympe.png", "samples_mol_index.png",
                     "nll_mol.png", "nll_bins_mol.png", "validity_mol.png"]
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == (b"fake png" if name.startswith("samples") else PNG), name
    assert not (tmp_path / "validity_cycle.png").exists()      # no validity for non-molecules
    assert len(drawn) == 5
    nll_mol = drawn[2]                                          # cycle: nll, bins; mol: nll, bins, validity
    assert len(nll_mol.axes[0].containers) == 6 and len(nll_mol.axes[0].collections) >= 6
    assert [len(ax.containers) for ax in drawn[3].axes] == [3, 3]
