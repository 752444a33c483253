"""Typed config groups: dataclasses whose fields hold a default, a rule that checks a value, and a flag.

A group is a :class:`Schema` dataclass; each field is made by :func:`opt` (its default or a factory for mutable
values, the rule of :mod:`~sympe.diffusion.runs.options` that checks a value, whether a resumed run may change it).
:func:`build` makes a group from a composed mapping and raises
:class:`~sympe.diffusion.runs.options.ConfigError` with one line for an unknown key, a missing key of a
``COMPLETE`` group, or a value its rule refuses; :func:`defaults` is a group's defaults as a plain dict. The groups
themselves are in :mod:`~sympe.diffusion.runs.model_config` and :mod:`~sympe.diffusion.runs.command_config`.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import field
from typing import ClassVar

from omegaconf import DictConfig, OmegaConf

from sympe.diffusion.runs.options import ConfigError, fail

__all__ = ["opt", "Schema", "nested_types", "check_known_keys", "build", "defaults"]


def opt(default=None, rule=None, *, factory=None, free_on_resume: bool = False):
    """A config field: its default (or ``factory`` for a mutable one), the rule that checks a value
    (:mod:`~sympe.diffusion.runs.options`; None = any value) and whether a resumed run may change it."""
    meta = {"rule": rule, "free_on_resume": free_on_resume}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class Schema:
    """Base of the config dataclasses: ``PREFIX`` is the option path of the group (e.g. ``"model.diffusion."``);
    ``COMPLETE`` groups must be given whole when given as a mapping (no key filled in from a default)."""

    PREFIX: ClassVar[str] = ""
    COMPLETE: ClassVar[bool] = False

    def __post_init__(self):
        for f in dataclasses.fields(self):
            rule = f.metadata.get("rule")
            if rule is not None:
                setattr(self, f.name, rule(self.PREFIX + f.name, getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Checks of several options together (after each option's own rule)."""


def nested_types(cls) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if isinstance(hints[f.name], type) and issubclass(hints[f.name], Schema)}


def check_known_keys(values, names, prefix: str = "") -> None:
    """Raise :class:`ConfigError` for the first key of ``values`` not in ``names``, naming the closest known key
    (``train.max_step`` -> ``did you mean train.max_steps?``; e.g. a key added with Hydra's ``+``) and all of them."""
    unknown = [k for k in values if k not in names]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), list(names), n=1, cutoff=0.6)
        hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
        raise ConfigError(f"{prefix}{unknown[0]} is not an option of {prefix.rstrip('.') or 'this command'}{hint}; "
                          f"known: {', '.join(names)}")


def build(cls, values, prefix: str | None = None):
    """The dataclass ``cls`` from a mapping (a composed group, ``DictConfig`` or dict): nested groups are built
    recursively, a key the group does not have raises :class:`ConfigError` naming it and the known keys, and
    every value passes its rule (``__post_init__``). Missing keys take their defaults, except in ``COMPLETE``
    groups. Returns the dataclass instance."""
    prefix = cls.PREFIX if prefix is None else prefix
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, dict):
        names = ", ".join(f"{f.name}: ..." for f in dataclasses.fields(cls))
        raise fail(prefix.rstrip("."), values, "a mapping {" + names + "}")
    names = [f.name for f in dataclasses.fields(cls)]
    check_known_keys(values, names, prefix)
    if cls.COMPLETE:
        missing = [k for k in names if k not in values]
        if missing:
            raise ConfigError(f"{prefix.rstrip('.')} lacks {missing}; it needs " + ", ".join(names))
    kwargs = dict(values)
    for name, sub in nested_types(cls).items():
        if name in kwargs:
            kwargs[name] = build(sub, kwargs[name], f"{prefix}{name}.")
    return cls(**kwargs)


def defaults(cls) -> dict:
    """The defaults of ``cls`` as a plain nested dict (what :func:`register_configs` stores)."""
    return dataclasses.asdict(cls())
