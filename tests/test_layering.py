"""Layering that shows: each package imports only the layers below it.

From the bottom: errors, tree, experts, datasets, ops -> models, data -> losses -> optim,
checkpoint -> config (parses into the parts' types) -> download, inference (load a trained
model, embed, score: the library the application calls) -> process (the process context:
device, torchrun job, precision) -> train -> search -> commands -> cli; search imports nothing
of train; extract (own videos into datasets) sits above data and datasets, below the commands,
apart from inference and the process context (the command hands it its shard and device).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "crosskd"
APPLICATION = ("crosskd.train", "crosskd.search", "crosskd.commands", "crosskd.cli")


def _imports(package: str) -> set[str]:
    """Every module the package's files import, at any depth (lazy imports included)."""
    found = set()
    files = [SRC / f"{package}.py"] if (SRC / f"{package}.py").is_file() else \
        (SRC / package).rglob("*.py")
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


LIBRARY = ("crosskd.config", "crosskd.checkpoint", "crosskd.download", "crosskd.inference",
           *APPLICATION)


@pytest.mark.parametrize(("package", "forbidden"), [
    ("ops", ("crosskd.models", "crosskd.losses", "crosskd.data", *LIBRARY)),
    ("models", ("crosskd.data", "crosskd.losses", *LIBRARY)),
    ("losses", ("crosskd.models", *LIBRARY)),
    ("data", ("crosskd.models", "crosskd.losses", *LIBRARY)),
    ("datasets", ("crosskd.data", "crosskd.models", *LIBRARY)),
    ("experts", ("crosskd.data", "crosskd.models", *LIBRARY)),
    ("optim", ("crosskd.models", "crosskd.data", *LIBRARY)),
    ("checkpoint", ("crosskd.config", "crosskd.download", "crosskd.inference", *APPLICATION)),
    ("config", ("crosskd.checkpoint", "crosskd.download", "crosskd.inference", *APPLICATION)),
    ("download", ("crosskd.inference", *APPLICATION)),
    ("inference", ("crosskd.download", "crosskd.extract", "crosskd.process", *APPLICATION)),
    ("process", ("crosskd.checkpoint", "crosskd.config", "crosskd.download", "crosskd.extract",
                 *APPLICATION)),
    ("train", ("crosskd.search", "crosskd.commands", "crosskd.cli")),
    ("search", ("crosskd.train", "crosskd.commands", "crosskd.cli")),
    ("extract", ("crosskd.checkpoint", "crosskd.download", "crosskd.inference", "crosskd.process",
                 *APPLICATION)),
])
def test_layering(package, forbidden):
    bad = {module for module in _imports(package)
           if any(module == f or module.startswith(f + ".") for f in forbidden)}
    assert not bad, f"crosskd.{package} imports {sorted(bad)}"
