"""The faster library for each float32 CPU product, measured on this machine and kept in a table.

Whether torch's products (MKL on x86) or oneDNN's are faster depends on the CPU and on the
shape: on the Zen 5 of docs/PERFORMANCE.md oneDNN ran the text projections 2.2x faster, on
an AVX2-only Zen 3 MKL wins the 240-row evaluation products and oneDNN the 64-row training
ones. So `trainer.cpu_matmul` "auto" asks a `MeasuredPlan`: the first time a product of a
given kind, weight shape and row count (rounded up to a power of two) runs, both libraries
compute it a few times, alternately, on random data of that shape, and the faster one is
kept, in memory and in a small JSON table per CPU (`table_path`), so later runs, resumed
runs and other processes on the machine make the same choice without measuring again (and a
resumed run repeats an uninterrupted one bit for bit). Measuring the text projections of
MSRVTT CE+ takes about a second, once per machine.

The table is a file in the user's cache: it is read as untrusted (a value other than a known
library, or a file that is no table, is measured again) and written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from crosskd.cpu import cpu_description
from crosskd.diskwrites import DiskWriteError, write_text_atomically
from crosskd.errors import UserError
from crosskd.ops.cpu_matmul import (PRODUCTS, input_gradient, linear_product, onednn_available,
                                    weight_gradient, weight_gradient_block_rows)
from crosskd.untrusted import json_object_file
from crosskd.user_cache import user_cache_dir

log = logging.getLogger(__name__)

LIBRARIES = ("torch", "onednn")
#: measured row counts are powers of two up to this (larger ones are measured at this many)
MAX_MEASURED_ROWS = 4096
#: each library runs a product at least this many times, and until this long in all
MIN_REPEATS, MIN_SECONDS = 3, 0.02
#: bumped when what is measured changes, so old tables are measured again
TABLE_FORMAT = 1


def table_path() -> Path:
    """$CROSSKD_PRODUCT_TABLE, else one file per CPU and torch version in the user cache."""
    if os.environ.get("CROSSKD_PRODUCT_TABLE"):
        return Path(os.environ["CROSSKD_PRODUCT_TABLE"])
    return user_cache_dir() / "products" / f"{_machine_key()[:16]}.json"


def _machine_key() -> str:
    """What makes measurements comparable: the CPU, torch's version and its thread count."""
    text = f"{cpu_description()} | torch {torch.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()


def measured_rows(rows: int) -> int:
    """The row count a product over `rows` rows is measured at: the next power of two."""
    return min(MAX_MEASURED_ROWS, 1 << max(0, rows - 1).bit_length())


def product_key(product: str, rows: int, weight_shape: tuple[int, ...], threads: int) -> str:
    """The table's key of a product: kind, measured rows, weight [out, in], threads."""
    out_features, in_features = weight_shape
    return (f"{product} rows={measured_rows(rows)} weight={out_features}x{in_features} "
            f"threads={threads}")


def _seconds(run: Callable[[], object]) -> float:
    """The median time of `run` over at least MIN_REPEATS calls and MIN_SECONDS, after one."""
    run()
    durations: list[float] = []
    while len(durations) < MIN_REPEATS or sum(durations) < MIN_SECONDS:
        start = time.perf_counter()
        run()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def _candidates(product: str, rows: int, weight_shape: tuple[int, ...]
                ) -> dict[str, Callable[[], object]]:
    """Each library's way of computing `product` on random float32 data of its shape, as
    the layers compute it (a large weight gradient by oneDNN in blocks of rows, by torch into
    a kept buffer: crosskd.train.weight_gradients)."""
    out_features, in_features = weight_shape
    weight = torch.rand(out_features, in_features)
    x, grad = torch.rand(rows, in_features), torch.rand(rows, out_features)
    if product == "forward":
        return {lib: (lambda lib=lib: linear_product(x, weight, None, lib)) for lib in LIBRARIES}
    if product == "input_gradient":
        return {lib: (lambda lib=lib: input_gradient(grad, weight, lib)) for lib in LIBRARIES}
    block = weight_gradient_block_rows(weight)
    kept = torch.empty(out_features, in_features)

    def by_onednn() -> None:
        for start in range(0, out_features, block):
            weight_gradient(grad[:, start:start + block], x, "onednn")

    return {"torch": lambda: torch.mm(grad.t(), x, out=kept), "onednn": by_onednn}


