"""sympe.diffusion.runs.schema: the typed configs hold every default once, and a bad value fails at once with one
line naming the option, the value and the accepted values."""
import dataclasses

import pytest
from omegaconf import OmegaConf

from sympe.diffusion.runs.model import DiscreteDiffusion, upgrade_hparams
from sympe.diffusion.runs.options import ConfigError
from sympe.diffusion.runs.schema import (CONFIG_DIR, FREE_ON_RESUME, NETWORK_KEYS, EvaluateConfig, InferenceOverrides,
                                         ModelConfig, SampleConfig, TrainConfig, build, check_model_config,
                                         check_train_config, compose_config, defaults, model_arguments)

TINY = ["dataset=symmetric", "model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
        "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
        "model.diffusion.T=20", "model.features=cycles", "train.batch_size=8"]


def make_cfg(tmp_path, *overrides):
    return compose_config([*TINY, f"paths.data_root={tmp_path / 'data'}", *overrides])


# ---------------------------------------------------------------------- option values
@pytest.mark.parametrize("override, message", [
    ("train.batch_size=0", "train.batch_size=0 is not accepted: expected an integer >= 1"),
    ("train.max_steps=abc", "train.max_steps=abc is not accepted: expected an integer >= 1 or -1"),
    ("train.max_steps=0", "train.max_steps=0 is not accepted"),
    ("train.ema_decay=1.5", "train.ema_decay=1.5 is not accepted: expected a number in [0, 1)"),
    ("train.logger=wandb", "train.logger=wandb is not accepted: expected one of csv, tensorboard, both"),
    ("train.max_time=2h", 'train.max_time=2h is not accepted: expected null or a duration "DD:HH:MM:SS"'),
    ("train.val_check_interval=2.5", "train.val_check_interval=2.5 is not accepted"),
    ("train.lr=nan", "train.lr=nan is not accepted: expected a number in (0, inf)"),
    ("train.lr=inf", "train.lr=inf is not accepted"),
    ("train.weight_decay=-inf", "train.weight_decay=-inf is not accepted"),
    ("seed=-1", "seed=-1 is not accepted: expected an integer >= 0 <= 4294967295 (random seed)"),
    ("seed=99999999999999999999", "seed=99999999999999999999 is not accepted"),
])
def test_bad_train_values_name_the_option(tmp_path, override, message):
    with pytest.raises(ConfigError) as err:
        check_train_config(make_cfg(tmp_path, override))
    assert message in str(err.value)


@pytest.mark.parametrize("override, message", [
    ("model.n_layers=0", "model.n_layers=0 is not accepted"),
    ("model.symbreak=magic", "model.symbreak=magic is not accepted: expected one of none, noise, sympe_nodes, sympe"),
    ("model.features=lots", "model.features=lots is not accepted: expected one of all, cycles"),
    ("model.diffusion.T=abc", "model.diffusion.T=abc is not accepted: expected an integer >= 1"),
    ("model.diffusion.transition=teleport", "model.diffusion.transition=teleport"),
    ("model.hidden_dims.n_head=3", "model.hidden_dims.n_head=3 must divide dx=16"),
    ("model.x0_kernel=bogus", "model.x0_kernel=bogus is not accepted: expected one of plain, reweighted"),
    ("model.eval.mixture_draws=-1", "model.eval.mixture_draws=-1 is not accepted"),
    ("model.eval.num_bins=0", "model.eval.num_bins=0 is not accepted"),
    ("model.eval.num_bins=100000", "model.eval.num_bins=100000 is not accepted"),
    ("model.train.mixture_draws=-2", "model.train.mixture_draws=-2 is not accepted"),
    ("model.train.weighting=foo", "model.train.weighting=foo is not accepted: expected one of likelihood, digress"),
    ("model.eval.mixture_draws=2 model.eval.digress_compat=true", "cannot be combined"),
])
def test_bad_model_values_name_the_option(tmp_path, override, message):
    with pytest.raises(ConfigError) as err:
        check_model_config(make_cfg(tmp_path, *override.split()))
    assert message in str(err.value)


def test_default_model_config_passes_the_checks(tmp_path):
    check_model_config(make_cfg(tmp_path))


