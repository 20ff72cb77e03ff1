"""The search-backend registry: every way of searching one pattern's vectors, by name.

A backend is one `Backend` subclass (crosskd.search.backends.base) declaring its name, a
one-line description, the optional package it needs and the options it takes; its entry in
BACKENDS makes it a choice of `crosskd index --backend` and a backend an index manifest may
name, and gives `crosskd index` its build options and `crosskd search` / `serve` its search
options as flags (crosskd.commands.backend_flags). Nothing else names a backend.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from crosskd.errors import UserError
from crosskd.search.backends.base import Backend, BackendOption, faiss_module
from crosskd.search.backends.exact import ExactBackend
from crosskd.search.backends.hnsw import HNSWBackend
from crosskd.search.backends.ivf import IVFBackend
from crosskd.search.normalisers import Column
from crosskd.search.storage import StoredVectors

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder

log = logging.getLogger(__name__)

#: every search backend by its registry name
BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (ExactBackend, IVFBackend, HNSWBackend)}
#: the default backend, and the one any pattern can fall back to
EXACT = ExactBackend.name

__all__ = ["BACKENDS", "EXACT", "Backend", "BackendOption", "ExactBackend", "build_backend",
           "check_backend", "faiss_module", "index_options", "load_backend", "search_options",
           "usable_backend"]


def backend_class(name: str) -> type[Backend]:
    """The backend registered as `name`, else a UserError naming the choices."""
    if name not in BACKENDS:
        raise UserError(f"search backend {name!r} is not one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def check_backend(name: str) -> str:
    """`name` when it is a backend whose package is installed, else a UserError saying
    which package to install."""
    needs = backend_class(name).needs
    if needs is not None and not needs.installed():
        raise UserError(f"the {name} backend needs {needs.module}: {needs.install_hint()}")
    return name


def usable_backend(name: str) -> str:
    """`name`, or exact (the same answers, slower) when its package is absent."""
    needs = backend_class(name).needs
    if needs is not None and not needs.installed():
        log.warning("the index was built with the %s backend, which needs %s (%s); searching "
                    "exactly instead", name, needs.module, needs.install_hint())
        return EXACT
    return name


def build_backend(name: str, vectors: StoredVectors, approximate_from: int | None = None,
                  column: Column | None = None, **options: Any) -> Backend:
    """The backend `name` over one pattern's vectors, with `options` (its build and search
    options; the defaults for the rest); exact below `approximate_from` rows (default: the
    backend's `scan_below`)."""
    cls = backend_class(name)
    settings = cls.settings(options, cls.build_options + cls.search_options)
    if len(vectors) < (cls.scan_below if approximate_from is None else approximate_from):
        return ExactBackend(vectors, column=column)
    return cls.build(vectors, column, **settings)


def load_backend(name: str, folder: "IndexFolder", stem: str, vectors: StoredVectors,
                 column: Column | None = None, **options: Any) -> Backend:
    """The backend `build_backend` made and saved for the pattern at `stem`, with the search
    `options` it takes (those only other backends take are left out: `crosskd search` offers
    every backend's before it knows the index's)."""
    unknown = set(options) - set(search_options())
    if unknown:
        raise UserError(f"no search backend takes option {', '.join(sorted(unknown))} (they "
                        f"take {', '.join(search_options())})")
    cls = backend_class(name)
    taken = {option.name for option in cls.search_options}
    settings = cls.settings({k: v for k, v in options.items() if k in taken},
                            cls.search_options)
    return cls.load(folder, stem, vectors, column, **settings)


def index_options() -> dict[str, tuple[BackendOption, tuple[str, ...]]]:
    """Every backend's build options by name, with the backends that take each."""
    return _declared(lambda cls: cls.build_options)


def search_options() -> dict[str, tuple[BackendOption, tuple[str, ...]]]:
    """Every backend's search options by name, with the backends that take each."""
    return _declared(lambda cls: cls.search_options)


def _declared(options_of: Callable[[type[Backend]], tuple[BackendOption, ...]]
              ) -> dict[str, tuple[BackendOption, tuple[str, ...]]]:
    """One declaration per option name (backends sharing an option share its declaration:
    one flag cannot have two defaults)."""
    found: dict[str, tuple[BackendOption, tuple[str, ...]]] = {}
    for name, cls in BACKENDS.items():
        for option in options_of(cls):
            known, takers = found.get(option.name, (option, ()))
            if known != option:
                raise TypeError(f"backends {', '.join(takers)} and {name} declare option "
                                f"{option.name} differently")
            found[option.name] = (option, (*takers, name))
    return found
