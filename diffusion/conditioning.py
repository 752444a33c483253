"""Graph-level conditions ``y`` of a conditional model: how property values become the graph channels it reads.

A conditional model is trained on pairs (graph, property values) and learns ``p(x | y)``. This module holds the
*encoding* of those values, fitted once on the train split and stored in every checkpoint, like
:class:`~sympe.diffusion.info.DatasetInfo`; what the properties are and how they are computed (RDKit, networkx,
dataset columns) lives in :mod:`sympe.datasets.conditions`.

Encoding (one row per graph, width :attr:`ConditionSpec.width`)
    ``y = [block_1, ..., block_P, present_1, ..., present_P]``:

    * a continuous property j has a block of width 1: ``(v - mean_j) / std_j`` with the train split's mean and
      (population) standard deviation;
    * a categorical property j has a one-hot block over the categories seen in the train split;
    * ``present_j`` is 1 when property j is given, 0 when it is dropped or unknown; the block is then all zero.

    The all-zero row is the *null condition* ``∅``: the unconditional model ``p(x)`` of classifier-free guidance
    (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance").

Training dropout (:meth:`ConditionSpec.drop`)
    With probability ``dropout`` the whole condition of a graph is replaced by ``∅`` (so one network learns
    ``p(x | y)`` and ``p(x)``); otherwise, when there are P >= 2 properties, each is dropped on its own with the
    same probability, so the network also learns every subset (sampling may ask for logP alone from a model
    trained on logP and QED). DiGress has no classifier-free guidance (it guides with a regressor's gradient); the
    dropout and the presence bits are this project's convention.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

KINDS = ("continuous", "categorical")
#: A continuous target more than this many train standard deviations outside the train split's range is refused.
RANGE_MARGIN_STD = 0.5


class ConditionError(ValueError):
    """A condition that cannot be used (unknown property, value out of range, category never seen); the commands
    print it as one line."""

    user_error = True


@dataclass
class FittedProperty:
    """One property of a :class:`ConditionSpec`, with the train split's statistics.

    ``mean`` / ``std`` / ``low`` / ``high`` (continuous; population std, 1.0 when the train values are constant),
    ``categories`` (categorical, sorted), ``unit`` (for messages and reports), ``tolerance`` (the default
    "within tolerance" distance of the evaluation, in the property's unit), ``missing`` (train graphs without a
    value)."""
    name: str
    kind: str
    unit: str = ""
    tolerance: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    low: float = 0.0
    high: float = 0.0
    categories: list = field(default_factory=list)
    missing: int = 0

    @property
    def width(self) -> int:
        return 1 if self.kind == "continuous" else len(self.categories)

    def describe(self) -> str:
        if self.kind == "continuous":
            return (f"{self.name} (continuous{', ' + self.unit if self.unit else ''}; train mean {self.mean:.4g}, "
                    f"std {self.std:.4g}, range [{self.low:.4g}, {self.high:.4g}])")
        return f"{self.name} (categorical; categories {self.categories})"


def _as_category(v):
    """Categories are compared as text for strings and as integers for whole numbers (``3`` and ``3.0`` agree)."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip() == "")