@pytest.mark.parametrize("model, message", [
    ({"x0_kernel": "bogus", "eval": {}}, "model.x0_kernel=bogus is not accepted"),
    ({"x0_kernel": None, "eval": {"num_bins": 0}}, "model.eval.num_bins=0 is not accepted"),
    ({"x0_kernel": None, "eval": {"digress_compat": "yes"}}, "model.eval.digress_compat=yes is not accepted"),
    ({"x0_kernel": None, "eval": {"mixture_draws": 4, "num_draws": 2}}, "cannot be combined"),
])
def test_evaluate_model_overrides_are_checked(model, message):
    build(InferenceOverrides, {"x0_kernel": None, "eval": {"digress_compat": None, "num_draws": None,
                                                           "mixture_draws": None, "num_bins": None}})  # all null: as trained
    with pytest.raises(ConfigError) as err:
        build(InferenceOverrides, model)
    assert message in str(err.value)


@pytest.mark.parametrize("rules, values, message", [
    (SampleConfig, {"num_samples": 0}, "num_samples=0 is not accepted: expected an integer >= 1"),
    (SampleConfig, {"num_samples": -3}, "num_samples=-3 is not accepted: expected an integer >= 1"),
    (SampleConfig, {"n_nodes": "abc"}, "n_nodes=abc is not accepted: expected an integer >= 1 or null"),
    (SampleConfig, {"device": "gpu0"}, "device=gpu0 is not accepted"),
    (EvaluateConfig, {"num_samples": -1}, "num_samples=-1 is not accepted: expected an integer >= 0"),
    (EvaluateConfig, {"nll_estimator": "guess"}, "nll_estimator=guess is not accepted: expected one of mc, stratified, exact"),
    (SampleConfig, {"time_distortion": "sqrt"}, "time_distortion=sqrt is not accepted: expected one of identity, "),
    (EvaluateConfig, {"time_distortion": 3}, "time_distortion=3 is not accepted: expected one of identity, "),
])
def test_bad_sample_and_evaluate_values_name_the_option(rules, values, message):
    with pytest.raises(ConfigError) as err:
        build(rules, values, "")
    assert message in str(err.value)


# ---------------------------------------------------------------------- one source for every default
def test_composed_groups_are_the_dataclass_defaults():
    cfg = compose_config([])
    assert OmegaConf.to_container(cfg.model) == defaults(ModelConfig)
    assert OmegaConf.to_container(cfg.train) == defaults(TrainConfig)
    sample = OmegaConf.to_container(compose_config(["checkpoint=x.ckpt"], "sample"))
    assert sample == {**defaults(SampleConfig), "checkpoint": "x.ckpt"}
    evaluate = compose_config([], "evaluate")
    assert set(evaluate) == set(defaults(EvaluateConfig)) and evaluate.fcd == "auto" and evaluate.model.x0_kernel is None


def test_presets_only_override():
    """configs/train/digress.yaml changes the budget only; an experiment preset changes what it names."""
    digress = compose_config(["train=digress"]).train
    changed = {k for k, v in OmegaConf.to_container(digress).items() if v != defaults(TrainConfig)[k]}
    assert changed == {"max_steps", "val_check_interval", "limit_val_batches"}
    qm9_h = compose_config(["experiment=qm9_h"])
    assert qm9_h.model.n_layers == 7 and qm9_h.train.batch_size == 512 and qm9_h.model.diffusion.T == ModelConfig().diffusion.T


def test_no_yaml_repeats_a_model_or_train_default():
    """The presets under configs/ never restate the typed defaults' files (configs/model, configs/train/default)."""
    assert not (CONFIG_DIR / "model").exists() or not list((CONFIG_DIR / "model").glob("*.yaml"))
    assert not (CONFIG_DIR / "train" / "default.yaml").exists()


def test_network_keys_are_the_denoiser_arguments():
    import inspect

    from sympe.diffusion.nn.denoiser import DenoisingNetwork

    # condition_dim is the width of the spec fitted on the train split (model.condition), not an option
    params = set(inspect.signature(DenoisingNetwork).parameters) - {"self", "info", "T", "condition_dim"}
    assert set(NETWORK_KEYS) == params
    assert "condition" not in NETWORK_KEYS and "condition_dropout" not in NETWORK_KEYS
    assert FREE_ON_RESUME == ("model.recompute_attention",)


