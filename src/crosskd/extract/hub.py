"""Pretrained weights through transformers' own mechanism (the Hugging Face hub cache) or a
local folder, and the tag that records which weights made a feature."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from crosskd.data.fingerprint import content_digest
from crosskd.errors import UserError

#: files of a `save_pretrained` folder whose bytes are the weights.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def import_transformers(what: str) -> Any:
    """The transformers module, or one line naming the extra that installs it."""
    try:
        import transformers
    except ImportError:
        raise UserError(f"{what} needs transformers: pip install \"crosskd[extract]\"") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def from_pretrained(loader: Any, model: str, weights: str | None, what: str,
                    option: str) -> Any:
    """`loader.from_pretrained` on a local folder (`weights`) or a hub name (`model`), the
    hub cache first: a cached model loads without asking the hub (which, unreachable, would
    be retried for most of a minute), and the hub is asked only for what the cache lacks.

    A failure (no network, unknown name, damaged folder) is one line naming `option`, the
    setting that takes a local folder saved with `save_pretrained`.
    """
    if weights is not None and not Path(weights).is_dir():
        raise UserError(f"{what}: {option}={weights} is not a folder; give a folder written "
                        "by transformers' save_pretrained (config.json and the weights)")
    if weights is None:
        cached = cached_pretrained(loader, model)
        if cached is not None:
            return cached
    source = weights or model
    try:
        return loader.from_pretrained(source)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UserError(f"{what}: cannot load the weights of {source!r} ({reason}); without "
                        f"network access pass a local folder saved with save_pretrained as "
                        f"{option}=DIR") from None


def cached_pretrained(loader: Any, model: str) -> Any | None:
    """`loader.from_pretrained(model)` from the hub cache alone; None when it lacks a file."""
    try:
        return loader.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError):
        return None


def weights_tag(model: str, weights: str | None, loaded: Any) -> str:
    """`hf:<name>@<commit>` for hub weights, `sha256:<digest>` of a local folder's weights."""
    if weights is None:
        commit = getattr(getattr(loaded, "config", None), "_commit_hash", None)
        return f"hf:{model}@{commit or cached_commit(model) or 'unknown'}"
    digest = hashlib.sha256()
    for path in sorted(Path(weights).iterdir()):
        if path.suffix in _WEIGHT_SUFFIXES:
            digest.update(path.name.encode())
            digest.update(content_digest(path).encode())  # streamed: weights run to GBs
    return f"sha256:{digest.hexdigest()}"


def cached_commit(model: str) -> str | None:
    """The commit the hub cache holds `model`'s config of: its snapshot folder's name
    (transformers 5 no longer records it on the config)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not a repository id
        return None
    return Path(path).parent.name if isinstance(path, str) else None
