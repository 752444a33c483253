"""Sample molecules or graphs from a trained checkpoint.

    python scripts/sample.py checkpoint=outputs/qm9/<run>/checkpoints/last.ckpt num_samples=1000 steps=50

Writes to ``out_dir`` (default ``<run>/samples``): ``samples.smi`` (molecules: one SMILES per line, ``None``
for graphs that are not molecules) or ``samples.npz`` (graphs: edge lists in the format of the SPECTRE
files), ``samples.png`` (a grid of the first samples), and with ``chain_snapshots=k`` the snapshots
``chain_XX.png`` of the first chains. Option values and the checkpoint file are checked before the model
loads; a progress bar follows the reverse steps.
"""
from __future__ import annotations

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sympe.diffusion.runs.checkpoint_files import check_checkpoint_file
from sympe.diffusion.runs.options import ConfigError, user_errors
from sympe.diffusion.runs.schema import check_sample_config, register_configs

register_configs()  # every option and its default: sympe.diffusion.runs.schema.SampleConfig


@hydra.main(version_base="1.3", config_path="../configs/sample", config_name="sample")
@user_errors
def main(cfg: DictConfig) -> None:
    check_sample_config(cfg)
    ckpt = Path(check_checkpoint_file(cfg.checkpoint, "checkpoint"))

    import torch

    from sympe.datasets.molecules import MoleculeSpec
    from sympe.datasets.samples.writers import dense_to_class_lists, draw_grid, write_samples
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
    out = Path(cfg.out_dir) if cfg.out_dir else ckpt.resolve().parent.parent / "samples"
    gen = torch.Generator(device=device).manual_seed(int(cfg.seed))
    torch.manual_seed(int(cfg.seed))
    total = sampling_calls(model, int(cfg.num_samples), int(cfg.batch_size), cfg.steps)
    with network_call_progress(model.network, total, desc=f"sampling {cfg.num_samples} graphs", unit="net call"):
        res = model.sample(int(cfg.num_samples), batch_size=int(cfg.batch_size), n_nodes=cfg.n_nodes, steps=cfg.steps,
                           generator=gen, keep_chain=int(cfg.chain_snapshots), time_distortion=cfg.time_distortion)
    batches, chains = res if cfg.chain_snapshots else (res, None)
    graphs = [g for b in batches for g in dense_to_class_lists(b)]
    smiles = write_samples(out, graphs, info, relaxed=bool(cfg.relaxed), max_items=int(cfg.grid))
    summary = {"checkpoint": str(ckpt), "num_samples": len(graphs), "steps": cfg.steps or model.T,
               "time_distortion": cfg.time_distortion}
    if smiles is not None:
        valid = [s for s in smiles if s is not None]
        summary.update({"validity": len(valid) / max(1, len(smiles)),
                        "uniqueness": len(set(valid)) / max(1, len(valid)), "file": str(out / "samples.smi")})
    else:
        summary["file"] = str(out / "samples.npz")
    if chains:
        spec = MoleculeSpec(tuple(info.node_classes)) if info.is_molecular else None
        for k, snap in enumerate(chains[0]):
            draw_grid(out / f"chain_{k:02d}.png", dense_to_class_lists(snap), spec=spec, max_items=8)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