def test_model_arguments_complete_partial_groups_from_the_defaults(tmp_path):
    args = model_arguments({"n_layers": 1, "diffusion": {"T": 10}}, {"lr": 1e-3})
    assert args["network"]["n_layers"] == 1 and args["network"]["hidden_dims"] == defaults(ModelConfig)["hidden_dims"]
    assert args["diffusion"] == {**defaults(ModelConfig)["diffusion"], "T": 10}
    assert args["optim"] == {"lr": 1e-3, "weight_decay": TrainConfig().weight_decay, "amsgrad": TrainConfig().amsgrad,
                             "lambda_E": TrainConfig().lambda_E}
    assert args["objective"] == defaults(ModelConfig)["train"] and args["x0_kernel"] == ModelConfig().x0_kernel
    cfg = make_cfg(tmp_path)
    assert model_arguments(cfg.model, cfg.train)["network"]["features"] == "cycles"
    with pytest.raises(ConfigError, match="model.draws is not an option"):
        model_arguments({"draws": 2})
    with pytest.raises(ConfigError, match="model.eval.num_bins=11 is not accepted"):
        model_arguments({"diffusion": {"T": 10}, "eval": {"num_bins": 11}})


def test_proposal_options_need_a_rank_breaker():
    """model.train.proposal gives the breaker ranks (SymPE only); mixture proposals other than the prior need ranks."""
    with pytest.raises(ConfigError, match="model.train.proposal=canonical .* model.symbreak=none"):
        model_arguments({"symbreak": "none", "train": {"proposal": "canonical"}})
    with pytest.raises(ConfigError, match="model.eval.mixture_proposal=exact needs a rank-based"):
        model_arguments({"symbreak": "noise", "eval": {"mixture_proposal": "exact"}})
    with pytest.raises(ConfigError, match="model.eval.mixture_proposal"):
        model_arguments({"symbreak": "sympe", "eval": {"mixture_proposal": "best"}})
    with pytest.raises(ConfigError, match="model.train.proposal"):
        model_arguments({"symbreak": "sympe", "train": {"proposal": "prior"}})
    with pytest.raises(ConfigError, match="weighting=digress is no likelihood bound"):
        model_arguments({"symbreak": "sympe", "train": {"proposal": "defensive"}})
    with pytest.raises(ConfigError, match="weighting=digress is no likelihood bound"):
        model_arguments({"symbreak": "sympe", "train": {"proposal": "canonical", "mixture_draws": 2}})
    assert model_arguments({"symbreak": "sympe", "train": {"proposal": "canonical"}})["objective"]["weighting"] == "digress"
    args = model_arguments({"symbreak": "sympe", "train": {"proposal": "defensive", "weighting": "likelihood"},
                            "eval": {"mixture_proposal": "canonical", "mixture_draws": 4}})
    assert args["objective"]["proposal"] == "defensive" and args["eval"]["mixture_proposal"] == "canonical"


def test_upgrade_fills_only_keys_added_after_the_first_release():
    first = {"info": {}, "network": {"n_layers": 2, "symbreak": "sympe"}, "diffusion": {"T": 7},
             "optim": {"lr": 1.0}, "eval": {"digress_compat": True, "num_draws": 3}}
    up = upgrade_hparams(first)
    assert up["network"] == {"n_layers": 2, "symbreak": "sympe", "recompute_attention": True}
    assert up["eval"] == {"digress_compat": True, "num_draws": 3, "mixture_draws": 0, "num_bins": None,
                          "mixture_proposal": "prior", "mixture_exact_max": 5040}
    assert up["objective"] == {"mixture_draws": 0, "weighting": "digress", "proposal": "none"}
    assert up["x0_kernel"] == "plain" and up["dataset"] is None and up["optim"] == {"lr": 1.0}
    assert first["network"] == {"n_layers": 2, "symbreak": "sympe"}  # the input is not modified
    full = {**model_arguments(), "info": {}}
    assert upgrade_hparams(full) == full  # a current checkpoint is unchanged


