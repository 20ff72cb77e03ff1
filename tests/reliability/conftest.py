"""Fixtures of the bad-input catalogue and kill tests: a tiny dataset, workspaces, a CLI runner."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from crosskd.cli import main
from crosskd.data.synth import write_synthetic
from reliability_support import CliResult, Workspace, tiny_config, tiny_spec


@pytest.fixture(scope="session")
def pristine_dataset(tmp_path_factory) -> Path:
    """The data_dir of one tiny synthetic dataset (never modified: tests copy it)."""
    root = tmp_path_factory.mktemp("pristine")
    return write_synthetic(tiny_spec(), root / "MSRVTT").parents[1]


@pytest.fixture
def workspace(pristine_dataset, tmp_path) -> Workspace:
    """A fresh copy of the tiny dataset and a 2-epoch config pointing at it."""
    data_dir = tmp_path / "data"
    shutil.copytree(pristine_dataset, data_dir)
    save_dir = tmp_path / "saved"
    space = Workspace(data_dir, save_dir, tmp_path / "tiny.json",
                      tiny_config(data_dir, save_dir))
    space.write_config()
    return space


@pytest.fixture
def cli(capsys) -> Callable[..., CliResult]:
    """Run `crosskd <argv>` in-process; argparse exits are turned into a status too."""

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            status = main([str(a) for a in argv])
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else 1
        return CliResult(status, capsys.readouterr().err)

    return run


@pytest.fixture(autouse=True)
def _one_thread_everywhere(one_thread) -> None:
    """Every reliability test runs its tiny models on one thread (the shared `one_thread`)."""

