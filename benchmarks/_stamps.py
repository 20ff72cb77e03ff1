"""Run a train.py or test.py in this process with timing stamps written as JSON lines.

    python3 _stamps.py STAMPS_FILE original|crosskd SCRIPT [ARGS...]

The script runs unchanged (runpy, as `__main__`); a few of its functions are wrapped so that
the moments both implementations share are stamped with time.perf_counter(): data loading
(`load_start`/`load_end`), the start of a training epoch (`epoch_start`), the end of every
training batch (`batch_end`: the original's optimizer step, crosskd's eager runner's call,
which ends with the update) and validation (`valid_start`/`valid_end`).
vs_original.py reads the file back.
"""

from __future__ import annotations

import functools
import json
import os
import runpy
import sys
import time
from typing import Any, Callable

_STAMPS: Any = None


def _stamp(event: str) -> None:
    _STAMPS.write(json.dumps({"event": event, "t": time.perf_counter()}) + "\n")
    _STAMPS.flush()


def _wrap(owner: Any, name: str, before: str | None = None, after: str | None = None) -> None:
    """Replace `owner.name` by a function stamping `before` and `after` around the call."""
    inner: Callable = getattr(owner, name)

    @functools.wraps(inner)
    def stamped(*args, **kwargs):
        if before:
            _stamp(before)
        result = inner(*args, **kwargs)
        if after:
            _stamp(after)
        return result

    setattr(owner, name, stamped)


def _wrap_classmethod(owner: type, name: str, before: str, after: str) -> None:
    inner = getattr(owner, name).__func__

    def stamped(cls, *args, **kwargs):
        _stamp(before)
        result = inner(cls, *args, **kwargs)
        _stamp(after)
        return result

    setattr(owner, name, classmethod(functools.wraps(inner)(stamped)))


def _hook_original() -> None:
    """The original's Trainer, its RAdam and its data loader (run from its checkout)."""
    sys.path.insert(0, os.getcwd())
    import data_loader.data_loaders as loaders
    import trainer.trainer as trainer
    from utils import radam
    _wrap(loaders.ExpertDataLoader, "__init__", "load_start", "load_end")
    _wrap(trainer.Trainer, "_train_epoch", before="epoch_start")
    _wrap(trainer.Trainer, "_valid_epoch", "valid_start", "valid_end")
    _wrap(radam.RAdam, "step", after="batch_end")


def _hook_crosskd() -> None:
    """crosskd's Trainer (its epoch loop and validation), its eager runner (one call per
    batch, on the CPU) and its loader."""
    from crosskd.data.retrieval import RetrievalData
    from crosskd.train import runners, trainer
    _wrap_classmethod(RetrievalData, "load", "load_start", "load_end")
    _wrap(trainer.Trainer, "_train_epoch", before="epoch_start")
    _wrap(runners.EagerRunner, "__call__", after="batch_end")
    _wrap(trainer, "evaluate", "valid_start", "valid_end")


def main() -> None:
    global _STAMPS
    stamps_path, side, script, *args = sys.argv[1:]
    _STAMPS = open(stamps_path, "a", encoding="utf-8")  # noqa: SIM115 (open for the run)
    {"original": _hook_original, "crosskd": _hook_crosskd}[side]()
    sys.argv = [script, *args]
    _stamp("process_start")
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
