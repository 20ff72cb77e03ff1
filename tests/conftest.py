"""Shared fixtures: where the golden data of the original implementation lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"


def conformance_dir() -> Path | None:
    """The golden-data folder: $CROSSKD_CONFORMANCE, else ../shared/conformance beside the checkout."""
    path = Path(os.environ.get("CROSSKD_CONFORMANCE", DEFAULT_CONFORMANCE))
    return path if (path / "README.md").is_file() else None


@pytest.fixture(scope="session")
def conformance() -> Path:
    """Skip golden tests, with the reason, when the golden data is not available."""
    path = conformance_dir()
    if path is None:
        pytest.skip("golden data not found: set CROSSKD_CONFORMANCE to the conformance folder "
                    f"(default {DEFAULT_CONFORMANCE})")
    return path


@pytest.fixture(autouse=True, scope="session")
def _packed_feature_cache(tmp_path_factory) -> None:
    """Keep the packed-feature cache of every test (and its subprocesses) in a temporary folder."""
    os.environ["CROSSKD_CACHE_DIR"] = str(tmp_path_factory.mktemp("packed-cache"))


@pytest.fixture
def one_thread():
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
