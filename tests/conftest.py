"""Shared fixtures: where the golden data of the original implementation lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_ENV = "CROSSKD_CONFORMANCE"
DEFAULT_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"


def expected_conformance_dir() -> Path:
    """Where the golden data is looked for: $CROSSKD_CONFORMANCE, else ../shared/conformance."""
    return Path(os.environ.get(CONFORMANCE_ENV) or DEFAULT_CONFORMANCE)


def conformance_dir() -> Path | None:
    """The golden-data folder when it is there (it holds a README.md), else None."""
    path = expected_conformance_dir()
    return path if (path / "README.md").is_file() else None


def missing_conformance_reason() -> str:
    """Why the golden tests are skipped: the folder looked for, how it was chosen, what it is."""
    how = (f"named by ${CONFORMANCE_ENV}" if os.environ.get(CONFORMANCE_ENV) else
           f"the default; ${CONFORMANCE_ENV} is not set")
    return (f"golden data not found in {expected_conformance_dir()} ({how}): that folder "
            "holds the outputs of the original implementation, shipped beside the checkout "
            f"as ../shared/conformance; set {CONFORMANCE_ENV}=/path/to/conformance to run "
            "these tests")


@pytest.fixture(scope="session")
def conformance() -> Path:
    """Skip golden tests, with the reason, when the golden data is not available."""
    path = conformance_dir()
    if path is None:
        pytest.skip(missing_conformance_reason())
    return path


@pytest.fixture(autouse=True, scope="session")
def _packed_feature_cache(tmp_path_factory) -> None:
    """Keep the packed-feature cache and the measured product table of every test (and its
    subprocesses) in a temporary folder."""
    os.environ["CROSSKD_CACHE_DIR"] = str(tmp_path_factory.mktemp("packed-cache"))
    os.environ["CROSSKD_PRODUCT_TABLE"] = str(tmp_path_factory.mktemp("products") / "table.json")


@pytest.fixture
def one_thread():
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
