"""Evaluate a checkpoint (test NLL + sample quality) or score a file of samples from any system.

    python scripts/evaluate.py checkpoint=outputs/qm9/<run>/checkpoints/last.ckpt num_samples=1000 steps=50
    python scripts/evaluate.py checkpoint=pretrained:qm9 num_samples=1000 steps=20 time_distortion=polydec
    python scripts/evaluate.py samples=digress_qm9.smi dataset=qm9       # or samples=generated.npz dataset=planar
    python scripts/evaluate.py checkpoint=... nll_conventions=[ours_plain,ours_plain_mix16_prior,digress] \
        nll_estimator=stratified leak_test_permutations=4 num_samples=0

The metrics are printed as one JSON object on the last line of stdout and written to ``metrics.json`` of a new folder
``<run>/eval/<time>-<id>/`` (or ``out_dir``, which must be empty unless ``overwrite=true``), or, for a samples file F,
to ``<F stem>.metrics.json`` beside it (a timestamped name when taken): earlier results are never replaced. Options,
the checkpoint file and the output location are checked before anything loads. Which metrics score a dataset's samples (molecules: FCD with
``fcd=auto|true|false``; SPECTRE graphs: the shipped benchmark unless ``reference=dataset``), how sample files are read
(``format=``), the exchangeable floor: sympe.datasets.evaluation, docs/metrics.md. The NLL (nats per graph, mean ±
s.e.) under each of ``nll_conventions`` (default: the checkpoint's ``model.eval.*`` / ``model.x0_kernel``, which
options override) and the leak test (``leak_test_permutations=K``): sympe.diffusion.likelihood.nll_section.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sympe.datasets.config import dataset_config, resolve_path
from sympe.datasets.evaluation import (breaking_bounds, check_scoring_options, checkpoint_splits, floor_of_test_split,
                                      sample_metrics, score_sample_file)
from sympe.diffusion.runs.checkpoint_files import check_checkpoint_file
from sympe.diffusion.runs.options import ConfigError, user_errors
from sympe.diffusion.runs.output_paths import evaluation_output, json_safe, write_new_json
from sympe.diffusion.runs.pretrained import default_output_parent, is_pretrained, resolve_checkpoint
from sympe.diffusion.runs.schema import check_evaluate_config, register_configs

register_configs()  # every option and its default: sympe.diffusion.runs.schema.EvaluateConfig

REPO = Path(__file__).resolve().parents[1]


def nll_report(model, splits: dict, cfg: DictConfig, device: str) -> dict:
    """The NLL section (sympe.diffusion.likelihood.nll_section) with the exchangeable floor of the same test graphs."""
    from sympe.diffusion.likelihood.nll_section import estimator_list, nll_section

    test = splits["test"][: int(cfg.limit_test_graphs)] if cfg.limit_test_graphs else splits["test"]
    estimators = estimator_list(cfg.nll_estimator)
    needed = estimators or int(cfg.leak_test_permutations)
    floor, summary = floor_of_test_split(splits, len(test)) if needed else (None, None)  # log|Aut| cached
    out = nll_section(model, test, conventions=list(cfg.nll_conventions or []) or None, estimators=estimators,
                      batch_size=int(cfg.batch_size), exact_graphs=cfg.exact_nll_graphs, seed=int(cfg.seed),
                      device=device, floor_per_graph=floor, leak_permutations=int(cfg.leak_test_permutations),
                      leak_estimator=cfg.leak_test_estimator, leak_graphs=cfg.leak_test_graphs)
    if summary is not None:
        out.update(summary.as_dict())
        print(f"[sympe] test set: {summary}", file=sys.stderr)
    if estimators:  # H and F(T) of a symmetry-breaking family, for this model's chain
        out.update(breaking_bounds(splits, **model.hparams["diffusion"], log=lambda s: print(s, file=sys.stderr)))
    return out

def evaluate_checkpoint(cfg: DictConfig, result: dict, out_dir: Path) -> None:
    """Test NLL and (``num_samples`` > 0) sample quality of ``cfg.checkpoint`` into ``result``; samples go to ``out_dir``."""
    import torch

    from sympe.datasets.samples.writers import dense_to_class_lists, write_samples
    from sympe.diffusion.runs.model import check_checkpoint_matches
    from sympe.diffusion.runs.progress import network_call_progress
    from sympe.diffusion.runs.training import load_for_inference, resolve_device, sampling_calls

    ckpt = Path(cfg.checkpoint)
    device = resolve_device(cfg.device)
    model = load_for_inference(str(ckpt), device)
    ev = {k: v for k, v in OmegaConf.to_container(cfg.model.eval).items() if v is not None}  # null: as checkpointed
    try:
        model.set_eval_options(**ev, x0_kernel=cfg.model.x0_kernel)
    except ValueError as exc:  # e.g. num_bins above this checkpoint's T, or mixture_draws with its digress_compat
        raise ConfigError(str(exc)) from None
    if cfg.steps is not None and cfg.steps > model.T:
        raise ConfigError(f"steps={cfg.steps} is not accepted: expected 1..{model.T} (the model's T) or null")
    data = model.hparams.get("dataset")
    splits = checkpoint_splits(data, resolve_path(cfg.data_root), ckpt, condition=model.condition)
    try:
        check_checkpoint_matches(str(ckpt), splits["train"].info)
    except ValueError as exc:  # e.g. dataset=smiles / graphs whose file changed since training
        raise ConfigError(f"{exc}; if the dataset's files changed since training, evaluate with the files it was "
                          "trained on") from None
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
        write_samples(out_dir, graphs, model.info, relaxed=bool(cfg.relaxed), fill_hydrogens=bool(cfg.fill_hydrogens))
        result.update({"num_samples": len(graphs), "sampling_steps": cfg.steps or model.T,
                       "time_distortion": cfg.time_distortion, **sample_metrics(
                           splits, generated=graphs, fill_hydrogens=bool(cfg.fill_hydrogens), reference=cfg.reference,
                           sbm_method=cfg.sbm_method, sbm_workers=int(cfg.sbm_workers), fcd=cfg.fcd, device=device)})


@hydra.main(version_base="1.3", config_path="../configs/evaluate", config_name="evaluate")
@user_errors
def main(cfg: DictConfig) -> None:
    check_evaluate_config(cfg)
    check_scoring_options(cfg.fcd, cfg.format)
    result, parent = {}, None
    if cfg.checkpoint is not None:
        if is_pretrained(cfg.checkpoint):
            result["pretrained"] = str(cfg.checkpoint)
        parent = default_output_parent(cfg.checkpoint, "eval")
        cfg.checkpoint = check_checkpoint_file(resolve_checkpoint(cfg.checkpoint), "checkpoint")  # or pretrained:<name>
    elif not Path(cfg.samples).is_file():
        raise ConfigError(f"samples={cfg.samples} is not a file")
    folder, metrics_file = evaluation_output(cfg.samples, cfg.out_dir, parent, bool(cfg.overwrite),
                                             int(cfg.num_samples) if cfg.checkpoint else 0)
    try:
        if cfg.samples is not None:
            from sympe.diffusion.runs.property_regressor import PropertyOracle

            name, params = dataset_config(REPO / "configs", cfg.dataset,
                                          OmegaConf.to_container(cfg.dataset_params) if cfg.dataset_params else {})
            result.update(score_sample_file(
                cfg.samples, name, params, resolve_path(cfg.data_root), label=cfg.dataset, format=cfg.format,
                column=cfg.column, header="auto" if cfg.header == "auto" else bool(cfg.header),
                atom_decoder=cfg.atom_decoder, device=cfg.device, fill_hydrogens=bool(cfg.fill_hydrogens),
                reference=cfg.reference, sbm_method=cfg.sbm_method, sbm_workers=int(cfg.sbm_workers), fcd=cfg.fcd,
                targets=cfg.targets, oracle=PropertyOracle(cfg.oracle) if cfg.oracle else None))
        else:
            evaluate_checkpoint(cfg, result, folder.path)
    except BaseException:
        if folder is not None:
            folder.remove_if_empty()
        raise
    clean = json_safe(result)  # strict JSON: an undefined s.e. (one graph) is null
    written = write_new_json(metrics_file, clean, overwrite=bool(cfg.overwrite))
    if folder is not None:
        folder.release()
    print(f"[sympe] metrics written to {written}", file=sys.stderr)
    print(json.dumps(clean, allow_nan=False))


if __name__ == "__main__":
    main()
