"""Speed and memory benchmark of the training step and the sampler; prints one JSON object.

    python scripts/benchmark.py                                   # qm9 (no H) config, CPU (and CUDA if present)
    python scripts/benchmark.py --device cuda --batch-sizes 64 256 --bf16 --compile
    python scripts/benchmark.py --breakers none noise sympe --train-steps 20

Measured, for each device and batch size, with the model of ``experiment=qm9`` (9 layers, DiGress's widths,
``features=all``, molecular features) on real QM9 training batches:

* ``train_graphs_per_s``: graphs per second of full training steps (noise, features, breaker, forward,
  backward, AdamW step), after warm-up steps that are not timed;
* ``sample_s_per_1000_T{T}_at_batch{S}`` and ``sample_s_per_1000_strided{K}_at_batch{S}``: seconds to sample
  1000 graphs with all T reverse steps and with K strided steps, sampling ``S = --sample-batch`` graphs at a
  time (whatever the row's training batch size). With ``--sample-steps S`` (default) only S reverse steps are timed
  and the figure is extrapolated linearly (each step costs the same); ``--full-sampling`` times the whole run;
* ``peak_mem_mb``: peak CUDA memory of the training step (torch.cuda.max_memory_allocated), or the peak
  resident set size of the process on CPU (an upper bound that includes Python and the dataset);
* ``params``: parameter count; ``breaker_overhead``: step time with each symmetry breaker / step time without
  (medians of steps timed interleaved, one step of each variant per round, on the same batches).
  Peak memory is that of all variants' models together on CPU.
* ``nll_s_per_graph`` (with ``--nll``): seconds of one NLL evaluation per graph (the first breaker's model,
  ``--nll-batch`` graphs) for the ``mc``, ``stratified`` and ``exact`` estimators and the mixture bound with
  K = 4 and 16 draws (``mixture4_mc``, ``mixture16_mc``); see :func:`time_nll`.

Side by side with DiGress (``--vs-digress ../shared/reference``, see :func:`vs_digress`): DiGress's own
training step and reverse step against this project's at matched settings (DiGress's qm9_no_h widths, depth,
dropout 0.1, graph FFN 2048, T, batch), interleaved on the same batches in one process; ratios of medians
(wall and CPU time) as JSON, and the training peak memory of each configuration in its own process::

    python scripts/benchmark.py --vs-digress ../shared/reference --batch-sizes 64 256 --threads 1 --gemm-profile

With ``--gemm-profile`` each row also splits two profiled training steps and two reverse steps of each
implementation into matrix products and the rest (``train_step_profile_ms``, ``reverse_step_profile_ms``) and
gives ``train_speedup_ceiling_fp32`` / ``reverse_step_speedup_ceiling_fp32``: DiGress's step time over this
project's GEMM time, the ratio no float32 implementation of the same products can pass at that GEMM
throughput. The JSON records whether the fused CPU attention kernel was used (``sympe_cpu_kernel``) and
``recompute_attention``. ``--memory-live`` repeats the memory probes with glibc's ``MALLOC_MMAP_THRESHOLD_`` fixed
at 128 KiB, so that freed heap memory is not counted (``train_peak_ratio_live``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compose(overrides: list[str]):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=os.path.join(REPO, "configs"), version_base="1.3"):
        return hcompose(config_name="config", overrides=overrides)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_training(model, batches, device: str, warmup: int, steps: int, bf16: bool, opt=None) -> float:
    """Seconds per training step (mean over ``steps`` timed steps)."""
    opt = opt or model.configure_optimizers()
    model.train()

    def step(batch):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=bf16 and device.startswith("cuda")):
            loss = model.training_step(batch.to(device), 0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for i in range(warmup):
        step(batches[i % len(batches)])
    sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step(batches[(warmup + i) % len(batches)])
    sync(device)
    return (time.perf_counter() - start) / steps


@torch.no_grad()
def time_sampling(model, batch_size: int, device: str, num_steps: int, timed_steps: int | None, bf16: bool) -> float:
    """Seconds to sample ``batch_size`` graphs with ``num_steps`` reverse steps (extrapolated from
    ``timed_steps`` steps when given)."""
    from itertools import islice

    from sympe.diffusion.process.sampling import reverse_chain, sample_graphs, sample_n_nodes

    model.eval()
    sizes = sample_n_nodes(model.n_nodes_dist.cpu(), batch_size).to(device)
    ctx = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=bf16 and device.startswith("cuda"))
    with ctx:
        if timed_steps is None or timed_steps >= num_steps:
            sync(device)
            start = time.perf_counter()
            sample_graphs(model.model_fn, sizes, model.process, steps=num_steps)
            sync(device)
            return time.perf_counter() - start
        # time the first few reverse steps of the same strided grid (the library's chain) and extrapolate
        z = sample_graphs(model.model_fn, sizes, model.process, steps=1)  # a valid graph to start from (also warms up)
        sync(device)
        start = time.perf_counter()
        for _ in islice(reverse_chain(model.model_fn, z, model.process, steps=num_steps), timed_steps):
            pass
        sync(device)
        per_step = (time.perf_counter() - start) / timed_steps
        return per_step * (num_steps + 1)  # K reverse steps + the final decode


def time_nll(model, batch, device: str, mixture_draws=(4, 16), estimators=("mc", "stratified", "exact")) -> dict:
    """Seconds of one NLL evaluation per graph, for each estimator and for the mixture bound (mc, K draws).

    One untimed warm-up call, then one timed call per entry on ``batch`` (no gradients). Network calls per
    graph: mc 2, stratified num_bins + 1 (min(T, 10) + 1), exact T + 1; mixture K multiplies them by K.
    """
    from sympe.diffusion.graph import DenseGraph

    x = DenseGraph.from_pyg(batch.to(device))
    B = x.batch_size
    saved = model.mixture_draws
    model.eval()
    gen = torch.Generator(device=device).manual_seed(0)
    out = {}

    def timed(est):
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            model.nll(x, estimator=est, generator=gen)
        sync(device)
        return (time.perf_counter() - t0) / B

    try:
        model.set_eval_options(mixture_draws=0)
        timed("mc")  # warm-up
        for est in estimators:
            out[est] = timed(est)
        for K in mixture_draws:
            model.set_eval_options(mixture_draws=int(K))
            out[f"mixture{int(K)}_mc"] = timed("mc")
    finally:
        model.set_eval_options(mixture_draws=saved)
    return out


# ------------------------------------------------------------------------------- side by side with DiGress
# ``--vs-digress PATH``: DiGress's own code (PATH/digress_reference.py, a timing reference outside the project)
# and this project's model, built at matched settings, timed step by step interleaved on the same batches in
# one process. Peak memory is measured per configuration in a fresh subprocess (``--memory-probe``).

# DiGress's qm9_no_h settings that differ from experiment=qm9's defaults: dropout 0.1 in every transformer
# layer (hard-coded in its layer) and a graph-stream FFN of width 2048 (hard-coded); no gradient clipping.
MATCHED_OVERRIDES = ["model.dropout=0.1", "model.hidden_dims.dim_ffy=2048"]


def load_digress(path: str):
    """The ``Digress`` wrapper of ``path/digress_reference.py`` (a clear exit when it is not there)."""
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "digress_reference.py")):
        sys.exit(f"--vs-digress {path}: no digress_reference.py there (expected the shared/reference folder)")
    if path not in sys.path:
        sys.path.insert(0, path)
    from digress_reference import Digress

    # DiGress's modules are named `diffusion`, `src`, ...; this script only imports sympe.* so there is no clash
    return Digress()


def _digress_model(dg, batch):
    """DiGress's model and optimizer; what its constructor prints goes to stderr (stdout carries the JSON)."""
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):
        return dg.model(batch)


