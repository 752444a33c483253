"""Speed and memory benchmark of the training step and the sampler; prints one JSON object.

    python scripts/benchmark.py                                   # qm9 (no H) config, CPU (and CUDA if present)
    python scripts/benchmark.py --device cuda --batch-sizes 64 256 --bf16 --compile
    python scripts/benchmark.py --breakers none noise sympe --train-steps 20

Measured, for each device and batch size, with the model of ``experiment=qm9`` (9 layers, DiGress's widths,
``features=all``, molecular features) on real QM9 training batches:

* ``train_graphs_per_s``: graphs per second of full training steps (noise, features, breaker, forward,
  backward, AdamW step), after warm-up steps that are not timed;
* ``sample_s_per_1000_T{T}`` and ``sample_s_per_1000_strided{K}``: seconds to sample 1000 graphs with all T
  reverse steps and with K strided steps. With ``--sample-steps S`` (default) only S reverse steps are timed
  and the figure is extrapolated linearly (each step costs the same); ``--full-sampling`` times the whole run;
* ``peak_mem_mb``: peak CUDA memory of the training step (torch.cuda.max_memory_allocated), or the peak
  resident set size of the process on CPU (an upper bound that includes Python and the dataset);
* ``params``: parameter count; ``breaker_overhead``: step time with each symmetry breaker / step time without
  (medians of steps timed interleaved, one step of each variant per round, on the same batches).
  Peak memory is that of all variants' models together on CPU.
* ``nll_s_per_graph`` (with ``--nll``): seconds of one NLL evaluation per graph (the first breaker's model,
  ``--nll-batch`` graphs) for the ``mc``, ``stratified`` and ``exact`` estimators and the mixture bound with
  K = 4 and 16 draws (``mixture4_mc``, ``mixture16_mc``); see :func:`time_nll`.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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

    from sympe.diffusion.sampler import reverse_chain, sample_graphs, sample_n_nodes

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
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from common import build_model, build_splits_from_cfg
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
            row[f"sample_s_per_1000_T{model.T}"] = full * 1000 / sb
            row[f"sample_s_per_1000_strided{args.strided}"] = strided * 1000 / sb
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
