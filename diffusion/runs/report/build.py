"""The report of a folder of runs: aggregated numbers, ``report.json``, ``report.md`` and the plots."""
from __future__ import annotations

import json
from pathlib import Path

from sympe.diffusion.files import atomic_write_text
from sympe.diffusion.runs.report.aggregate import KEYS, SAMPLE_KEYS, ExactNumbers, aggregate, collect, task_T
from sympe.diffusion.runs.report.plots import report_plots
from sympe.diffusion.runs.report.render import markdown

__all__ = ["build_report"]


def build_report(preset: dict, out: Path, preset_name: str, command: str, failures=(), make_plots: bool = True,
                 exact_numbers: ExactNumbers | None = None) -> dict:
    """Aggregate the finished runs under ``out`` (:func:`~sympe.diffusion.runs.report.aggregate.collect`,
    :func:`~sympe.diffusion.runs.report.aggregate.aggregate`); writes ``report.json`` (indent 1), ``report.md``
    and (``make_plots``) the PNG plots into ``out``, each atomically, and returns the report dict.

    Besides the tasks' cells (nats per graph) the report holds the preset's settings, the keys read from
    evaluate.py's JSON, the ``failures`` given, the number of runs planned and done, their total CPU and wall
    seconds (``total_cpu_s``, ``total_wall_s``, from their ``timing.json``) and the plots' file names.
    ``exact_numbers``: see :func:`~sympe.diffusion.runs.report.aggregate.run_record`.
    """
    out = Path(out)
    runs = collect(preset, out, exact_numbers)
    report = {"preset": preset_name, "command": command, "seeds": preset["seeds"], "variants": preset["variants"],
              "common": preset["common"], "evals": preset["evals"], "last": preset.get("last"),
              "keys": {"estimator": preset["keys"]["estimator"], "mixture_draws": int(preset["keys"]["mixture_draws"]),
                       "json_keys": KEYS, "sample_keys": SAMPLE_KEYS},
              **aggregate(preset, runs), "failures": list(failures)}
    for t, task in zip(report["tasks"], preset["tasks"]):
        t["T"] = task_T(preset, runs, out, task)
    all_runs = [r for t in report["tasks"] for row in t["rows"] for r in row["runs"]]
    report["num_runs"] = len(preset["tasks"]) * len(preset["variants"]) * len(preset["seeds"])
    report["runs_done"] = len(all_runs)
    report["total_cpu_s"] = sum(v for r in all_runs for k, v in r["timing"].items() if k.endswith("cpu_s"))
    report["total_wall_s"] = sum(v for r in all_runs for k, v in r["timing"].items() if k.endswith("wall_s"))
    out.mkdir(parents=True, exist_ok=True)
    if make_plots:
        report["plots"] = report_plots(report, out)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1, default=str))
    atomic_write_text(out / "report.md", markdown(report))
    return report