def measure(product: str, rows: int, weight_shape: tuple[int, ...]) -> dict[str, float]:
    """Seconds per `product` of a layer with a weight of `weight_shape` over `rows` rows,
    by each library, measured alternately (torch, oneDNN, then each again) so a change in
    the machine's load falls on both."""
    candidates = _candidates(product, measured_rows(rows), weight_shape)
    times: dict[str, list[float]] = {lib: [] for lib in candidates}
    with torch.no_grad():
        for _ in range(2):
            for lib, run in candidates.items():
                times[lib].append(_seconds(run))
    return {lib: min(values) for lib, values in times.items()}


class MeasuredPlan:
    """A product plan (crosskd.ops.cpu_matmul.ProductPlan) that names, per product, weight
    shape, row count and thread count, the library measured fastest on this machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._choices = _read_table(path)
        self._unwritable = False
        #: seconds per library of each product this process measured (benchmarks show them)
        self.measurements: dict[str, dict[str, float]] = {}

    def library(self, product: str, rows: int, weight: torch.Tensor) -> str:
        """The faster library for this product, measured the first time it is asked for."""
        key = product_key(product, rows, tuple(weight.shape), torch.get_num_threads())
        choice = self._choices.get(key)
        if choice is None:
            with self._lock:
                choice = self._choices.get(key) or self._measure(key, product, rows,
                                                                 tuple(weight.shape))
        return choice

    def _measure(self, key: str, product: str, rows: int, weight_shape: tuple[int, ...]) -> str:
        seconds = measure(product, rows, weight_shape)
        self.measurements[key] = seconds
        choice = min(seconds, key=seconds.get)
        log.info("%s: %s (%s)", key, choice,
                 ", ".join(f"{lib} {1e3 * s:.2f} ms" for lib, s in seconds.items()))
        self._choices[key] = choice
        self._write()
        return choice

    def _write(self) -> None:
        """Keep the table for later runs; a cache that cannot be written is said once."""
        if self._unwritable:
            return
        table = {"format": TABLE_FORMAT, "machine": _machine_key(), "cpu": cpu_description(),
                 "torch": torch.__version__, "choices": dict(sorted(self._choices.items()))}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomically(self.path, json.dumps(table, indent=1) + "\n",
                                  "set $CROSSKD_PRODUCT_TABLE to a writable file")
        except (OSError, DiskWriteError) as err:
            self._unwritable = True
            log.warning("the measured product choices cannot be kept (%s); they are measured "
                        "again in every run", err)

    def __deepcopy__(self, memo: dict) -> MeasuredPlan:
        """A copied model shares the plan (its lock cannot be copied, its table need not)."""
        return self


def _read_table(path: Path) -> dict[str, str]:
    """The choices a table holds for this machine; {} where there is none, it is no table,
    or it was measured on another CPU or torch (a file we did not write is not trusted)."""
    try:
        table = json_object_file(path, "", "is not a JSON object")
    except UserError as err:
        log.warning("measuring the CPU products again: %s", err)
        return {}
    if not table or table.get("format") != TABLE_FORMAT or table.get("machine") != _machine_key():
        return {}
    choices = table.get("choices")
    if not isinstance(choices, dict):
        return {}
    return {key: value for key, value in choices.items()
            if isinstance(key, str) and value in LIBRARIES
            and key.split(" ", 1)[0] in PRODUCTS}


def measured_plan() -> MeasuredPlan:
    """This process's measured plan for the table at `table_path()` (one per table, so every
    model of the process shares its measurements)."""
    if not onednn_available():
        raise RuntimeError("a measured plan chooses between torch and oneDNN; this torch has "
                           "no oneDNN")
    return _plan_for(table_path())


@functools.cache
def _plan_for(path: Path) -> MeasuredPlan:
    return MeasuredPlan(path)
