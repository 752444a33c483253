"""Guidance-weight sweep of a conditional checkpoint: MAE of the achieved property against validity, per weight w.

    python scripts/guidance_sweep.py --checkpoint outputs/qm9/<run>/checkpoints/last.ckpt --property logp \
        --weights 0 1 2 4 --num-samples 1000 --steps 20 --time-distortion polydec --baseline pretrained:qm9

Targets are drawn from the test split's values of the properties (``--seed``); every sampler makes one graph per
target: the conditional model at each ``--weights`` w (classifier-free guidance, sympe.diffusion.process.guidance),
the same network given the null condition (the unconditional model it learned by condition dropout), and each
``--baseline`` checkpoint (a separately trained unconditional model, e.g. ``pretrained:qm9``). Writes ``sweep.json``,
``sweep.md`` (the table) and ``sweep.png`` (MAE against validity) into a new folder ``<run>/guidance/<time>-<id>``
(or ``--out``, which must be new or empty). Library: sympe.datasets.conditions.sweep.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from sympe.diffusion.process.discrete_process import TIME_DISTORTIONS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a conditional checkpoint (model.condition=[...])")
    p.add_argument("--property", action="append", required=True, help="a property of the model (repeat for several)")
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0], help="guidance weights w")
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=None, help="reverse steps (default: all T)")
    p.add_argument("--time-distortion", default="identity", choices=sorted(TIME_DISTORTIONS))
    p.add_argument("--baseline", action="append", default=[], help="an unconditional checkpoint to compare with")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", default=os.environ.get("SYMPE_DATA_ROOT", "data"))
    p.add_argument("--out", default=None, help="output folder (new or empty)")
    a = p.parse_args(argv)
    if a.num_samples < 1 or a.batch_size < 1 or (a.steps is not None and a.steps < 1):
        p.error("--num-samples, --batch-size and --steps must be >= 1")
    if a.steps is None and a.time_distortion != "identity":
        p.error("--time-distortion spaces strided steps: give --steps K")
    if not all(math.isfinite(w) for w in a.weights):
        p.error(f"--weights must be finite numbers, got {a.weights}")
    return a


def main(argv=None) -> int:
    from sympe.diffusion.runs.checkpoint_files import check_checkpoint_file
    from sympe.diffusion.runs.options import user_errors
    from sympe.diffusion.runs.output_paths import claim_folder
    from sympe.diffusion.runs.pretrained import default_output_parent, resolve_checkpoint

    a = parse_args(argv)

    @user_errors
    def run():
        ckpt = check_checkpoint_file(resolve_checkpoint(a.checkpoint), "--checkpoint")
        baselines = [check_checkpoint_file(resolve_checkpoint(b), "--baseline") for b in a.baseline]
        out = claim_folder(a.out, default_output_parent(a.checkpoint, "guidance"), "--out",
                           need_bytes=1_000_000, what="the sweep")
        try:
            _sweep(a, ckpt, baselines, a.baseline, out.path)
        except BaseException:
            out.remove_if_empty()
            raise
        finally:
            out.release()

    run()
    return 0


def _sweep(a, ckpt, baselines, baseline_names, out: Path) -> None:
    import torch

    from sympe.datasets.conditions import available_properties, split_values
    from sympe.datasets.conditions.sweep import sweep, sweep_plot, sweep_table
    from sympe.datasets.conditions.targets import draw_split_targets
    from sympe.datasets.evaluation import checkpoint_splits
    from sympe.datasets.molecules import MoleculeSpec
    from sympe.datasets.samples.writers import dense_to_class_lists, graphs_to_smiles
    from sympe.diffusion.conditioning import ConditionError
    from sympe.diffusion.files import atomic_write_json, atomic_write_text
    from sympe.diffusion.runs.training import load_for_inference, resolve_device

    device = resolve_device(a.device)
    model = load_for_inference(str(ckpt), device)
    spec = model.condition
    if a.steps is not None and a.steps > model.T:
        raise ConditionError(f"--steps {a.steps}: expected 1..{model.T} (the model's T)")
    if spec is None:
        raise ConditionError(f"--checkpoint {ckpt} is unconditional: a sweep needs a model trained with model.condition")
    for name in a.property:
        spec.property(name)  # one line naming the model's properties otherwise
    test = checkpoint_splits(model.hparams.get("dataset"), a.data_root, ckpt)["test"]
    values = {n: split_values(test, n) for n in a.property}
    targets = draw_split_targets(values, a.property, a.num_samples, a.seed)
    mol_spec = MoleculeSpec.from_info(model.info) if model.info.is_molecular else None

    def decode(m, batches):
        graphs = [g for b in batches for g in dense_to_class_lists(b)]
        return (graphs_to_smiles(graphs, mol_spec) if mol_spec else None), graphs

    def conditional(rows, w):
        gen = torch.Generator(device=device).manual_seed(a.seed)
        batches = model.sample(len(rows), batch_size=a.batch_size, steps=a.steps, generator=gen,
                               time_distortion=a.time_distortion, condition=spec.encode(rows, strict=False), guidance=w)
        return ([r for b in batches for r in spec.decode(b.y)], *decode(model, batches))

    def unconditional(m):
        def fn(num):
            gen = torch.Generator(device=device).manual_seed(a.seed)
            return decode(m, m.sample(num, batch_size=a.batch_size, steps=a.steps, generator=gen,
                                      time_distortion=a.time_distortion))
        return fn

    samplers = {"null condition (same network)": unconditional(model)}
    for name, path in zip(baseline_names, baselines):
        samplers[f"unconditional {name}"] = unconditional(load_for_inference(str(path), device))
    props = {n: available_properties(test)[n] for n in a.property}
    tolerances = {n: spec.property(n).tolerance for n in a.property}
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    log(f"[sympe] writing into {out}; {a.num_samples} targets of {a.property} drawn from the test split")
    result = sweep(conditional, samplers, targets, a.weights, props, tolerances, log=log)
    result.update({"checkpoint": str(ckpt), "baselines": [str(b) for b in baselines], "properties": a.property,
                   "num_samples": a.num_samples, "steps": a.steps or model.T, "time_distortion": a.time_distortion,
                   "seed": a.seed, "targets": "test split values, drawn uniformly with replacement"})
    atomic_write_json(out / "sweep.json", result)
    table = sweep_table(result, a.property)
    atomic_write_text(out / "sweep.md", table + "\n")
    sweep_plot(out / "sweep.png", result, a.property)
    print(table)


if __name__ == "__main__":
    sys.exit(main())