class ConditionSpec:
    """The fitted encoding of graph-level conditions (module docstring).

    Args:
        properties: the :class:`FittedProperty` of each condition, in the order of ``model.condition``.
        dropout: ``model.condition_dropout``, the probability of the training dropout.
    """

    def __init__(self, properties: list[FittedProperty], dropout: float):
        if not properties:
            raise ConditionError("a ConditionSpec needs at least one property")
        names = [p.name for p in properties]
        if len(set(names)) != len(names):
            raise ConditionError(f"model.condition names a property twice: {names}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConditionError(f"model.condition_dropout must be in [0, 1), got {dropout}")
        self.properties = list(properties)
        self.dropout = float(dropout)

    # ------------------------------------------------------------------ construction
    @classmethod
    def fit(cls, columns: dict[str, list], kinds: dict[str, str], dropout: float, units: dict | None = None,
            tolerances: dict | None = None) -> "ConditionSpec":
        """Fit on the train split: ``columns[name]`` is the list of the train graphs' values (None / NaN = unknown).

        Raises :class:`ConditionError` when a property has no value at all, or a categorical one has a single
        category (nothing to condition on)."""
        props = []
        for name, values in columns.items():
            kind = kinds[name]
            if kind not in KINDS:
                raise ConditionError(f"property {name!r}: kind must be one of {KINDS}, got {kind!r}")
            known = [v for v in values if not is_missing(v)]
            if not known:
                raise ConditionError(f"property {name!r} has no value on any train graph: nothing to condition on")
            p = FittedProperty(name, kind, unit=(units or {}).get(name, ""),
                               tolerance=float((tolerances or {}).get(name, 0.0)), missing=len(values) - len(known))
            if kind == "continuous":
                v = torch.tensor([float(x) for x in known], dtype=torch.float64)
                p.mean, p.low, p.high = float(v.mean()), float(v.min()), float(v.max())
                std = float(v.std(unbiased=False))
                p.std = std if std > 0 else 1.0
                if p.tolerance <= 0:  # no stated tolerance (a user's column): a tenth of the train std
                    p.tolerance = 0.1 * p.std
            else:
                cats = sorted({_as_category(x) for x in known}, key=lambda c: (str(type(c)), c))
                if len(cats) < 2:
                    raise ConditionError(f"property {name!r} takes the single value {cats[0]!r} on the train split: "
                                         "nothing to condition on")
                p.categories = cats
            props.append(p)
        return cls(props, dropout)

    def to_dict(self) -> dict:
        return {"properties": [asdict(p) for p in self.properties], "dropout": self.dropout}

    @classmethod
    def from_dict(cls, d: dict) -> "ConditionSpec":
        return cls([FittedProperty(**p) for p in d["properties"]], d["dropout"])

    # ------------------------------------------------------------------ layout
    @property
    def names(self) -> list[str]:
        return [p.name for p in self.properties]

    @property
    def width(self) -> int:
        """Width of the encoded row: the blocks plus one presence bit per property."""
        return sum(p.width for p in self.properties) + len(self.properties)

    def property(self, name: str) -> FittedProperty:
        for p in self.properties:
            if p.name == name:
                return p
        raise ConditionError(f"{name!r} is not a property this model was trained on; it knows {self.names}")

    def _offsets(self) -> list[int]:
        out, start = [], 0
        for p in self.properties:
            out.append(start)
            start += p.width
        return out

    # ------------------------------------------------------------------ encoding
    def encode(self, rows: list[dict], strict: bool = True) -> Tensor:
        """(B, width) float32: row b encodes ``rows[b]`` (property name -> value; absent or None = not given).

        ``strict`` (targets asked for at sampling): an unknown name, a category never seen in training or a value
        out of range raises :class:`ConditionError` (:meth:`check_value`). Not strict (the dataset's own graphs):
        an unseen category is encoded as not given."""
        y = torch.zeros(len(rows), self.width)
        offsets, P0 = self._offsets(), sum(p.width for p in self.properties)
        for b, row in enumerate(rows):
            if strict:
                for name in row:
                    self.property(name)
            for j, (p, off) in enumerate(zip(self.properties, offsets)):
                v = row.get(p.name)
                if is_missing(v):
                    continue
                if strict:
                    self.check_value(p.name, v)
                if p.kind == "continuous":
                    y[b, off] = (float(v) - p.mean) / p.std
                else:
                    c = _as_category(v)
                    if c not in p.categories:
                        continue
                    y[b, off + p.categories.index(c)] = 1.0
                y[b, P0 + j] = 1.0
        return y

    def decode(self, y: Tensor) -> list[dict]:
        """Inverse of :meth:`encode`: (B, width) -> one dict per row of the properties given (continuous values rounded
        to 1e-6 train standard deviations, below which the float32 round trip is noise)."""
        offsets, P0 = self._offsets(), sum(p.width for p in self.properties)
        rows = []
        for r in y.detach().cpu().double():
            row = {}
            for j, (p, off) in enumerate(zip(self.properties, offsets)):
                if r[P0 + j] < 0.5:
                    continue
                if p.kind == "continuous":  # float32 keeps ~7 digits of the standardised value
                    row[p.name] = round(float(r[off]) * p.std + p.mean, 6 - math.floor(math.log10(p.std)))
                else:
                    row[p.name] = p.categories[int(r[off:off + p.width].argmax())]
            rows.append(row)
        return rows

    def check_value(self, name: str, value) -> None:
        """Raise :class:`ConditionError` naming the property when ``value`` is not a usable target: not a number
        (continuous), a category never seen in training, or more than :data:`RANGE_MARGIN_STD` train standard
        deviations outside the train split's range."""
        p = self.property(name)
        if p.kind == "categorical":
            if _as_category(value) not in p.categories:
                raise ConditionError(f"{name}={value!r}: the model was trained on the categories "
                                     f"{p.categories} only")
            return
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConditionError(f"{name}={value!r} is not a number") from None
        lo, hi = p.low - RANGE_MARGIN_STD * p.std, p.high + RANGE_MARGIN_STD * p.std
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ConditionError(f"{name}={value!r} is outside the range this model can be asked for: "
                                 f"[{lo:.4g}, {hi:.4g}] (the train split's [{p.low:.4g}, {p.high:.4g}] widened by "
                                 f"{RANGE_MARGIN_STD} std = {RANGE_MARGIN_STD * p.std:.3g})")

    def null(self, B: int, device=None) -> Tensor:
        """(B, width) zeros: the null condition ∅ (every property dropped)."""
        return torch.zeros(B, self.width, device=device)

    def keep_mask(self, y: Tensor, keep: Tensor) -> Tensor:
        """``y`` with property j zeroed (block and presence bit) where ``keep[:, j]`` (B, P) bool is False."""
        cols = [keep[:, j:j + 1].expand(-1, p.width) for j, p in enumerate(self.properties)]
        mask = torch.cat(cols + [keep], dim=1).to(y.dtype)
        return y * mask

    def drop(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The training dropout of the module docstring: (B, width) -> (B, width)."""
        B, P = y.shape[0], len(self.properties)
        if self.dropout == 0.0 or B == 0:
            return y
        gdev = generator.device if generator is not None else y.device
        keep_all = torch.rand(B, 1, generator=generator, device=gdev).to(y.device) >= self.dropout
        keep = keep_all.expand(B, P)
        if P > 1:
            keep = keep & (torch.rand(B, P, generator=generator, device=gdev).to(y.device) >= self.dropout)
        return self.keep_mask(y, keep)

    def __repr__(self) -> str:
        return f"ConditionSpec({', '.join(p.describe() for p in self.properties)}; dropout {self.dropout})"
