"""Without the golden data, the skip reason says where it was looked for and what it is."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN_TEST = "tests/test_inspect.py"


def skip_reasons(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CROSSKD_CONFORMANCE"}
    if env_value is not None:
        env["CROSSKD_CONFORMANCE"] = env_value
    result = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider",
                             "-o", "addopts=", GOLDEN_TEST], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert "SKIPPED" in result.stdout, result.stdout + result.stderr
    return result.stdout


def test_the_skip_names_the_env_var_value_and_what_the_folder_is(tmp_path):
    missing = tmp_path / "no-golden-here"
    reasons = skip_reasons(str(missing))
    assert f"golden data not found in {missing} (named by $CROSSKD_CONFORMANCE)" in reasons
    assert "outputs of the original implementation" in reasons
    assert "../shared/conformance" in reasons


def test_without_the_env_var_the_skip_names_the_default_folder(monkeypatch):
    spec = importlib.util.spec_from_file_location("top_conftest", REPO / "tests" / "conftest.py")
    top = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(top)
    monkeypatch.delenv("CROSSKD_CONFORMANCE", raising=False)
    assert top.missing_conformance_reason().startswith(
        f"golden data not found in {top.DEFAULT_CONFORMANCE} (the default; "
        "$CROSSKD_CONFORMANCE is not set)")
