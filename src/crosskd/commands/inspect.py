"""`crosskd inspect`: what model a config builds and what a checkpoint holds, without data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

import torch

from crosskd.checkpoint import load_original_checkpoint
from crosskd.config import check_config, load_config, model_spec
from crosskd.errors import UserError
from crosskd.models import build_model
from crosskd.shipped import resolve_config


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `inspect --config CFG [--checkpoint PTH] [--json]`."""
    parser = subparsers.add_parser(
        "inspect", help="show a config's model (dims, parameters, state-dict) or a checkpoint",
        description=__doc__)
    parser.add_argument("--config", type=resolve_config,
                        help="experiment config (JSON, original format); configs/NAME.json "
                        "also finds a config shipped with crosskd (default: none)")
    parser.add_argument("--checkpoint", type=Path,
                        help="original trained_model.pth (or exported) checkpoint to list "
                        "(default: none)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _entries(state_dict: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    return [{"key": key, "shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
            for key, value in state_dict.items()]


def describe_config(path: Path) -> dict[str, Any]:
    """Modalities, dims, parameter count and state-dict manifest of the model a config builds."""
    config = load_config(path)
    check_config(config, f"config {path}")
    with torch.device("meta"):  # shapes only: no memory for the weights
        model = build_model(model_spec(config))
    dims = model.dims
    state_dict = model.state_dict()
    return {
        "config": str(path),
        "modalities": list(dims.modalities),
        "expert_dims": {k: list(v) for k, v in dims.expert_dims.items()},
        "raw_input_dims": dict(dims.raw_input_dims),
        "text_dim": dims.text_dim,
        "pooled_text_dim": model.text_pooling.out_dim,
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "total_state_dict_elements": sum(v.numel() for v in state_dict.values()),
        "state_dict": _entries(state_dict),
    }


def describe_checkpoint(path: Path) -> dict[str, Any]:
    """Arch, epoch, monitor_best, config summary and state-dict manifest of a checkpoint."""
    checkpoint = load_original_checkpoint(path)
    return {
        "path": str(path),
        "arch": checkpoint.arch,
        "epoch": checkpoint.epoch,
        "monitor_best": checkpoint.monitor_best,
        "has_optimizer": checkpoint.optimizer is not None,
        "config_modalities": (checkpoint.config.get("experts") or {}).get("modalities"),
        "total_state_dict_elements": sum(v.numel() for v in checkpoint.state_dict.values()),
        "state_dict": _entries(checkpoint.state_dict),
    }


def compare(model_entries: list[dict[str, Any]], checkpoint_entries: list[dict[str, Any]]
            ) -> list[str]:
    """Keys missing from, unexpected in, or shaped differently in the checkpoint."""
    ours = {e["key"]: e["shape"] for e in model_entries}
    theirs = {e["key"]: e["shape"] for e in checkpoint_entries}
    problems = [f"missing {k}" for k in ours if k not in theirs]
    problems += [f"unexpected {k}" for k in theirs if k not in ours]
    problems += [f"shape {k}: checkpoint {theirs[k]} vs model {shape}"
                 for k, shape in ours.items() if k in theirs and theirs[k] != shape]
    return problems


def _print_entries(entries: list[dict[str, Any]]) -> None:
    width = max((len(e["key"]) for e in entries), default=0)
    for entry in entries:
        print(f"  {entry['key']:<{width}}  {tuple(entry['shape'])}")


def _print_text(report: dict[str, Any]) -> None:
    model = report.get("model")
    if model:
        print(f"config: {model['config']}")
        print(f"modalities ({len(model['modalities'])}): {', '.join(model['modalities'])}")
        for name, (in_dim, out_dim) in model["expert_dims"].items():
            print(f"  {name}: raw {model['raw_input_dims'][name]}, pooled {in_dim}, "
                  f"out {out_dim}")
        print(f"text: {model['text_dim']}-d tokens, pooled {model['pooled_text_dim']}")
        print(f"parameters: {model['total_parameters']:,} "
              f"(state-dict elements {model['total_state_dict_elements']:,})")
        print(f"state_dict ({len(model['state_dict'])} entries, original naming):")
        _print_entries(model["state_dict"])
    checkpoint = report.get("checkpoint")
    if checkpoint:
        print(f"checkpoint: {checkpoint['path']} (arch {checkpoint['arch']}, epoch "
              f"{checkpoint['epoch']}, monitor_best {checkpoint['monitor_best']})")
        print(f"state_dict ({len(checkpoint['state_dict'])} entries, "
              f"{checkpoint['total_state_dict_elements']:,} elements):")
        _print_entries(checkpoint["state_dict"])
    if "mismatches" in report:
        problems = report["mismatches"]
        print("checkpoint fits the config's model" if not problems else
              "checkpoint does NOT fit the config's model:\n  " + "\n  ".join(problems))


def _json_shape(report: dict[str, Any]) -> dict[str, Any]:
    """The model's fields at top level (or the checkpoint's, when only it was asked for)."""
    if "model" not in report:
        return report["checkpoint"]
    return {**report["model"], **{k: v for k, v in report.items() if k != "model"}}


def run(args: argparse.Namespace) -> int:
    """Describe the config's model and/or the checkpoint; exit 1 if they do not fit."""
    if args.config is None and args.checkpoint is None:
        raise UserError("give --config CFG and/or --checkpoint PTH")
    report: dict[str, Any] = {}
    if args.config is not None:
        report["model"] = describe_config(args.config)
    if args.checkpoint is not None:
        report["checkpoint"] = describe_checkpoint(args.checkpoint)
    if "model" in report and "checkpoint" in report:
        report["mismatches"] = compare(report["model"]["state_dict"],
                                       report["checkpoint"]["state_dict"])
    if args.json:
        print(json.dumps(_json_shape(report), indent=1))
    else:
        _print_text(report)
    return 1 if report.get("mismatches") else 0
