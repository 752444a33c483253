"""Evaluate a checkpoint (test NLL + sample quality) or score a file of samples from any system.

    python scripts/evaluate.py checkpoint=outputs/qm9/<run>/checkpoints/last.ckpt num_samples=1000 steps=50
    python scripts/evaluate.py samples=digress_qm9.smi dataset=qm9
    python scripts/evaluate.py samples=generated.npz dataset=planar

The metrics are printed as one JSON object on the last line of stdout and written to ``metrics.json``. Option
values and the checkpoint file are checked before anything loads; progress bars follow the NLL and sampling
loops. Molecules: validity (strict and relaxed), uniqueness, novelty, connected fraction, atom / molecule
stability (explicit H only), V.U.N., and the Fréchet ChemNet Distance (``fcd``, Preuer et al. 2018,
dimensionless) of the valid samples to the dataset's test split (``fcd_reference``, the set DiGress-style papers
compare with; its ChemNet statistics are cached beside the processed split, see sympe.datasets.metrics.fcd;
``fcd=auto|true|false``). Graphs: MMD² of degree / clustering / orbit / spectrum with their ratios to the
train-vs-test MMD, validity (planar / SBM) with the same validity of the real test graphs, uniqueness, novelty,
V.U.N.; planar / SBM / comm20 are scored against the shipped SPECTRE benchmark graphs (DiGress's split) unless
reference=dataset. Sample files are read by sympe.datasets.samples.readers (format detected from the content or
given with format=); anything that needs saying is in the ``warnings`` list. The NLL is in nats per graph, mean
± standard error over the test graphs, under each convention of ``nll_conventions`` (default: the checkpoint's
options, changed with ``model.eval.*`` / ``model.x0_kernel``), with the exchangeable floor of the same graphs
beside it and, with ``leak_test_permutations=K``, the node-order leak test; keys name the convention
(``nll_<convention>_<estimator>``, see sympe.diffusion.likelihood.nll_section).

    python scripts/evaluate.py checkpoint=... model.eval.digress_compat=true    # DiGress's formula
    python scripts/evaluate.py checkpoint=... model.x0_kernel=reweighted        # sample + score that model
    python scripts/evaluate.py checkpoint=... nll_conventions=[ours_plain,ours_plain_mix16,digress] \
        nll_estimator=stratified leak_test_permutations=4 num_samples=0
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sympe.datasets.config import dataset_config, dataset_params, resolve_path
from sympe.datasets.evaluation import sample_metrics
from sympe.datasets.registry import build_splits
from sympe.diffusion.runs.checkpoint_files import check_checkpoint_file
from sympe.diffusion.runs.options import ConfigError, user_errors
from sympe.diffusion.runs.schema import check_evaluate_config, register_configs

register_configs()  # every option and its default: sympe.diffusion.runs.schema.EvaluateConfig

REPO = Path(__file__).resolve().parents[1]


def read_samples(path: Path, info, cfg: DictConfig):
    """(graphs, smiles_lines, how it was read); exactly one of graphs / smiles_lines is not None."""
    from sympe.datasets.samples.readers import digress_atom_decoder
    from sympe.datasets.samples.readers import read_samples as read

    molecular = True if info is None else info.is_molecular  # info None: MOSES, scored from SMILES only
    decoder = tuple(cfg.atom_decoder) if cfg.atom_decoder else (
        digress_atom_decoder(info.node_classes) if info is not None and info.is_molecular else None)
    header = "auto" if cfg.header == "auto" else bool(cfg.header)
    samples = read(path, molecular, format=cfg.format, column=cfg.column, header=header, atom_decoder=decoder)
    return samples.graphs, samples.smiles, {"samples_format": samples.format, "samples_notes": samples.notes}


def nll_report(model, splits: dict, cfg: DictConfig, device: str) -> dict:
    """The NLL section (sympe.diffusion.likelihood.nll_section) with the exchangeable floor of the same test graphs."""
    import torch

    from sympe.datasets.floor.exchangeable import dataset_log_aut, floor_per_graph
    from sympe.diffusion.likelihood.nll_section import nll_section

    full = splits["test"]
    test = full[: int(cfg.limit_test_graphs)] if cfg.limit_test_graphs else full
    estimators = {"both": ["mc", "exact"], "all": ["mc", "stratified", "exact"], "none": []}.get(
        cfg.nll_estimator, [cfg.nll_estimator])
    floor = None
    if estimators or int(cfg.leak_test_permutations):
        log_aut = dataset_log_aut(full)  # cached beside the processed split
        sizes = torch.tensor([int(full[i].num_nodes) for i in range(len(test))], dtype=torch.long)
        floor = floor_per_graph(sizes, log_aut[: len(test)], splits["train"].info.n_nodes_tensor())
    conventions = list(cfg.nll_conventions) if cfg.nll_conventions else None
    out = nll_section(model, test, conventions=conventions, estimators=estimators, batch_size=int(cfg.batch_size),
                      exact_graphs=cfg.exact_nll_graphs, seed=int(cfg.seed), device=device, floor_per_graph=floor,
                      leak_permutations=int(cfg.leak_test_permutations), leak_estimator=cfg.leak_test_estimator,
                      leak_graphs=cfg.leak_test_graphs)
    if floor is not None:
        from sympe.datasets.floor.exchangeable import summarize

        fl = summarize(floor, log_aut[: len(test)])
        out.update(fl.as_dict())
        print(f"[sympe] test set: {fl}", file=sys.stderr)
    return out


def apply_model_overrides(model, cfg: DictConfig) -> None:
    """``model.eval.*`` and ``model.x0_kernel`` overrides (null = as in the checkpoint) applied to a loaded model."""
    ev = {k: v for k, v in OmegaConf.to_container(cfg.model.eval).items() if v is not None}
    try:
        model.set_eval_options(**ev, x0_kernel=cfg.model.x0_kernel)
    except ValueError as exc:  # e.g. num_bins above this checkpoint's T, or mixture_draws with its digress_compat
        raise ConfigError(str(exc)) from None


@hydra.main(version_base="1.3", config_path="../configs/evaluate", config_name="evaluate")
@user_errors
def main(cfg: DictConfig) -> None:
    check_evaluate_config(cfg)
    if cfg.fcd in (True, "true"):
        from sympe.datasets.metrics.fcd import FCD_INSTALL, fcd_torch_missing

        if fcd_torch_missing():
            raise ConfigError(f"fcd=true needs the optional package fcd-torch, which is not installed: {FCD_INSTALL}, "
                              "or pass fcd=auto (computed when installed) or fcd=false")
    for label in cfg.nll_conventions or []:
        from sympe.diffusion.likelihood.nll_section import parse_convention

        try:
            parse_convention(str(label))
        except ValueError as exc:
            raise ConfigError(f"nll_conventions: {exc}") from None
    if cfg.checkpoint is not None:
        check_checkpoint_file(cfg.checkpoint, "checkpoint")
    if (cfg.checkpoint is None) == (cfg.samples is None):
        raise ConfigError("give exactly one of checkpoint=PATH (evaluate a model) or samples=FILE dataset=NAME "
                         "(score a sample file)")
    result: dict = {}
    if cfg.samples is not None:
        if cfg.dataset is None:
            raise ConfigError("samples=FILE needs dataset=NAME (qm9, qm9_h, moses, planar, sbm, comm20, symmetric)")
        from sympe.datasets.samples.readers import FORMATS

        if not Path(cfg.samples).is_file():
            raise ConfigError(f"samples={cfg.samples} is not a file")
        if cfg.format not in ("auto", *FORMATS):
            raise ConfigError(f"format={cfg.format} is not accepted: expected one of auto, {', '.join(FORMATS)}")
        if cfg.header not in ("auto", True, False):
            raise ConfigError(f"header={cfg.header} is not accepted: expected one of auto, true, false")
        name, params = dataset_config(REPO / "configs", cfg.dataset,
                                      OmegaConf.to_container(cfg.dataset_params) if cfg.dataset_params else {})
        # MOSES is scored from its CSVs only (sympe.datasets.metrics.moses_metrics), never from processed graphs
        splits = None if name == "moses" else build_splits(name, resolve_path(cfg.data_root), **params)
        path = Path(cfg.samples)
        info = None if splits is None else splits["train"].info
        graphs, lines, how = read_samples(path, info, cfg)
        result.update({"samples": str(path), "dataset": cfg.dataset, "num_samples": len(graphs or lines), **how})
        from sympe.diffusion.runs.training import resolve_device

        if splits is None:  # MOSES's own metric suite (sympe.datasets.metrics.moses_metrics), on SMILES
            from sympe.datasets.metrics.moses_metrics import evaluate_moses_samples

            if lines is None:
                raise ConfigError(f"samples={path}: dataset=moses is scored on SMILES (MOSES's metrics are defined on "
                                 f"molecules as strings); this file was read as {how['samples_format']!r} graphs")
            result.update(evaluate_moses_samples(lines, params, resolve_path(cfg.data_root), device=cfg.device))
        else:
            result.update(sample_metrics(splits, generated=graphs, smiles_lines=lines,
                                         fill_hydrogens=bool(cfg.fill_hydrogens), reference=cfg.reference,
                                         sbm_method=cfg.sbm_method, sbm_workers=int(cfg.sbm_workers),
                                         fcd=cfg.fcd, device=resolve_device(cfg.device)))
        out_dir = Path(cfg.out_dir) if cfg.out_dir else path.resolve().parent
    else:
        import torch

        from sympe.datasets.samples.writers import dense_to_class_lists, draw_grid, graphs_to_smiles, save_graphs_npz, write_lines
        from sympe.diffusion.runs.progress import network_call_progress
        from sympe.diffusion.runs.training import load_for_inference, resolve_device, sampling_calls

        ckpt = Path(cfg.checkpoint)
        device = resolve_device(cfg.device)
        model = load_for_inference(str(ckpt), device)
        apply_model_overrides(model, cfg)
        if cfg.steps is not None and cfg.steps > model.T:
            raise ConfigError(f"steps={cfg.steps} is not accepted: expected 1..{model.T} (the model's T) or null")
        data = model.hparams.get("dataset")
        if not data:
            raise ValueError(f"{ckpt} does not record its dataset config; use samples= mode with dataset=NAME")
        splits = build_splits(data["name"], resolve_path(cfg.data_root), **dataset_params(data["params"]))
        from sympe.diffusion.runs.model import check_checkpoint_matches

        check_checkpoint_matches(str(ckpt), splits["train"].info)
        out_dir = Path(cfg.out_dir) if cfg.out_dir else ckpt.resolve().parent.parent / "eval"
        torch.manual_seed(int(cfg.seed))
        result.update({"checkpoint": str(ckpt), "dataset": data["name"], "dataset_params": data["params"],
                       "x0_kernel": model.x0_kernel, "num_draws": model.num_draws})
        result.update(nll_report(model, splits, cfg, device))
        if int(cfg.num_samples) > 0:
            gen = torch.Generator(device=device).manual_seed(int(cfg.seed))
            total = sampling_calls(model, int(cfg.num_samples), int(cfg.sample_batch_size), cfg.steps)
            with network_call_progress(model.network, total, desc=f"sampling {cfg.num_samples} graphs", unit="net call"):
                batches = model.sample(int(cfg.num_samples), batch_size=int(cfg.sample_batch_size), steps=cfg.steps,
                                       generator=gen, time_distortion=cfg.time_distortion)
            graphs = [g for b in batches for g in dense_to_class_lists(b)]
            info = model.info
            spec = None
            out_dir.mkdir(parents=True, exist_ok=True)
            if info.is_molecular:
                from sympe.datasets.molecules import MoleculeSpec

                spec = MoleculeSpec(tuple(info.node_classes))
                smiles = graphs_to_smiles(graphs, spec, relaxed=bool(cfg.relaxed), fill_hydrogens=bool(cfg.fill_hydrogens))
                write_lines(out_dir / "samples.smi", smiles)
            else:
                smiles = None
                save_graphs_npz(out_dir / "samples.npz", graphs)
            draw_grid(out_dir / "samples.png", graphs, spec=spec,
                      valid=None if smiles is None else [s is not None for s in smiles])
            result["num_samples"] = len(graphs)
            result["sampling_steps"] = cfg.steps or model.T
            result["time_distortion"] = cfg.time_distortion
            result.update(sample_metrics(splits, generated=graphs, fill_hydrogens=bool(cfg.fill_hydrogens),
                                         reference=cfg.reference, sbm_method=cfg.sbm_method,
                                         sbm_workers=int(cfg.sbm_workers), fcd=cfg.fcd, device=device))
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = json.loads(json.dumps(result, default=lambda v: None if isinstance(v, float) and math.isnan(v) else str(v)))
    tmp = out_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(clean, indent=1))
    os.replace(tmp, out_dir / "metrics.json")
    print(json.dumps(clean))


if __name__ == "__main__":
    main()
