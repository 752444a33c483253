"""Sample molecules or graphs from a trained checkpoint.

    python scripts/sample.py checkpoint=outputs/qm9/<run>/checkpoints/last.ckpt num_samples=1000 steps=50
    python scripts/sample.py checkpoint=pretrained:qm9 num_samples=100 steps=20 time_distortion=polydec

Writes into a new folder ``<run>/samples/<YYYY-mm-dd_HH-MM-SS>-<id>/`` (``outputs/pretrained-<name>/samples/...`` for
a shipped model, sympe.diffusion.runs.pretrained; or ``out_dir``, which must be empty
unless ``overwrite=true``; never replacing earlier samples): ``samples.smi`` (molecules: one SMILES per line,
``None`` for graphs that are not molecules) or ``samples.npz`` (graphs: edge lists in the format of the SPECTRE
files), ``samples.png`` (a grid of the first samples), ``sampling.json`` (the summary printed last), and with
``chain_snapshots=k`` the snapshots ``chain_XX.png`` of the first chains. Option values, the checkpoint file and
the output folder (writable, free space) are checked before the model loads; a progress bar follows the reverse
steps. Ctrl-C writes the batches already sampled, marked ``"partial": true`` in ``sampling.json``, and exits 130.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sympe.diffusion.runs.checkpoint_files import check_checkpoint_file
from sympe.diffusion.runs.options import ConfigError, user_errors
from sympe.diffusion.runs.output_paths import claim_folder
from sympe.diffusion.runs.pretrained import default_output_parent, resolve_checkpoint
from sympe.diffusion.runs.schema import check_sample_config, register_configs

register_configs()  # every option and its default: sympe.diffusion.runs.schema.SampleConfig


@hydra.main(version_base="1.3", config_path="../configs/sample", config_name="sample")
@user_errors
def main(cfg: DictConfig) -> None:
    check_sample_config(cfg)
    ckpt = Path(check_checkpoint_file(resolve_checkpoint(cfg.checkpoint), "checkpoint"))  # or pretrained:<name>
    out = claim_folder(cfg.out_dir, default_output_parent(cfg.checkpoint, "samples"), "out_dir", bool(cfg.overwrite),
                       need_bytes=1_000_000 + 2_000 * int(cfg.num_samples), what=f"{cfg.num_samples} samples")
    try:
        _sample(cfg, ckpt, out.path)
    except BaseException:
        out.remove_if_empty()
        raise
    finally:
        out.release()


def _sample(cfg: DictConfig, ckpt: Path, out: Path) -> None:
    import torch

    from sympe.datasets.molecules import MoleculeSpec
    from sympe.datasets.samples.writers import dense_to_class_lists, draw_grid, write_samples
    from sympe.diffusion.files import atomic_write_json
    from sympe.diffusion.process.sampling import SamplingInterrupted
    from sympe.diffusion.runs.progress import network_call_progress
    from sympe.diffusion.runs.training import load_for_inference, resolve_device, sampling_calls

    device = resolve_device(cfg.device)
    model = load_for_inference(str(ckpt), device)
    info = model.info
    if cfg.n_nodes is not None and cfg.n_nodes > info.max_nodes:
        raise ConfigError(f"n_nodes={cfg.n_nodes} is not accepted: this model was trained on {info.name} with at most "
                          f"{info.max_nodes} nodes per graph")
    if cfg.steps is not None and cfg.steps > model.T:
        raise ConfigError(f"steps={cfg.steps} is not accepted: expected 1..{model.T} (the model's T) or null")
    from sympe.datasets.conditions.targets import sampling_condition

    condition = OmegaConf.to_container(cfg.condition) if OmegaConf.is_config(cfg.condition) else cfg.condition
    targets, y = sampling_condition(model.condition, condition, float(cfg.guidance), int(cfg.num_samples))
    oracle = None
    if cfg.oracle is not None:  # scores targets on dataset columns (QM9's mu, homo); loaded before sampling
        from sympe.diffusion.runs.property_regressor import PropertyOracle

        oracle = PropertyOracle(cfg.oracle)
    num = int(cfg.num_samples) if targets is None else len(targets)
    print(f"[sympe] writing into {out}", file=sys.stderr, flush=True)
    gen = torch.Generator(device=device).manual_seed(int(cfg.seed))
    torch.manual_seed(int(cfg.seed))
    total = sampling_calls(model, num, int(cfg.batch_size), cfg.steps, guided=y is not None and cfg.guidance != 0)
    interrupted = None
    try:
        with network_call_progress(model.network, total, desc=f"sampling {num} graphs", unit="net call"):
            res = model.sample(num, batch_size=int(cfg.batch_size), n_nodes=cfg.n_nodes, steps=cfg.steps,
                               generator=gen, keep_chain=int(cfg.chain_snapshots), time_distortion=cfg.time_distortion,
                               condition=y, guidance=float(cfg.guidance))
    except SamplingInterrupted as exc:
        interrupted, res = exc, (exc.batches, []) if cfg.chain_snapshots else exc.batches
    batches, chains = res if cfg.chain_snapshots else (res, None)
    graphs = [g for b in batches for g in dense_to_class_lists(b)]
    summary = {"checkpoint": str(ckpt), "num_samples": len(graphs), "steps": cfg.steps or model.T,
               "time_distortion": cfg.time_distortion, "seed": int(cfg.seed), "partial": interrupted is not None}
    if targets is not None:
        summary.update({"condition": condition,
                        "guidance": float(cfg.guidance), "targets_file": str(out / "targets.csv")})
    if graphs:
        smiles = write_samples(out, graphs, info, relaxed=bool(cfg.relaxed), max_items=int(cfg.grid))
        if targets is not None:
            _score_targets(model.condition, batches, smiles, graphs, out, summary, oracle)
        if smiles is not None:
            valid = [s for s in smiles if s is not None]
            summary.update({"validity": len(valid) / max(1, len(smiles)),
                            "uniqueness": len(set(valid)) / max(1, len(valid)), "file": str(out / "samples.smi")})
        else:
            summary["file"] = str(out / "samples.npz")
    if chains:
        spec = MoleculeSpec.from_info(info) if info.is_molecular else None
        for k, snap in enumerate(chains[0]):
            draw_grid(out / f"chain_{k:02d}.png", dense_to_class_lists(snap), spec=spec, max_items=8)
    if interrupted is not None and not graphs:
        print("[sympe] interrupted before the first batch was finished: nothing was sampled", file=sys.stderr)
        raise SystemExit(130)
    if interrupted is not None:
        summary["num_requested"] = interrupted.num_requested
        atomic_write_json(out / "sampling.json", summary)
        print(f"[sympe] interrupted: wrote the {len(graphs)} of {interrupted.num_requested} graphs sampled before "
              f"Ctrl-C to {out} (partial: graphs are sampled largest first, so their sizes are biased)",
              file=sys.stderr, flush=True)
        raise SystemExit(130)
    atomic_write_json(out / "sampling.json", summary)
    print(json.dumps(summary))


def _score_targets(spec, batches, smiles, graphs, out: Path, summary: dict, oracle) -> None:
    from sympe.datasets.conditions.scoring import score_targets
    from sympe.datasets.conditions.targets import write_targets_csv

    rows = [r for b in batches for r in spec.decode(b.y)]  # the samples' order (batched by size)
    write_targets_csv(out / "targets.csv", rows, spec.names)
    summary["condition_metrics"] = score_targets(spec, rows, smiles, graphs, oracle)


if __name__ == "__main__":
    main()