def matched_project_model(args, info, extra=()):
    from sympe.diffusion.runs.training import build_model

    torch.manual_seed(0)
    cfg = compose([f"experiment={args.experiment}", *MATCHED_OVERRIDES, *args.override, *extra])
    model = build_model(cfg, info)
    model.train()
    return model, model.configure_optimizers()


def project_train_step(model, opt, batch) -> None:
    """One training step as DiGress's wrapper times it: noise, features, forward, loss, backward, AdamW step
    (no gradient clipping, as in DiGress's qm9_no_h config)."""
    opt.zero_grad(set_to_none=True)
    loss = model.training_step(batch, 0)
    loss.backward()
    opt.step()


def project_sample_init(model, sizes):
    """A noisy graph drawn from the limit distribution for graphs of ``sizes`` nodes, and its time T."""
    B, n = sizes.numel(), int(sizes.max())
    node_mask = torch.arange(n).unsqueeze(0) < sizes.unsqueeze(1)
    z = model.process.sample_prior(node_mask, y=torch.zeros(B, 0))
    return {"z": z, "t": model.T}


@torch.no_grad()
def project_sample_step(model, st) -> None:
    """One reverse step z_{t-1} ~ p_θ(z_{t-1} | z_t) of the full-T chain (the step DiGress's sampler takes)."""
    B = st["z"].batch_size
    t = torch.full((B,), st["t"], dtype=torch.long)
    st["z"] = model.process.step(model.model_fn, st["z"], t, t - 1)
    st["t"] -= 1


