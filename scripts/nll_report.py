"""The symmetry-breaking benchmark report: variants × tasks × seeds on fixed optimizer-step budgets.

    python scripts/nll_report.py --preset cpu --jobs 2           # CPU grid, written to reports/cpu
    python scripts/nll_report.py --preset cpu --smoke            # 1 seed, tiny budgets: checks the pipeline
    python scripts/nll_report.py --preset paper                  # QM9 with explicit H at DiGress's settings (GPU)
    python scripts/nll_report.py --preset cpu --aggregate-only   # tables and plots from the finished runs

A preset (``configs/report/<name>.yaml``) names the seeds, the variants (a title and the training overrides
that make each one, e.g. ``model.symbreak=sympe``; ``control: true`` marks a non-equivariant control), the
evaluation calls made on every trained model (``evals``: name -> overrides of ``scripts/evaluate.py``) and the
tasks (a dataset setting with its training budget in optimizer steps, and which evaluation calls it uses).

Each run goes through exactly the commands users run: ``scripts/train_diffusion.py``, then ``scripts/evaluate.py``
on its ``checkpoints/last.ckpt`` once per evaluation call. Finished runs are skipped and interrupted ones resume;
one progress line per run; a failed run is recorded in ``runs/.../error.txt`` and the others go on. The report is
built from the runs that finished, with the number of seeds behind each cell (mean ± standard error over seeds,
nats per graph): ``report.md``, ``report.json`` and PNG plots.

The library behind it is ``sympe.diffusion.runs.report`` (presets, runner, aggregate, render, plots); this script
adds the exact data entropy of the seeded symmetry-breaking families (``sympe.datasets.sources.breaking``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from sympe.diffusion.runs.report import PresetError, apply_smoke, build_report, load_preset, restrict, run_grid

REPO = Path(__file__).resolve().parents[1]


def exact_numbers(name: str, params: dict) -> tuple[float | None, float | None]:
    """(data entropy, exchangeable floor) of the generating distribution of a run's dataset, in nats per graph,
    for the seeded symmetry-breaking families; (None, None) for other datasets. ``params`` are the run's resolved
    dataset params; one it does not give (e.g. the size) is read from ``configs/dataset/<name>.yaml``, and one
    given nowhere takes the default of :mod:`sympe.datasets.sources.breaking`'s functions."""
    from sympe.datasets.config import DatasetConfigError, dataset_config
    from sympe.datasets.sources import breaking

    if name not in breaking.FAMILIES:
        return None, None
    try:
        defaults = dataset_config(REPO / "configs", name)[1]
    except DatasetConfigError:
        defaults = {}
    given = {**defaults, **{key: v for key, v in params.items() if v is not None}}
    size = given.get(breaking.SIZE_PARAM[name])
    if size is None:
        return None, None
    k = {"k": given["k"]} if given.get("k") else {}
    permute = {"permute_nodes": bool(given["permute_nodes"])} if "permute_nodes" in given else {}
    return breaking.data_entropy(name, size, **k, **permute), breaking.data_floor(name, size, **k)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", help="configs/report/<preset>.yaml (default: cpu)")
    ap.add_argument("--out", default=None, help="output folder (default reports/<preset>; with --smoke "
                                                "outputs/report_smoke/<preset>)")
    ap.add_argument("--tasks", nargs="*", default=None, help="only these task labels")
    ap.add_argument("--variants", nargs="*", default=None, help="only these variants")
    ap.add_argument("--seeds", nargs="*", type=int, default=None, help="only these seeds")
    ap.add_argument("--smoke", action="store_true", help="apply the preset's smoke section (1 seed, tiny budgets)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads per run (OMP_NUM_THREADS); default: inherited with --jobs 1, else "
                         "cores // jobs")
    ap.add_argument("--aggregate-only", action="store_true", help="build the report from finished runs, train nothing")
    args = ap.parse_args(argv)

    try:
        preset = load_preset(REPO / "configs" / "report" / f"{args.preset}.yaml")
        if args.smoke:
            preset = apply_smoke(preset)
        preset = restrict(preset, args.preset, tasks=args.tasks, variants=args.variants, seeds=args.seeds)
    except PresetError as e:
        raise SystemExit(str(e))
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads is None and args.jobs > 1:
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    checkout = REPO if (REPO / "pyproject.toml").exists() else Path.cwd()  # an installed package: the current folder
    default_out = checkout / ("outputs/report_smoke" if args.smoke else "reports") / args.preset
    out = Path(args.out).resolve() if args.out else default_out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    command = "python scripts/nll_report.py " + " ".join(argv if argv is not None else sys.argv[1:])

    failures: list[str] = []
    started = time.time()
    if not args.aggregate_only:  # every command runs in the checkout (relative paths of presets)
        failures = run_grid(preset, out, cwd=checkout, jobs=args.jobs, threads=args.threads)
    report = build_report(preset, out, args.preset, command.strip(), failures, exact_numbers=exact_numbers)
    print(f"[report] {report['runs_done']}/{report['num_runs']} runs done, {report['total_cpu_s'] / 60:.1f} CPU-minutes "
          f"in all; written to {out / 'report.md'} ({(time.time() - started) / 60:.1f} min this invocation)")
    if failures:
        print(f"[report] {len(failures)} run(s) failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
