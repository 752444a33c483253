"""Trained models that ship with the package: ``checkpoint=pretrained:<name>`` and :func:`load_pretrained`.

A shipped model is a *weights file* in ``sympe/diffusion/pretrained_models/<name>.pt`` beside its model card
``<name>.json``. The weights file is a ``torch.save`` archive holding only what sampling and evaluation need: the
hyperparameters of :class:`~sympe.diffusion.runs.model.DiscreteDiffusion` (``hyper_parameters``), the dataset
statistics (``sympe``, as in a training checkpoint, so that :func:`~sympe.diffusion.runs.model.check_checkpoint_matches`
works) and the EMA weights (``state_dict``; the denoiser's stored as float16 to halve the file and cast back to
float32 on load, the process's buffers as float32). It has no optimizer state, so it cannot resume training: fine-tune with ``train.ckpt_path`` of a full
checkpoint instead.

:func:`export_weights` writes such a file from a training checkpoint (whose ``state_dict`` holds the EMA weights when
the run used ``train.ema_decay``); :func:`resolve_checkpoint` turns ``pretrained:<name>`` into the file's path (and
checks its sha256 against the model card); the card records the command, the data split, the validation and test
NLL beside the exchangeable floor, and validity / uniqueness / novelty at all T steps and at 20 ``polydec`` steps,
each with the command that measured it (``docs/pretrained.md``).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from sympe.diffusion.runs.checkpoint_files import CheckpointError

__all__ = ["PRETRAINED_DIR", "PREFIX", "available", "model_card", "resolve_checkpoint", "is_pretrained",
           "default_output_parent", "export_weights", "load_pretrained"]

#: where the weights files and model cards live (package data)
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained_models"
PREFIX = "pretrained:"
FORMAT = "sympe-weights-1"
#: the tensors stored as float16: the denoiser's parameters. The diffusion process's buffers (``schedule.*``:
#: beta_t and alpha-bar_t, ``transition.*``: the marginals) keep float32, since float16 would move alpha-bar_t near 1 by
#: up to 100 % of 1 - alpha-bar_t and the marginals off the simplex.
HALF_PREFIX = "network."


def available() -> list[str]:
    """The names of the shipped models (``pretrained:<name>``)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.json"))


def model_card(name: str) -> dict:
    """The model card of ``name`` (a dict; raises :class:`CheckpointError` for an unknown name)."""
    card = PRETRAINED_DIR / f"{name}.json"
    if not re.fullmatch(r"[a-z0-9_-]+", name) or not card.is_file():
        raise CheckpointError(f"checkpoint={PREFIX}{name}: no such shipped model; available: "
                              + (", ".join(f"{PREFIX}{n}" for n in available()) or "none"))
    return json.loads(card.read_text(encoding="utf-8"))


def is_pretrained(checkpoint) -> bool:
    """True for a ``pretrained:<name>`` checkpoint option."""
    return isinstance(checkpoint, str) and checkpoint.startswith(PREFIX)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_checkpoint(checkpoint: str) -> str:
    """``pretrained:<name>`` -> the path of its weights file, after comparing the file's sha256 with the model card
    (:class:`CheckpointError` naming the file when they differ or it is missing); any other value is returned as is."""
    if not is_pretrained(checkpoint):
        return checkpoint
    name = checkpoint[len(PREFIX):]
    card = model_card(name)
    path = PRETRAINED_DIR / card["file"]
    if not path.is_file():
        raise CheckpointError(f"checkpoint={checkpoint}: {path} is missing from the installed package; reinstall sympe")
    digest = _sha256(path)
    if digest != card["sha256"]:
        raise CheckpointError(f"checkpoint={checkpoint}: {path} has sha256 {digest[:12]}..., its model card says "
                              f"{card['sha256'][:12]}...: the file is damaged or was replaced; reinstall sympe")
    return str(path)


def default_output_parent(checkpoint: str, kind: str) -> Path:
    """Where ``sample.py`` / ``evaluate.py`` put their new folders by default (``kind``: ``samples`` or ``eval``):
    ``<run>/<kind>`` for a checkpoint ``<run>/checkpoints/X.ckpt``, ``outputs/pretrained-<name>/<kind>`` (in the
    working directory, never inside the installed package) for ``pretrained:<name>``."""
    if is_pretrained(checkpoint):
        return Path("outputs").absolute() / f"pretrained-{checkpoint[len(PREFIX):]}" / kind
    return Path(checkpoint).resolve().parent.parent / kind


def export_weights(checkpoint: str, out: str | Path, half: bool = True) -> dict:
    """Write the weights file of training checkpoint ``checkpoint`` to ``out`` (module docstring; atomically) and
    return ``{"file", "bytes", "sha256", "global_step", "parameters"}``. ``half``: store the denoiser's floating tensors as float16 (:data:`HALF_PREFIX`).
    Raises :class:`CheckpointError` when the checkpoint holds non-finite weights or weights float16 cannot hold."""
    import torch

    from sympe.diffusion.files import atomic_path
    from sympe.diffusion.runs.checkpoint_files import check_finite_weights

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = ckpt["state_dict"]
    check_finite_weights(state, checkpoint)
    if half:  # the denoiser's weights only: the process's buffers (schedule, transition marginals) stay float32
        state = {k: (v.half() if k.startswith(HALF_PREFIX) and v.is_floating_point() else v) for k, v in state.items()}
        check_finite_weights(state, f"{checkpoint} (as float16)")
    weights = {"format": FORMAT, "hyper_parameters": ckpt["hyper_parameters"], "sympe": ckpt["sympe"],
               "state_dict": state, "global_step": int(ckpt.get("global_step", 0)),
               "pytorch-lightning_version": ckpt.get("pytorch-lightning_version")}
    out = Path(out)
    with atomic_path(out) as tmp:
        torch.save(weights, tmp)
    return {"file": out.name, "bytes": out.stat().st_size, "sha256": _sha256(out), "global_step": weights["global_step"],
            "parameters": int(sum(v.numel() for k, v in state.items() if k.startswith("network.")))}


def load_pretrained(name: str = "qm9", map_location="cpu"):
    """The shipped model ``name`` (``pretrained:<name>``) as a :class:`~sympe.diffusion.runs.model.DiscreteDiffusion`
    in eval mode on ``map_location``, its float32 weights cast from the stored float16. Raises
    :class:`CheckpointError` for an unknown name or a damaged file."""
    from sympe.diffusion.runs.training import load_for_inference

    return load_for_inference(resolve_checkpoint(PREFIX + name), str(map_location))
