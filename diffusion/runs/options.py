"""Checks of user-facing option values, run before anything is loaded.

Hydra passes command-line values through as YAML scalars (``train.max_steps=abc`` arrives as the string
``"abc"``), and most of them would otherwise fail late (after minutes of data loading) or deep inside
PyTorch / Lightning. Each check here raises :class:`ConfigError` with one line that names the option, the
value given and the values accepted, e.g.::

    train.batch_size=0 is not accepted: expected an integer >= 1 (graphs per training batch)

An option is described by a small rule (:class:`Int`, :class:`Float`, :class:`Choice`, :class:`Bool`,
:class:`AutoBool`, :class:`TimeLimit`, :class:`Devices`, :class:`Device`): a callable ``rule(key, value)`` that
returns the value or raises :class:`ConfigError`. Each option's rule is attached to its field in the typed
configs of :mod:`sympe.diffusion.runs.schema`, which hold every default once.
"""
from __future__ import annotations

import math

import functools
import re
import sys
from dataclasses import dataclass

__all__ = ["ConfigError", "user_errors", "show", "fail", "SEED_MAX", "Int", "Float", "Choice", "Names", "Bool", "AutoBool", "TimeLimit",
           "Devices", "Device", "DEVICE_PATTERN"]


class ConfigError(ValueError):
    """An option value that is not accepted; the message names the option and the accepted values."""

    user_error = True


def user_errors(main):
    """Decorate a command's main function: an error of the user's input (an exception whose class sets
    ``user_error = True``: :class:`ConfigError`, :class:`~sympe.diffusion.runs.checkpoint_callbacks.CheckpointError`,
    ``sympe.datasets.config.DatasetConfigError``) ends the command with its one-line message on stderr and
    exit status 2, without a traceback. Ctrl-C (``KeyboardInterrupt``, with its ``message`` attribute when it has one)
    ends it with one line and exit status 130. Other exceptions propagate unchanged."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt as exc:  # Ctrl-C where the command has no handler of its own: one line, no traceback
            note = getattr(exc, "message", None) or "interrupted (Ctrl-C); stopped at once"
            print(f"\n[sympe] {note}", file=sys.stderr, flush=True)
            raise SystemExit(130) from None
        except Exception as exc:
            if getattr(exc, "user_error", False):
                print(f"error: {exc}", file=sys.stderr, flush=True)
                raise SystemExit(2) from None
            raise

    return wrapper


def show(value) -> str:
    """A value as the user would type it (null for None, '' for the empty string)."""
    return "null" if value is None else (repr(value) if isinstance(value, str) and value == "" else str(value))


def fail(key: str, value, expected: str) -> ConfigError:
    """The error ``<key>=<value> is not accepted: expected <expected>``."""
    return ConfigError(f"{key}={show(value)} is not accepted: expected {expected}")


#: The largest seed every command accepts (numpy's and Lightning's seeding take 0..2^32 - 1).
SEED_MAX = 2**32 - 1


@dataclass
class Int:
    """An integer ``>= min`` (and ``<= max``); ``none`` allows null; ``special`` lists extra accepted values."""

    min: int | None = None
    max: int | None = None
    none: bool = False
    what: str = ""
    special: tuple = ()

    def expected(self) -> str:
        parts = ["an integer"]
        if self.min is not None:
            parts.append(f">= {self.min}")
        if self.max is not None:
            parts.append(f"<= {self.max}")
        text = " ".join(parts)
        extra = [f"{s}" for s in self.special] + (["null"] if self.none else [])
        if extra:
            text += " or " + " or ".join(extra)
        return text + (f" ({self.what})" if self.what else "")

    def __call__(self, key: str, value):
        if value is None and self.none:
            return None
        if value in self.special and not isinstance(value, bool):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise fail(key, value, self.expected())
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise fail(key, value, self.expected())
        return value


@dataclass
class Float:
    """A real number in the interval given by ``min`` / ``max`` (``open_min`` / ``open_max`` exclude the end)."""

    min: float | None = None
    max: float | None = None
    open_min: bool = False
    open_max: bool = False
    none: bool = False
    what: str = ""

    def expected(self) -> str:
        lo = "(" if self.open_min or self.min is None else "["
        hi = ")" if self.open_max or self.max is None else "]"  # infinity is never a value
        lo_v = "-inf" if self.min is None else f"{self.min:g}"
        hi_v = "inf" if self.max is None else f"{self.max:g}"
        text = f"a number in {lo}{lo_v}, {hi_v}{hi}" + (" or null" if self.none else "")
        return text + (f" ({self.what})" if self.what else "")

    def __call__(self, key: str, value):
        if value is None and self.none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(key, value, self.expected())
        v = float(value)
        if not math.isfinite(v):  # nan passes every comparison, inf every open upper end
            raise fail(key, value, self.expected())
        if self.min is not None and (v < self.min or (self.open_min and v == self.min)):
            raise fail(key, value, self.expected())
        if self.max is not None and (v > self.max or (self.open_max and v == self.max)):
            raise fail(key, value, self.expected())
        return value


@dataclass
class Choice:
    choices: tuple
    what: str = ""

    def __call__(self, key: str, value):
        if isinstance(value, bool) or value not in self.choices:
            raise fail(key, value, "one of " + ", ".join(show(c) for c in self.choices)
                        + (f" ({self.what})" if self.what else ""))
        return value


@dataclass
class Names:
    """A list of distinct names (strings), e.g. ``model.condition=[logp,qed]``."""
    what: str = ""

    def __call__(self, key: str, value):
        if (not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value)
                or len(set(value)) != len(value)):
            raise fail(key, value, "a list of distinct names in brackets" + (f" ({self.what})" if self.what else ""))
        return list(value)


@dataclass
class Bool:
    def __call__(self, key: str, value):
        if not isinstance(value, bool):
            raise fail(key, value, "true or false")
        return value


@dataclass
class AutoBool:
    """``auto``, true or false (Hydra reads ``true`` / ``false`` as booleans)."""
    what: str = ""

    def __call__(self, key: str, value):
        if isinstance(value, bool) or value == "auto":
            return value
        raise fail(key, value, "one of auto, true, false" + (f" ({self.what})" if self.what else ""))


@dataclass
class TimeLimit:
    """null, ``"DD:HH:MM:SS"`` or a dict of ``timedelta`` arguments (Lightning's ``max_time``)."""

    def __call__(self, key: str, value):
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d+:\d{2}:\d{2}:\d{2}", value):
            return value
        raise fail(key, value, 'null or a duration "DD:HH:MM:SS" (e.g. "00:12:00:00" for 12 hours)')


DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?|mps"


@dataclass
class Devices:
    """Lightning's ``devices``: an integer >= 1, ``"auto"``, or a list of device indices."""

    def __call__(self, key: str, value):
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and v >= 0 for v in value):
            return value
        raise fail(key, value, 'an integer >= 1 (number of devices), "auto", or a list of device indices')


@dataclass
class Device:
    """Where sampling / evaluation runs: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""

    def __call__(self, key: str, value):
        if isinstance(value, str) and re.fullmatch(DEVICE_PATTERN, value):
            return value
        raise fail(key, value, "one of auto, cpu, cuda, cuda:N, mps")