def test_every_field_has_a_rule_or_is_free_text():
    """Every option with a fixed set or range of values is checked (a field without a rule takes any value:
    paths, names, free-form mappings)."""
    free = {"schedule", "transition", "feature_kwargs", "symbreak_kwargs", "strategy", "resume", "ckpt_path",
            "checkpoint", "out_dir", "samples", "format", "column", "header", "atom_decoder", "reference",
            "sbm_method", "sbm_workers", "dataset", "dataset_params", "nll_conventions", "data_root", "digress_compat",
            "x0_kernel", "hidden_mlp_dims", "hidden_dims", "diffusion", "eval", "train", "model",
            "condition", "oracle", "targets"}  # sample.py's condition: a mapping or a CSV path (checked by the model)
    for cls in (ModelConfig, TrainConfig, SampleConfig, EvaluateConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("rule") is not None or f.name in free, (cls.__name__, f.name)


def test_the_modules_a_command_imports_first_do_not_import_lightning():
    """Commands import these before Hydra configures logging; Lightning imported then would send its messages
    (the model summary among them) to its own stderr handler instead of the job's stdout."""
    import subprocess
    import sys

    code = ("import sys, sympe.diffusion.runs, sympe.diffusion.runs.schema, sympe.diffusion.runs.options, "
            "sympe.diffusion.runs.training, sympe.diffusion.runs.run_folder, sympe.diffusion.runs.checkpoint_files; "
            "print(sorted(m for m in sys.modules if 'lightning' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_sample_and_evaluate_seeds_are_checked():
    from sympe.diffusion.runs.schema import check_evaluate_config, check_sample_config

    with pytest.raises(ConfigError, match="seed=-1 is not accepted"):
        check_sample_config(compose_config(["checkpoint=x.ckpt", "seed=-1"], "sample"))
    with pytest.raises(ConfigError, match="seed=4294967296 is not accepted"):
        check_evaluate_config(compose_config(["checkpoint=x.ckpt", "seed=4294967296"], "evaluate"))
    assert check_sample_config(compose_config(["checkpoint=x.ckpt", "seed=4294967295"], "sample")).seed == 2**32 - 1


def test_a_bare_nll_convention_is_one_label():
    from sympe.diffusion.runs.schema import check_evaluate_config

    cfg = compose_config(["checkpoint=x.ckpt", "nll_conventions=ours_plain"], "evaluate")
    check_evaluate_config(cfg)
    assert list(cfg.nll_conventions) == ["ours_plain"]


@pytest.mark.parametrize("command,override,message", [
    ("train", "+train.max_step=5", r"train.max_step is not an option of train \(did you mean train.max_steps\?\)"),
    ("train", "+paths.outdir=x", r"paths.outdir is not an option of paths \(did you mean paths.out_dir\?\)"),
    ("train", "+sed=1", r"sed is not an option of this command \(did you mean seed\?\)"),
    ("train", "+model.n_layer=2", r"model.n_layer is not an option of model \(did you mean model.n_layers\?\)"),
    ("sample", "+num_sample=5", r"num_sample is not an option of this command \(did you mean num_samples\?\)"),
    ("evaluate", "+overwrit=true", r"overwrit is not an option of this command \(did you mean overwrite\?\)"),
])
def test_keys_added_with_plus_that_the_config_does_not_know_are_refused(command, override, message):
    """Hydra's own message for an unknown key suggests ``+key=value``, which then adds it silently; the checks refuse
    it, naming the closest known key."""
    from sympe.diffusion.runs.schema import check_evaluate_config, check_sample_config

    check = {"train": lambda c: (check_train_config(c), check_model_config(c)), "sample": check_sample_config,
             "evaluate": check_evaluate_config}[command]
    extra = [] if command == "train" else ["checkpoint=x.ckpt"]
    with pytest.raises(ConfigError, match=message):
        check(compose_config([*extra, override], command))


def test_evaluate_needs_exactly_one_input():
    from sympe.diffusion.runs.schema import check_evaluate_config

    with pytest.raises(ConfigError, match="give exactly one of checkpoint=PATH"):
        check_evaluate_config(compose_config([], "evaluate"))
    with pytest.raises(ConfigError, match="samples=FILE needs dataset=NAME"):
        check_evaluate_config(compose_config(["samples=f.smi"], "evaluate"))
    with pytest.raises(ConfigError, match="header=maybe is not accepted"):
        check_evaluate_config(compose_config(["samples=f.smi", "dataset=qm9", "header=maybe"], "evaluate"))
