"""Seeding and capturing every random number generator a run uses, for exact resumption."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return the numpy Generator that drives batch sampling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _legacy_numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def capture_rng_state(data_rng: np.random.Generator) -> dict[str, Any]:
    """Every RNG state as tensors and plain data, so `torch.load(weights_only=True)` reads it."""
    python_state = random.getstate()
    state: dict[str, Any] = {
        "python_version": python_state[0],
        "python_internal": torch.tensor(python_state[1], dtype=torch.int64),
        "python_gauss": python_state[2],
        "numpy_generator": data_rng.bit_generator.state,
        "numpy_legacy": _legacy_numpy_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], data_rng: np.random.Generator) -> None:
    """Put back the states `capture_rng_state` recorded (the Generator is updated in place)."""
    internal = tuple(int(x) for x in state["python_internal"].tolist())
    random.setstate((state["python_version"], internal, state["python_gauss"]))
    data_rng.bit_generator.state = state["numpy_generator"]
    legacy = state["numpy_legacy"]
    np.random.set_state((legacy["name"], legacy["keys"].numpy().astype(np.uint32), legacy["pos"],
                         legacy["has_gauss"], legacy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
