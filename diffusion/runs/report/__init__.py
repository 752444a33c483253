"""sympe.diffusion.runs.report: the symmetry-breaking benchmark report (``scripts/nll_report.py``).

Variants × tasks × seeds on fixed optimizer-step budgets, each run through the project's own commands, then
tables and plots of the test NLL (nats per graph) over seeds. One concept per module:

* :mod:`~sympe.diffusion.runs.report.presets`: ``configs/report/<name>.yaml`` read, checked and narrowed;
* :mod:`~sympe.diffusion.runs.report.layout`: where each run's files lie under the report folder;
* :mod:`~sympe.diffusion.runs.report.runner`: the resumable job runner (:func:`command_for` starts every command);
* :mod:`~sympe.diffusion.runs.report.aggregate`: run records from evaluate.py's JSON (:data:`KEYS`) and cells;
* :mod:`~sympe.diffusion.runs.report.render`: the Markdown report;
* :mod:`~sympe.diffusion.runs.report.plots`: the PNG plots, drawn by one function (:func:`plot_panels`);
* :mod:`~sympe.diffusion.runs.report.build`: ``report.json``, ``report.md`` and the plots of a folder of runs.

It knows no dataset: exact data entropies come from the caller (``exact_numbers``).
"""
from sympe.diffusion.runs.report.aggregate import (KEY_TYPES, KEYS, SAMPLE_KEYS, SEM_OF, ExactNumbers, aggregate,
                                                   bin_means, collect, key_format, lookup, mean_sem, read_column,
                                                   read_value, run_record, task_T, val_curve)
from sympe.diffusion.runs.report.build import build_report
from sympe.diffusion.runs.report.layout import eval_dir, load_run_evals, read_run_config, run_dir_of, run_is_done
from sympe.diffusion.runs.report.plots import (Panel, Series, bins_panels, nll_panel, plot_panels, report_plots,
                                               time_bin_centres, val_curve_panel, validity_panel)
from sympe.diffusion.runs.report.presets import (KEY_DEFAULTS, PresetError, apply_smoke, load_preset, restrict,
                                                 task_evals)
from sympe.diffusion.runs.report.render import format_cell, markdown
from sympe.diffusion.runs.report.runner import COMMANDS, command_for, commands, execute_run, prepare_datasets, \
    run_grid, run_logged

__all__ = [
    # presets
    "PresetError", "KEY_DEFAULTS", "load_preset", "apply_smoke", "restrict", "task_evals",
    # layout
    "run_dir_of", "eval_dir", "run_is_done", "load_run_evals", "read_run_config",
    # runner
    "COMMANDS", "command_for", "commands", "run_logged", "execute_run", "prepare_datasets", "run_grid",
    # aggregate
    "KEYS", "KEY_TYPES", "SAMPLE_KEYS", "SEM_OF", "ExactNumbers", "lookup", "read_value", "read_column", "key_format",
    "bin_means", "mean_sem", "val_curve", "run_record", "collect", "aggregate", "task_T",
    # render
    "format_cell", "markdown",
    # plots
    "Series", "Panel", "plot_panels", "time_bin_centres", "nll_panel", "bins_panels", "validity_panel",
    "val_curve_panel", "report_plots",
    # build
    "build_report",
]
