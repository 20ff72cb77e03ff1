"""crosskd's folder in the user's cache: what persists between runs on one machine (packed
features, measured product choices), where XDG says caches go."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/crosskd, else ~/.cache/crosskd."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crosskd"
