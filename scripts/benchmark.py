"""Speed and memory benchmark of the training step and the sampler; prints one JSON object.

    python scripts/benchmark.py                                   # qm9 (no H) config, CPU (and CUDA if present)
    python scripts/benchmark.py --device cuda --batch-sizes 64 256 --bf16 --compile
    python scripts/benchmark.py --breakers none noise sympe --train-steps 20 --nll
    python scripts/benchmark.py --vs-digress ../shared/reference --batch-sizes 64 256 --gemm-profile --memory-live

One row per device and batch size: training graphs/s, sampling seconds per 1000 graphs (T and strided steps),
peak memory, parameters, each breaker's step time over the first's, and with ``--nll`` NLL seconds per graph;
``--vs-digress``: DiGress's own steps against this project's at matched settings (``MATCHED_OVERRIDES``),
interleaved, with memory per configuration in its own process. The measurements are
:mod:`sympe.diffusion.benchmarking`; this script loads QM9, builds the models and prints. Every JSON key, what it
measures and in which unit, and measured numbers: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import sys

import torch

from sympe.datasets.config import build_splits_from_cfg
from sympe.diffusion.benchmarking import (PeakMemory, ReverseSteps, gemm_share, interleave, peak_memory_mb,
                                          reset_peak_memory, time_nll, time_sampling, train_step)
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.nn.cpu_kernel import kernel_available
from sympe.diffusion.runs.schema import compose_config
from sympe.diffusion.runs.training import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# DiGress's qm9_no_h settings that differ from experiment=qm9's defaults: dropout 0.1 in every transformer
# layer (hard-coded in its layer) and a graph-stream FFN of width 2048 (hard-coded); no gradient clipping.
MATCHED_OVERRIDES = ["model.dropout=0.1", "model.hidden_dims.dim_ffy=2048"]


def compose(overrides: list[str]):
    return compose_config(overrides)  # the training config, as train_diffusion.py composes it


def train_split(args):
    cfg = compose([f"experiment={args.experiment}", *args.override])
    return cfg, build_splits_from_cfg(cfg)["train"]


def fixed_batches(train, bs: int, count: int, shuffle: bool = True) -> list:
    from torch_geometric.loader import DataLoader

    loader = DataLoader(train, batch_size=bs, shuffle=shuffle, generator=torch.Generator().manual_seed(0))
    return list(itertools.islice(loader, count))


def benchmark_row(args, train, device: str, bs: int) -> dict:
    """One row of the default benchmark (see the module docstring)."""
    batches = fixed_batches(train, bs, args.warmup + args.train_steps)
    row = {"device": device if device == "cpu" else torch.cuda.get_device_name(0), "batch_size": bs}
    models = {}
    for breaker in args.breakers:
        torch.manual_seed(0)
        c = compose([f"experiment={args.experiment}", f"model.symbreak={breaker}",
                     f"train.compile={str(args.compile).lower()}", *args.override])
        models[breaker] = build_model(c, train.info).to(device).train()
    opts = {k: m.configure_optimizers() for k, m in models.items()}
    if device.startswith("cuda"):
        reset_peak_memory(device)  # on CPU the peak is the whole process's (dataset and all models included)
    steps = {k: (lambda r, k=k: train_step(models[k], opts[k], batches[r % len(batches)], device, clip_norm=1.0,
                                           bf16=args.bf16)) for k in models}
    step_times = interleave(steps, args.train_steps, args.warmup, device=device).medians()
    first = args.breakers[0]
    model = models[first]
    row.update({"params": sum(p.numel() for p in model.parameters()), "train_graphs_per_s": bs / step_times[first],
                "peak_mem_mb": peak_memory_mb(device)})
    sb, timed = args.sample_batch, None if args.full_sampling else args.sample_steps
    full = time_sampling(model, sb, device, model.T, timed, args.bf16)
    strided = time_sampling(model, sb, device, args.strided, timed, args.bf16)
    row.update({"sample_batch": sb,  # sampling runs at --sample-batch whatever the training batch size of this row
                f"sample_s_per_1000_T{model.T}_at_batch{sb}": full * 1000 / sb,
                f"sample_s_per_1000_strided{args.strided}_at_batch{sb}": strided * 1000 / sb,
                "sampling_extrapolated_from_steps": timed})
    if args.nll:
        graph = DenseGraph.from_pyg(fixed_batches(train, args.nll_batch, 1, shuffle=False)[0].to(device))
        by_breaker = {k: time_nll(m.eval(), graph, mixture_draws=args.nll_mixture) for k, m in models.items()}
        row["nll_s_per_graph"] = by_breaker[first]  # the first breaker's, as before
        row["nll_s_per_graph_by_breaker"] = by_breaker  # mixture bounds of a breaker-free model cost its per-draw bound
    row.update({"step_s": step_times, "breaker_overhead": {k: v / step_times[first] for k, v in step_times.items()}})
    return row


# ------------------------------------------------------------------------------- side by side with DiGress
def load_digress(path: str):
    """The ``Digress`` wrapper of ``path/digress_reference.py`` (a timing reference outside the project; its
    modules are named ``diffusion``, ``src``, ... and this script imports only ``sympe.*``, so nothing clashes)."""
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "digress_reference.py")):
        sys.exit(f"--vs-digress {path}: no digress_reference.py there (expected the shared/reference folder)")
    sys.path.insert(0, path)
    from digress_reference import Digress

    return Digress()


def digress_model(dg, batch):
    with contextlib.redirect_stdout(sys.stderr):  # what its constructor prints goes to stderr (stdout: the JSON)
        return dg.model(batch)


def matched_project_model(args, info):
    torch.manual_seed(0)
    model = build_model(compose([f"experiment={args.experiment}", *MATCHED_OVERRIDES, *args.override]), info)
    return model.train(), model.configure_optimizers()


def memory_probe(args) -> None:
    """In a fresh process: train ``--train-steps`` steps of ONE configuration; print its memory as JSON. The
    batches are cut and the dataset dropped before the peak resident set is reset (PeakMemory)."""
    _, train = train_split(args)
    bs = args.batch_sizes[0]
    batches, info = fixed_batches(train, bs, args.train_steps), train.info
    del train
    dg = load_digress(args.vs_digress) if args.memory_probe == "digress" else None
    m, opt = digress_model(dg, batches[0]) if dg else matched_project_model(args, info)
    step = dg.train_step if dg else train_step
    with PeakMemory("cpu") as mem:
        for b in batches:
            step(m, opt, b)
    print(json.dumps({"config": args.memory_probe, "batch_size": bs, "rss_before_mb": mem.before_mb,
                      "peak_rss_mb": mem.peak_mb, "train_peak_mb": mem.added_mb, "peak_reset": mem.reset}))


def probe_memory(args, which: str, bs: int, live: bool = False) -> dict:
    """:func:`memory_probe` of one configuration in a fresh process (``live``: MALLOC_MMAP_THRESHOLD_=131072, every
    large tensor its own mapping, so the resident set follows the bytes alive, at the price of slower steps)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--vs-digress", args.vs_digress, "--memory-probe", which,
           "--batch-sizes", str(bs), "--train-steps", str(max(2, args.memory_steps)), "--experiment", args.experiment]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.override:
        cmd += ["--override", *args.override]
    env = {**os.environ, **({"MALLOC_MMAP_THRESHOLD_": "131072"} if live else {})}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(args, steps: dict, rounds: int, warmup: int, name: str, ratio_name: str) -> dict:
    """``steps`` (``{"digress": f, "sympe": g}``, f(round)) timed interleaved (the order alternates per round):
    medians, ratios DiGress / sympe (> 1: sympe faster), and with ``--gemm-profile`` the GEMM / other split of two
    profiled calls of each and the float32 ceiling (DiGress's step over sympe's GEMM time alone)."""
    t = interleave(steps, rounds, warmup, seed_rounds=True)
    out = {f"{name}_s": t.medians(), f"{name}_cpu_s": t.medians("cpu"), f"{ratio_name}_speedup": t.ratio("digress", "sympe"),
           f"{ratio_name}_speedup_cpu": t.ratio("digress", "sympe", "cpu")}
    if args.gemm_profile:
        share = {k: gemm_share(f, [0, 1]) for k, f in steps.items()}
        out[f"{name}_profile_ms"] = share
        out[f"{ratio_name}_speedup_ceiling_fp32"] = out[f"{name}_s"]["digress"] / (share["sympe"]["gemm_ms"] / 1e3)
    return out


