"""What the objective is built from: the typed objective part of a config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class TermSpec:
    """One weighted term: `kind` names its entry in crosskd.losses.terms.TERMS, `args` are
    that entry's keyword arguments, `name` is how the term is logged (`loss_<name>`)."""

    name: str
    kind: str
    weight: float = 1.0
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveSpec:
    """The terms of the total loss, in the order they are added."""

    terms: tuple[TermSpec, ...]
