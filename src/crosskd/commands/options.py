"""Command-line options shared by `train` and `test` (the original's flags plus ours)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from crosskd.config import (Config, ExperimentConfig, apply_overrides, check_config,
                            check_override_flags, load_config, parse_custom_args,
                            parse_experiment, parse_set_args)
from crosskd.checkpoint.run_state import BEST_NAME, LAST_NAME
from crosskd.commands.device_flag import DEVICE_HELP
from crosskd.diskwrites import atomic_path
from crosskd.errors import UserError
from crosskd.shipped import resolve_config
from crosskd.train.seed_range import check_seed
from crosskd.untrusted import ascii_int
from crosskd.user_cache import user_cache_dir


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """--config, --device, --resume, --custom_args, --set, --out, --cache_dir and --no_cache."""
    parser.add_argument("--config", type=resolve_config,
                        help="experiment config (JSON, original format); configs/NAME.json "
                        "also finds a config shipped with crosskd (default: the config stored "
                        "with --resume)")
    parser.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument("--resume", help="checkpoint file or run folder (default: none)")
    parser.add_argument("--custom_args", "--custom-args",
                        help="overrides as key.path@value+other.key@value (default: none)")
    parser.add_argument("--set", dest="set_args", action="append", metavar="KEY.PATH=VALUE",
                        help="override one config value (repeatable); values are JSON "
                        "(default: none)")
    parser.add_argument("--out", "--output", dest="out", type=Path,
                        help="write the final test metrics to this JSON file "
                        "(default: not written)")
    parser.add_argument("--cache_dir", "--cache-dir", type=Path, default=default_cache_dir(),
                        help="keep the packed features here, so later runs only map them; "
                        "`crosskd cache list` shows them "
                        f"(default: $CROSSKD_CACHE_DIR or {default_cache_dir()})")
    parser.add_argument("--no_cache", "--no-cache", dest="cache_dir", action="store_const",
                        const=None, help="pack into a temporary folder removed after the run")


def existing_checkpoint(text: str) -> Path:
    """argparse type: a checkpoint file, or a run folder holding one, so the error names the
    flag it came from (not the --resume of other commands)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{path}: no such checkpoint file or run folder")
    if path.is_dir() and not any((path / name).is_file() for name in (BEST_NAME, LAST_NAME)):
        raise argparse.ArgumentTypeError(f"{path}: the folder holds neither {BEST_NAME} nor "
                                         f"{LAST_NAME}; give a run folder of crosskd train or "
                                         "a checkpoint file")
    return path


def existing_file(text: str) -> Path:
    """argparse type: a file that exists, checked before anything runs or logs."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such file" if not path.exists()
                                         else f"{path} is a folder, not a file")
    return path


def whole_number(what: str = "", low: int | None = None, high: int | None = None
                 ) -> Callable[[str], int]:
    """argparse type: ASCII digits within [low, high] (`int()` also reads '١' or '１', and
    '²' ends in a traceback); a mistake is argparse's one-line error naming the flag, with
    `what` the number means when given."""

    def parse(text: str) -> int:
        try:
            return ascii_int(text, what or "value", low, high)
        except ValueError as err:
            message = str(err)
            raise argparse.ArgumentTypeError(message if what else
                                             message.removeprefix("value: ")) from None

    return parse


#: argparse type: a whole number of at least 1
positive_int = whole_number(low=1)


def default_cache_dir() -> Path:
    """Where packed features persist between runs: $CROSSKD_CACHE_DIR, else the user cache.

    Entries are keyed by the source file's content (sha256) and the packing options, so one
    folder serves every dataset and a changed file is packed again.
    """
    if os.environ.get("CROSSKD_CACHE_DIR"):
        return Path(os.environ["CROSSKD_CACHE_DIR"])
    return user_cache_dir() / "packed"


def config_from_args(args: argparse.Namespace, fallback: Config | None = None
                     ) -> ExperimentConfig | None:
    """The config file with the overrides applied (or `fallback`, e.g. a checkpoint's), parsed.

    Unknown keys (in the file, in `--custom_args`, in `--set`) and mistyped values are refused
    here, before any data is read, each naming the closest known key.
    """
    if args.config:
        base = load_config(args.config)
        source = f"config {args.config} (or a file it inherits from)"
    elif fallback is not None:
        base, source = fallback, "the checkpoint's stored config"
    else:
        return None
    check_config(base, source)
    custom, sets = parse_custom_args(args.custom_args), parse_set_args(args.set_args)
    check_override_flags({"--custom_args": [key for key, _ in custom],
                          "--set": [key for key, _ in sets]})
    config = apply_overrides(base, custom, "--custom_args")
    config = apply_overrides(config, sets, "--set")
    return parse_experiment(config, "the config with --custom_args/--set applied")


def parse_seeds(text: str | None) -> list[int] | None:
    """`--seeds 0,1,2` -> [0, 1, 2]."""
    if not text:
        return None
    try:
        seeds = [ascii_int(part, "seed") for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected comma-separated integers such as 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: expected distinct integers such as 0,1,2")
    return [check_seed(seed, f"--seeds {text!r}") for seed in seeds]


def _out_error(path: Path, err: OSError) -> UserError:
    """One line for an `--out` the OS refused, naming the flag, the path and the fix."""
    reason = err.strerror or str(err)
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        reason = "part of the path is a file, not a folder"
    return UserError(f"--out {path}: cannot write the metrics file there ({reason}); "
                     "choose a file in a folder you can write")


def check_out_writable(path: Path | None) -> None:
    """Refuse an `--out` that cannot be written before any work, not after hours of training:
    create its folder and write (then remove) a probe file beside it."""
    if path is None:
        return
    if path.is_dir():
        raise UserError(f"--out {path}: is a folder; give the path of a JSON file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise _out_error(path, err) from None


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` (parents created) when a path was given."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:  # never a half-written metrics file
            tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    except OSError as err:
        raise _out_error(path, err) from None