def vs_digress(args) -> None:
    """Per batch size: training steps (``--warmup`` + ``--train-steps`` rounds, the same batch and seed for both) and
    reverse steps of the full-T chain (1 + ``--sample-steps`` rounds, the node counts of the first batch) of DiGress
    and this project, then the training memory of each in its own process."""
    dg = load_digress(args.vs_digress)
    cfg, train = train_split(args)
    mcfg = compose([f"experiment={args.experiment}", *MATCHED_OVERRIDES, *args.override]).model
    result = {"what": "DiGress (reference) vs sympe, matched settings, interleaved in one process",
              "matched_overrides": MATCHED_OVERRIDES + list(args.override), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "T": int(cfg.model.diffusion.T),
              "sympe_cpu_kernel": kernel_available(), "recompute_attention": bool(mcfg.recompute_attention), "runs": []}
    for bs in args.batch_sizes:
        batches = fixed_batches(train, bs, args.warmup + args.train_steps)
        (dm, dopt), (pm, popt) = digress_model(dg, batches[0]), matched_project_model(args, train.info)
        def on_batch(step):  # round r: both train on batch r, from seed r (compare)
            return lambda r: step(batches[r % len(batches)])

        row = {"batch_size": bs, "params": {"digress": sum(p.numel() for p in dm.parameters()),
                                            "sympe": sum(p.numel() for p in pm.parameters())}}
        row.update(compare(args, {"digress": on_batch(lambda b: dg.train_step(dm, dopt, b)),
                                  "sympe": on_batch(lambda b: train_step(pm, popt, b))},
                           args.train_steps, args.warmup, "train_step", "train"))
        row.update({"train_graphs_per_s": {k: bs / v for k, v in row["train_step_s"].items()},
                    "train_rounds": args.train_steps})
        dm.eval()
        pm.eval()
        sizes = torch.bincount(batches[0].batch)
        st_dg, chain = dg.sample_init(dm, sizes), ReverseSteps(pm, sizes)
        row.update(compare(args, {"digress": lambda _: dg.sample_step(dm, st_dg), "sympe": chain.step},
                           args.sample_steps, 1, "reverse_step", "reverse_step"))
        row["reverse_step_batch"] = int(sizes.numel())
        del dm, dopt, pm, popt, st_dg, chain
        for live in (False, True)[:1 + args.memory_live] if args.memory_steps > 0 else ():
            mem, sfx = {w: probe_memory(args, w, bs, live) for w in ("digress", "sympe")}, "_live" * live
            row["memory" + sfx] = mem
            if not live:
                row["peak_rss_ratio"] = mem["sympe"]["peak_rss_mb"] / mem["digress"]["peak_rss_mb"]
            row["train_peak_ratio" + sfx] = mem["sympe"]["train_peak_mb"] / mem["digress"]["train_peak_mb"]
        result["runs"].append(row)
        print(json.dumps(row), file=sys.stderr)
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (CPU, and CUDA when present) | cpu | cuda")
    ap.add_argument("--experiment", default="qm9")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--breakers", nargs="+", default=["none", "noise", "sympe"])
    ap.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides, e.g. dataset.params.source=csv")
    for flag, default, what in (
            ("--warmup", 2, "untimed training rounds"), ("--train-steps", 5, "timed training rounds"),
            ("--sample-batch", 256, "graphs sampled at a time"), ("--strided", 50, "steps of the strided sampling"),
            ("--sample-steps", 5, "reverse steps timed (then extrapolated)"), ("--threads", None, "torch threads"),
            ("--nll-batch", 32, "graphs in the batch the NLL is timed on"),
            ("--memory-steps", 3, "with --vs-digress: training steps of each memory subprocess (0 skips memory)")):
        ap.add_argument(flag, type=int, default=default, help=what)
    for flag, what in (
            ("--full-sampling", "time complete sampling runs instead"), ("--bf16", "bf16 autocast on CUDA"),
            ("--compile", "torch.compile the transformer"), ("--nll", "also time one NLL evaluation per graph"),
            ("--memory-live", "with --vs-digress: also measure memory with large allocations unmapped when freed "
                              "(the resident set then follows the live bytes)"),
            ("--gemm-profile", "with --vs-digress: split 2 profiled training and reverse steps into GEMM / other")):
        ap.add_argument(flag, action="store_true", help=what)
    ap.add_argument("--nll-mixture", type=int, nargs="*", default=[4, 16], help="K of the mixture bound timings")
    ap.add_argument("--vs-digress", default=None, metavar="PATH",
                    help="time DiGress's code in PATH (the shared/reference folder) side by side; prints ratios")
    ap.add_argument("--memory-probe", default=None, choices=["digress", "sympe"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        return memory_probe(args)
    if args.vs_digress:
        return vs_digress(args)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    cfg, train = train_split(args)
    result = {"experiment": args.experiment, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "T": int(cfg.model.diffusion.T), "n_layers": int(cfg.model.n_layers), "runs": []}
    for device in devices:
        for bs in args.batch_sizes:
            row = benchmark_row(args, train, device, bs)
            result["runs"].append(row)
            print(json.dumps(row), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
