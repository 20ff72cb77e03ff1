"""Every config key crosskd knows: the keys the typed parts declare as their fields
(crosskd.config.keys), and the original format's keys crosskd accepts and ignores, each with
the reason.

`*` stands for any name: an expert (`imagenet.senet154.0`), "text", a feature type. A key
that is neither declared nor below an open or ignored key is refused with the closest known
key (crosskd.config.known). `eval_settings` may hold any top-level key but itself. To add a
key: add a field to the part that reads it (its type says what the key may hold), and name
it in docs/USAGE.md.
"""

from __future__ import annotations

from typing import Iterator

from crosskd.config.data import DataKeys
from crosskd.config.evaluation import EvaluationKeys
from crosskd.config.experiment import RunKeys
from crosskd.config.keys import NULL, WILDCARD, Shape, declared, section_path
from crosskd.config.model import ModelKeys
from crosskd.config.objective import ObjectiveKeys
from crosskd.config.paths import KeyPath, format_path
from crosskd.config.runtime import RuntimeSettings
from crosskd.config.trainer import TrainerSpec

#: the typed parts whose fields declare every key crosskd reads.
PARTS = (RunKeys, ModelKeys, DataKeys, ObjectiveKeys, TrainerSpec, RuntimeSettings,
         EvaluationKeys)


def part_keys(part: type) -> Iterator[tuple[KeyPath, Shape]]:
    """The keys a declaring class declares, and everything below them."""
    return _walk(part, section_path(part))


def _walk(cls: type, prefix: KeyPath) -> Iterator[tuple[KeyPath, Shape]]:
    """The keys a declaring class holds below `prefix`, and everything below them."""
    for key in declared(cls):
        path = (*prefix, *key.path)
        yield path, key.shape
        yield from _below(key.shape, path)


def _below(shape: Shape, path: KeyPath) -> Iterator[tuple[KeyPath, Shape]]:
    if shape.section:
        yield from _walk(shape.section, path)
    elif shape.names:
        named = (*path, WILDCARD)
        yield named, shape.names
        yield from _below(shape.names, named)


def declared_keys(parts: tuple[type, ...] = PARTS) -> dict[KeyPath, Shape]:
    """Every key the parts declare, with what it may hold; an object named only on the way
    to a key (`trainer`) may be left out or null. A key declared twice is a TypeError."""
    keys: dict[KeyPath, Shape] = {}
    on_the_way: set[KeyPath] = set()
    for part in parts:
        for path, shape in part_keys(part):
            if path in keys:
                raise TypeError(f"config key {format_path(path)} is declared twice")
            keys[path] = shape
            on_the_way.update(path[:depth] for depth in range(1, len(path)))
    return {**{path: Shape((dict, NULL)) for path in sorted(on_the_way - keys.keys())}, **keys}


#: every key crosskd reads (`*` for any name), with what it may hold.
KNOWN = declared_keys()

#: keys of the original format that crosskd accepts and does not use, and why.
IGNORED: dict[str, str] = {
    "inherit_from": "resolved when the file is read; a merged config may still name it",
    "n_gpu": "the original's GPU count; choose the device with --device",
    "log_name": "the original's log file; each run logs into its own folder",
    "metrics": "the original's metric list; t2v and v2t metrics are always reported",
    "visualizer": "the original's ranking visualiser, not part of crosskd",
    "disable_nan_checks": "a non-finite loss always stops training",
    "eval_mode": "the original's test_run mode; the final test always uses model_best.pth",
    "text_embedding_model_configs": "where the original found its text models; crosskd "
                                    "reads precomputed text features",
    "experts.text_agg": "caption pooling; the original's configs all use vlad, the only "
                        "one crosskd builds",
    "data_loader.type": "the original's loader class; crosskd has one loader",
    "data_loader.args.num_workers": "loader processes; batches are cut from the packed "
                                    "store in the training process",
    "data_loader.args.refresh_lru_cache": "the original's feature cache; crosskd maps a "
                                          "packed store (--cache_dir)",
    "data_loader.args.feat_aggregation.*.model": "a note of the original; the file name "
                                                 "comes from the expert's name",
    "data_loader.args.feat_aggregation.*.flaky": "missing features are always allowed "
                                                 "(zeroed, marked unavailable)",
    "data_loader.args.feat_aggregation.*.aggregate": "several statistics are always "
                                                     "concatenated",
    "data_loader.args.feat_aggregation.*.aggregate-axis": "statistics are concatenated on "
                                                          "the feature axis",
    "data_loader.args.feat_aggregation.*.feat_type": "the detection expert's feature kind; "
                                                     "no crosskd layout reads it",
    "trainer.save_only_best": "crosskd keeps model_best.pth and checkpoint_last.pth",
    "trainer.verbosity": "the original's log level; crosskd logs through Python logging",
    # the original tester's settings, which `eval_settings` holds and merges to the top
    "tester": "the original tester's output folder and log level; `test --out` writes "
              "the metrics",
    "disable_gpu": "choose the device with --device",
}