def _timed(fn, *a) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn(*a)
    return time.perf_counter() - start, time.process_time() - cpu


def _median_ratio(ref: list, ours: list, k: int = 0) -> float:
    return float(np.median([r[k] for r in ref]) / np.median([o[k] for o in ours]))


def _medians(ref: list, ours: list, k: int) -> dict:
    return {"digress": float(np.median([r[k] for r in ref])), "sympe": float(np.median([o[k] for o in ours]))}


def memory_probe(args) -> None:
    """Run in a fresh process: train ``args.train_steps`` steps of ONE configuration and print its memory.

    The dataset is loaded, the batches are cut and the dataset is dropped; then the peak resident set size
    is reset (Linux: ``/proc/self/clear_refs``) so that loading data does not count. Prints JSON:
    ``rss_before_mb`` (resident set with imports, batches and model, before any step), ``peak_rss_mb`` (peak
    resident set during the training steps; VmHWM, or ru_maxrss where it cannot be reset) and
    ``train_peak_mb`` (their difference: what the training steps added at their peak: activations kept for
    backward, gradients, optimizer state, temporaries).
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    import gc

    from sympe.datasets.config import build_splits_from_cfg

    cfg = compose([f"experiment={args.experiment}", *args.override])
    train = build_splits_from_cfg(cfg)["train"]
    bs = args.batch_sizes[0]
    batches = _fixed_batches(train, bs, args.train_steps)
    info = train.info
    del train
    if args.memory_probe == "digress":
        dg = load_digress(args.vs_digress)
        m, opt = _digress_model(dg, batches[0])
        step = lambda b: dg.train_step(m, opt, b)  # noqa: E731
    else:
        m, opt = matched_project_model(args, info)
        step = lambda b: project_train_step(m, opt, b)  # noqa: E731
    gc.collect()
    reset = _reset_peak_rss()
    before = _status_mb("VmRSS")
    for b in batches:
        step(b)
    peak = _status_mb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"config": args.memory_probe, "batch_size": bs, "rss_before_mb": before, "peak_rss_mb": peak,
                      "train_peak_mb": peak - before, "peak_reset": reset}))


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_mb(key: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fixed_batches(train, bs: int, count: int) -> list:
    from torch_geometric.loader import DataLoader

    loader = DataLoader(train, batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    return [next(it) for _ in range(min(count, len(loader)))]


def _probe_memory(args, which: str, bs: int, live: bool = False) -> dict:
    """Run :func:`memory_probe` for one configuration in a fresh process. ``live=True`` sets glibc's
    ``MALLOC_MMAP_THRESHOLD_=131072`` there, so every large tensor is its own mapping, returned to the system when
    freed: the resident set then follows the bytes alive (freed heap chunks do not count), at the price of
    slower steps."""
    import subprocess

    cmd = [sys.executable, os.path.abspath(__file__), "--vs-digress", args.vs_digress, "--memory-probe", which,
           "--batch-sizes", str(bs), "--train-steps", str(max(2, args.memory_steps)), "--experiment", args.experiment]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.override:
        cmd += ["--override", *args.override]
    env = {**os.environ, **({"MALLOC_MMAP_THRESHOLD_": "131072"} if live else {})}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


GEMM_OPS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::matmul")


def gemm_share(step, batches: list) -> dict:
    """Profile ``step(b)`` over ``batches`` (torch.profiler, CPU) and split its self CPU time into matrix
    products (:data:`GEMM_OPS`) and everything else; ms per step. The profiler's own overhead inflates the
    total a little; the GEMM part is what no elementwise fusion can remove at float32."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches:
            step(b)
    total = gemm = 0.0
    for ev in prof.key_averages():
        total += ev.self_cpu_time_total
        if ev.key in GEMM_OPS:
            gemm += ev.self_cpu_time_total
    k = 1e3 * len(batches)
    return {"gemm_ms": gemm / k, "other_ms": (total - gemm) / k}


