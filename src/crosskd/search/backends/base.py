"""What every search backend is: a way of finding the `k` largest inner products <q, x> of
one pattern's stored vectors, declared by name with the options it takes, so that the
registry (crosskd.search.backends) can offer it to `crosskd index`, `search` and `serve`.

Every answer's value is computed exactly from the stored vectors; a backend only decides
which rows are looked at. With QB-Norm (crosskd.search.normalisers) a pattern's rows carry
one more value, its `Column`, and a query may weight it: rows are then ranked by
<q, x> + w u[row]; the values returned stay <q, x>.
"""

from __future__ import annotations

import importlib.util
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np

from crosskd.errors import UserError
from crosskd.search.normalisers import Column
from crosskd.search.storage import StoredVectors
from crosskd.untrusted import ascii_int

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder


@dataclass(frozen=True)
class OptionalPackage:
    """A package a backend needs that crosskd does not install by default."""

    module: str
    #: the crosskd extra that installs it
    extra: str

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def install_hint(self) -> str:
        return f"pip install 'crosskd[{self.extra}]'"


FAISS = OptionalPackage("faiss", "search")


def faiss_module():
    """faiss when installed (the `search` extra), else None."""
    if not FAISS.installed():
        return None
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build it tried
    import faiss
    return faiss


@dataclass(frozen=True)
class BackendOption:
    """One setting a backend takes: a whole number in [low, high] (None: the default), its
    default and a line of help. The command line offers it as `--NAME` (underscores also as
    dashes) through `crosskd.commands.options.whole_number`."""

    name: str
    help: str
    default: int | None
    low: int = 1
    high: int | None = None
    metavar: str | None = None
    #: what a default of None means, for --help
    none_means: str = ""

    @property
    def shown_default(self) -> str:
        return self.none_means if self.default is None else str(self.default)

    def value(self, given: Any, owner: str) -> int | None:
        """`given` when it is a whole number in range, the default when it is None."""
        if given is None:
            return self.default
        if isinstance(given, bool) or not isinstance(given, (int, np.integer)):
            raise UserError(f"{owner} option {self.name} must be a whole number, not {given!r}")
        try:
            return ascii_int(str(given), f"{owner} option {self.name}", self.low, self.high)
        except ValueError as err:
            raise UserError(str(err)) from None


class Backend(ABC):
    """A registered search backend over one pattern's stored vectors (module docstring)."""

    #: the registry name: `crosskd index --backend NAME`, the manifest's "backend"
    name: ClassVar[str]
    #: one line for --help
    description: ClassVar[str]
    #: the optional package it needs (None: crosskd's own dependencies do)
    needs: ClassVar[OptionalPackage | None] = None
    #: patterns of fewer rows are scanned exactly instead (a scan of them is cheap)
    scan_below: ClassVar[int] = 0
    #: what `build` takes (`crosskd index` flags)
    build_options: ClassVar[tuple[BackendOption, ...]] = ()
    #: what `load` takes (`crosskd search` / `serve` flags); `build` takes them too, as a
    #: backend built in memory is searched without being loaded
    search_options: ClassVar[tuple[BackendOption, ...]] = ()

    column: Column | None

    @classmethod
    def settings(cls, given: Mapping[str, Any], declared: tuple[BackendOption, ...]
                 ) -> dict[str, int | None]:
        """Every option of `declared`: the value `given` names, checked, else its default;
        a name `declared` lacks is refused in one line."""
        names = {option.name for option in declared}
        unknown = sorted(set(given) - names)
        if unknown:
            takes = f"it takes {', '.join(sorted(names))}" if names else "it takes none"
            raise UserError(f"the {cls.name} backend takes no option {', '.join(unknown)} "
                            f"({takes})")
        return {option.name: option.value(given.get(option.name), f"the {cls.name} backend's")
                for option in declared}

    @classmethod
    @abstractmethod
    def build(cls, vectors: StoredVectors, column: Column | None, **settings: Any
              ) -> "Backend":
        """The backend over `vectors`, with every option of `build_options` and
        `search_options` set."""

    @classmethod
    @abstractmethod
    def load(cls, folder: "IndexFolder", stem: str, vectors: StoredVectors,
             column: Column | None, **settings: Any) -> "Backend":
        """What `save` wrote for the pattern at `stem`, checked against its vectors (and
        column), with every option of `search_options` set."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, column_weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """`queries [Q, width]` -> (inner products `[Q, k']`, rows `[Q, k']`), best first by
        the inner product plus each query's weight in `column_weights` times the rows'
        column (QB-Norm; None without it)."""

    @abstractmethod
    def save(self, stem: Path) -> None:
        """Write what `load` needs beside the pattern's stored vectors at `stem`."""
