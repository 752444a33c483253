"""The NLL benchmark report: symmetry breaker × seeds on fixed training budgets.

    python scripts/nll_report.py --preset cpu --out reports/cpu        # CPU-sized (shipped in reports/cpu)
    python scripts/nll_report.py --preset paper --out reports/paper    # full QM9 with H, DiGress settings (GPU)

Each run goes through exactly the commands users run: ``scripts/train_diffusion.py`` with the preset's
overrides plus ``model.symbreak=<variant> seed=<seed>``, then ``scripts/evaluate.py`` on the run's
``last.ckpt`` (the fixed budget's final weights, EMA when on). A run whose ``eval/metrics.json`` exists is
skipped, so an interrupted report resumes where it stopped. Writes ``report.md``, ``report.json`` and PNG
plots (NLL per variant with error bars, validation NLL curves, a sample grid per variant).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
# report columns -> evaluate.py's keys (which name the NLL convention; the default model is ours_plain)
METRIC_KEYS = {"nll_mc": "nll_ours_plain_mc", "nll_exact": "nll_ours_plain_exact"}
VARIANT_NAMES = {"none": "DiGress (no breaking)", "noise": "DiGress + noise", "sympe_nodes": "DiGress + SymPE (nodes)",
                 "sympe": "DiGress + SymPE (nodes + edges)"}


def run(cmd: list[str], log: Path) -> None:
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\nlog {log}:\n{tail}")


def val_curve(run_dir: Path) -> list[tuple[int, float]]:
    path = run_dir / "csv" / "metrics.csv"
    if not path.exists():
        return []
    out = []
    for row in csv.DictReader(open(path)):
        if row.get("val/nll"):
            out.append((int(row["step"]), float(row["val/nll"])))
    return out


def fmt(mean, std, digits=1):
    if mean is None:
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"


def agg(values):
    v = [x for x in values if x is not None]
    if not v:
        return None, None
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", help="configs/report/<preset>.yaml")
    ap.add_argument("--out", default=None, help="output folder (default reports/<preset>)")
    ap.add_argument("--variants", nargs="*", default=None)
    ap.add_argument("--seeds", nargs="*", type=int, default=None)
    args = ap.parse_args()
    preset_path = REPO / "configs" / "report" / f"{args.preset}.yaml"
    if not preset_path.exists():
        raise SystemExit(f"unknown preset {args.preset!r}: no {preset_path}")
    preset = OmegaConf.to_container(OmegaConf.load(preset_path))
    variants = args.variants or preset["variants"]
    seeds = args.seeds if args.seeds is not None else preset["seeds"]
    out = Path(args.out or REPO / "reports" / args.preset).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    grid = [(d, v, s) for d in preset["datasets"] for v in variants for s in seeds]
    started = time.time()
    for d, v, s in tqdm(grid, desc="report grid", unit="run"):
        run_dir = out / "runs" / d["label"] / v / f"seed{s}"
        if (run_dir / "eval" / "metrics.json").exists():
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        if not (run_dir / "checkpoints" / "last.ckpt").exists() or not (run_dir / "train_done").exists():
            # an interrupted run continues in its folder from its last.ckpt
            where = (f"train.resume={run_dir}" if (run_dir / "checkpoints" / "last.ckpt").exists()
                     else f"paths.out_dir={run_dir}")
            run([sys.executable, "scripts/train_diffusion.py", *d["train"], f"model.symbreak={v}", f"seed={s}",
                 "train.test_after_fit=false", "train.progress_bar=false", where], run_dir / "train.log")
            (run_dir / "train_done").write_text(f"{time.time() - t0:.1f}\n")
        run([sys.executable, "scripts/evaluate.py", f"checkpoint={run_dir / 'checkpoints' / 'last.ckpt'}", *d["eval"],
             f"seed={s}", f"out_dir={run_dir / 'eval'}"], run_dir / "eval.log")
        (run_dir / "wall_s").write_text(f"{time.time() - t0:.1f}\n")

    # ------------------------------------------------------------------ aggregate
    report = {"preset": args.preset, "command": f"python scripts/nll_report.py --preset {args.preset}"
              + (f" --out {args.out}" if args.out else ""), "variants": variants, "seeds": seeds, "datasets": []}
    for d in preset["datasets"]:
        entry = {"label": d["label"], "title": d.get("title", d["label"]), "train_overrides": d["train"],
                 "eval_overrides": d["eval"], "rows": []}
        for v in variants:
            runs = []
            for s in seeds:
                rd = out / "runs" / d["label"] / v / f"seed{s}"
                m = json.loads((rd / "eval" / "metrics.json").read_text())
                wall = float((rd / "wall_s").read_text()) if (rd / "wall_s").exists() else None
                runs.append({"seed": s, "metrics": m, "wall_s": wall, "val_curve": val_curve(rd)})
            row = {"variant": v, "runs": runs}
            for key in ("nll_mc", "nll_exact", "validity", "relaxed_validity", "uniqueness", "novelty",
                        "atom_stability", "molecule_stability", "vun", "connected_fraction"):
                row[key] = agg([r["metrics"].get(METRIC_KEYS.get(key, key)) for r in runs])
            entry["rows"].append(row)
        report["datasets"].append(entry)
    report["total_wall_s"] = sum(r["wall_s"] or 0 for d in report["datasets"] for row in d["rows"] for r in row["runs"])
    (out / "report.json").write_text(json.dumps(report, indent=1))
    plots(report, out)
    (out / "report.md").write_text(markdown(report))
    print(f"report written to {out / 'report.md'} ({time.time() - started:.0f} s this invocation)")


def plots(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for d in report["datasets"]:
        rows = d["rows"]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = [VARIANT_NAMES.get(r["variant"], r["variant"]) for r in rows]
        means = [r["nll_mc"][0] or np.nan for r in rows]
        stds = [r["nll_mc"][1] or 0.0 for r in rows]
        ax.bar(range(len(rows)), means, yerr=stds, capsize=5, color=["#777", "#a9a", "#48c", "#26a"][: len(rows)])
        for r_i, r in enumerate(rows):
            ax.scatter([r_i] * len(r["runs"]), [x["metrics"].get(METRIC_KEYS["nll_mc"]) for x in r["runs"]], color="k", s=10, zorder=3)
        ax.set_xticks(range(len(rows)), names, rotation=15, fontsize=8)
        ax.set_ylabel("test NLL (nats / graph)")
        ax.set_title(d["title"], fontsize=9)
        fig.tight_layout()
        fig.savefig(out / f"nll_{d['label']}.png", dpi=90)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in rows:
            curves = [c for c in (x["val_curve"] for x in r["runs"]) if c]
            if not curves:
                continue
            steps = [s for s, _ in curves[0]]
            k = min(len(c) for c in curves)
            mean = np.mean([[v for _, v in c[:k]] for c in curves], axis=0)
            ax.plot(steps[:k], mean, marker="o", ms=3, label=VARIANT_NAMES.get(r["variant"], r["variant"]))
        ax.set_xlabel("training step")
        ax.set_ylabel("validation NLL (MC, nats / graph)")
        ax.set_title(d["title"], fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"val_nll_{d['label']}.png", dpi=90)
        plt.close(fig)

        for r in rows:
            src = out / "runs" / d["label"] / r["variant"] / f"seed{r['runs'][0]['seed']}" / "eval" / "samples.png"
            if src.exists():
                shutil.copyfile(src, out / f"samples_{d['label']}_{r['variant']}.png")


def markdown(report: dict) -> str:
    lines = [f"# NLL benchmark report ({report['preset']} preset)", "",
             f"Command: `{report['command']}`", "",
             f"Variants × seeds {report['seeds']}; each run trains with `scripts/train_diffusion.py` and is evaluated "
             "with `scripts/evaluate.py` on its final checkpoint. NLL: test-set variational bound, nats per graph, "
             "each undirected edge counted once (DiGress counts edges twice; its papers' numbers are not directly "
             "comparable), Monte Carlo estimator (one t per graph); ± is the standard deviation over seeds.",
             f"Total compute: {report['total_wall_s'] / 60:.1f} min.", ""]
    for d in report["datasets"]:
        lines += [f"## {d['title']}", "", "Training overrides: `" + " ".join(d["train_overrides"]) + "`  ",
                  "Evaluation overrides: `" + " ".join(d["eval_overrides"]) + "`", ""]
        has_stab = any(r["atom_stability"][0] is not None for r in d["rows"])
        has_mol = any(r["uniqueness"][0] is not None for r in d["rows"])
        head = ["Method", "test NLL ↓", "validity", "uniqueness"] + (["atom stab.", "mol. stab."] if has_stab else [])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in d["rows"]:
            pct = lambda x: fmt(*(None if v is None else 100 * v for v in x)) if x[0] is not None else "–"  # noqa: E731
            cells = [VARIANT_NAMES.get(r["variant"], r["variant"]), fmt(*r["nll_mc"]), pct(r["validity"]),
                     pct(r["uniqueness"]) if has_mol or r["uniqueness"][0] is not None else "–"]
            if has_stab:
                cells += [pct(r["atom_stability"]), pct(r["molecule_stability"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"![NLL](nll_{d['label']}.png) ![validation NLL](val_nll_{d['label']}.png)", ""]
        lines += ["Samples (seed 0): " + " ".join(f"[{r['variant']}](samples_{d['label']}_{r['variant']}.png)"
                                                 for r in d["rows"]), ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