def vs_digress(args) -> None:
    """Time DiGress's and this project's training step and reverse step interleaved; print ratios as JSON.

    For each batch size: ``args.warmup`` untimed rounds, then ``args.train_steps`` rounds of one DiGress
    training step and one project training step on the SAME PyG batch (the order alternates per round), and
    ``args.sample_steps`` rounds of one reverse step of each, for the node counts of the same batch, from the
    limit distribution downwards. Ratios are DiGress median time / project median time (> 1: the project is
    faster). Memory: one subprocess per (configuration, batch size) trains ``--memory-steps`` steps alone.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    from sympe.datasets.config import build_splits_from_cfg

    dg = load_digress(args.vs_digress)
    cfg = compose([f"experiment={args.experiment}", *args.override])
    train = build_splits_from_cfg(cfg)["train"]
    from sympe.diffusion.nn.cpu_kernel import kernel_available

    mcfg = compose([f"experiment={args.experiment}", *MATCHED_OVERRIDES, *args.override]).model
    result = {"what": "DiGress (reference) vs sympe, matched settings, interleaved in one process",
              "matched_overrides": MATCHED_OVERRIDES + list(args.override), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "T": int(cfg.model.diffusion.T),
              "sympe_cpu_kernel": kernel_available(), "recompute_attention": bool(mcfg.recompute_attention),
              "runs": []}
    for bs in args.batch_sizes:
        rounds = args.warmup + args.train_steps
        batches = _fixed_batches(train, bs, rounds)
        dm, dopt = _digress_model(dg, batches[0])
        pm, popt = matched_project_model(args, train.info)
        t_dg, t_pr = [], []
        for r in range(rounds):
            b = batches[r % len(batches)]
            torch.manual_seed(r)
            if r % 2 == 0:
                a, c = _timed(dg.train_step, dm, dopt, b), _timed(project_train_step, pm, popt, b)
            else:
                c, a = _timed(project_train_step, pm, popt, b), _timed(dg.train_step, dm, dopt, b)
            if r >= args.warmup:
                t_dg.append(a)
                t_pr.append(c)
        wall = _medians(t_dg, t_pr, 0)
        row = {"batch_size": bs, "params": {"digress": sum(p.numel() for p in dm.parameters()),
                                            "sympe": sum(p.numel() for p in pm.parameters())},
               "train_step_s": wall, "train_step_cpu_s": _medians(t_dg, t_pr, 1),
               "train_graphs_per_s": {k: bs / v for k, v in wall.items()},
               "train_speedup": _median_ratio(t_dg, t_pr), "train_speedup_cpu": _median_ratio(t_dg, t_pr, 1),
               "train_rounds": len(t_dg)}
        if args.gemm_profile:
            prof_batches = batches[:2]
            share = {"digress": gemm_share(lambda b: dg.train_step(dm, dopt, b), prof_batches),
                     "sympe": gemm_share(lambda b: project_train_step(pm, popt, b), prof_batches)}
            row["train_step_profile_ms"] = share
            # the best ratio any float32 implementation doing the same matrix products at this GEMM speed can
            # reach: DiGress's step over this project's GEMM time alone
            row["train_speedup_ceiling_fp32"] = wall["digress"] / (share["sympe"]["gemm_ms"] / 1e3)
        # one reverse step of the full-T chain, same node counts, eval mode, no grad
        dm.eval()
        pm.eval()
        sizes = torch.bincount(batches[0].batch)
        st_dg, st_pr = dg.sample_init(dm, sizes), project_sample_init(pm, sizes)
        s_dg, s_pr = [], []
        for r in range(1 + args.sample_steps):
            if r % 2 == 0:
                a, c = _timed(dg.sample_step, dm, st_dg), _timed(project_sample_step, pm, st_pr)
            else:
                c, a = _timed(project_sample_step, pm, st_pr), _timed(dg.sample_step, dm, st_dg)
            if r >= 1:
                s_dg.append(a)
                s_pr.append(c)
        row["reverse_step_s"] = _medians(s_dg, s_pr, 0)
        row["reverse_step_cpu_s"] = _medians(s_dg, s_pr, 1)
        row["reverse_step_speedup"] = _median_ratio(s_dg, s_pr)
        row["reverse_step_speedup_cpu"] = _median_ratio(s_dg, s_pr, 1)
        row["reverse_step_batch"] = int(sizes.numel())
        if args.gemm_profile:
            share = {"digress": gemm_share(lambda _: dg.sample_step(dm, st_dg), [None, None]),
                     "sympe": gemm_share(lambda _: project_sample_step(pm, st_pr), [None, None])}
            row["reverse_step_profile_ms"] = share
            row["reverse_step_speedup_ceiling_fp32"] = row["reverse_step_s"]["digress"] / (share["sympe"]["gemm_ms"] / 1e3)
        del dm, dopt, pm, popt, st_dg, st_pr
        if args.memory_steps > 0:
            mem = {w: _probe_memory(args, w, bs) for w in ("digress", "sympe")}
            row["memory"] = mem
            row["peak_rss_ratio"] = mem["sympe"]["peak_rss_mb"] / mem["digress"]["peak_rss_mb"]
            row["train_peak_ratio"] = mem["sympe"]["train_peak_mb"] / mem["digress"]["train_peak_mb"]
            if args.memory_live:
                live = {w: _probe_memory(args, w, bs, live=True) for w in ("digress", "sympe")}
                row["memory_live"] = live
                row["train_peak_ratio_live"] = live["sympe"]["train_peak_mb"] / live["digress"]["train_peak_mb"]
        result["runs"].append(row)
        print(json.dumps(row), file=sys.stderr)
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (CPU, and CUDA when present) | cpu | cuda")
    ap.add_argument("--experiment", default="qm9")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--sample-batch", type=int, default=256)
    ap.add_argument("--sample-steps", type=int, default=5, help="reverse steps timed (then extrapolated)")
    ap.add_argument("--full-sampling", action="store_true", help="time complete sampling runs instead")
    ap.add_argument("--strided", type=int, default=50)
    ap.add_argument("--breakers", nargs="+", default=["none", "noise", "sympe"])
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides, e.g. dataset.params.source=csv")
    ap.add_argument("--nll", action="store_true", help="also time one NLL evaluation per graph for each estimator")
    ap.add_argument("--nll-batch", type=int, default=32, help="graphs in the batch the NLL is timed on")
    ap.add_argument("--nll-mixture", type=int, nargs="*", default=[4, 16], help="K of the mixture bound timings")
    ap.add_argument("--vs-digress", default=None, metavar="PATH",
                    help="time DiGress's code in PATH (the shared/reference folder) side by side; prints ratios")
    ap.add_argument("--memory-steps", type=int, default=3,
                    help="with --vs-digress: training steps of each memory subprocess (0 skips memory)")
    ap.add_argument("--memory-probe", default=None, choices=["digress", "sympe"], help=argparse.SUPPRESS)
    ap.add_argument("--memory-live", action="store_true",
                    help="with --vs-digress: also measure memory with large allocations unmapped when freed "
                         "(the resident set then follows the live bytes)")
    ap.add_argument("--gemm-profile", action="store_true",
                    help="with --vs-digress: profile 2 training steps and 2 reverse steps of each and split them "
                         "into GEMM / other time")
    args = ap.parse_args()
    if args.memory_probe:
        return memory_probe(args)
    if args.vs_digress:
        return vs_digress(args)
    if args.threads:
        torch.set_num_threads(args.threads)

    from sympe.datasets.config import build_splits_from_cfg
    from sympe.diffusion.runs.training import build_model
    from torch_geometric.loader import DataLoader

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    cfg = compose([f"experiment={args.experiment}", *args.override])
    train = build_splits_from_cfg(cfg)["train"]
    info = train.info
    result = {"experiment": args.experiment, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "T": int(cfg.model.diffusion.T), "n_layers": int(cfg.model.n_layers), "runs": []}
    for device in devices:
        for bs in args.batch_sizes:
            loader = DataLoader(train, batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(0))
            it = iter(loader)
            batches = [next(it) for _ in range(min(len(loader), args.warmup + args.train_steps))]
            row = {"device": device if device == "cpu" else torch.cuda.get_device_name(0), "batch_size": bs}
            # Build one model per breaker, then time their steps interleaved round by round and take
            # medians, so that drifts of a shared machine hit every variant alike.
            models = {}
            for breaker in args.breakers:
                torch.manual_seed(0)
                c = compose([f"experiment={args.experiment}", f"model.symbreak={breaker}",
                             f"train.compile={str(args.compile).lower()}", *args.override])
                models[breaker] = build_model(c, info).to(device)
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            samples = {k: [] for k in models}
            opts = {k: m.configure_optimizers() for k, m in models.items()}
            for r in range(args.warmup + args.train_steps):
                for k, m in models.items():
                    dt = time_training(m, [batches[r % len(batches)]], device, 0, 1, args.bf16, opt=opts[k])
                    if r >= args.warmup:
                        samples[k].append(dt)
            step_times = {k: float(np.median(v)) for k, v in samples.items()}
            first = args.breakers[0]
            model = models[first]
            row["params"] = sum(p.numel() for p in model.parameters())
            row["train_graphs_per_s"] = bs / step_times[first]
            row["peak_mem_mb"] = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
                                  else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            sb = args.sample_batch
            timed = None if args.full_sampling else args.sample_steps
            full = time_sampling(model, sb, device, model.T, timed, args.bf16)
            strided = time_sampling(model, sb, device, args.strided, timed, args.bf16)
            # sampling runs at --sample-batch whatever the training batch size of this row
            row["sample_batch"] = sb
            row[f"sample_s_per_1000_T{model.T}_at_batch{sb}"] = full * 1000 / sb
            row[f"sample_s_per_1000_strided{args.strided}_at_batch{sb}"] = strided * 1000 / sb
            row["sampling_extrapolated_from_steps"] = timed
            if args.nll:
                nll_batch = next(iter(DataLoader(train, batch_size=args.nll_batch)))
                row["nll_s_per_graph"] = time_nll(model, nll_batch, device, mixture_draws=args.nll_mixture)
            del models, opts
            row["step_s"] = step_times
            base = step_times[args.breakers[0]]
            row["breaker_overhead"] = {k: v / base for k, v in step_times.items()}
            result["runs"].append(row)
            print(json.dumps(row), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
