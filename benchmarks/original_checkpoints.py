"""Evaluating an original `trained_model.pth` at MSRVTT size: time and peak memory per format.

    python3 benchmarks/original_checkpoints.py      # data shared with pipeline.py (/tmp/crosskd-bench)

Writes an original-layout checkpoint of the published CE+ cecap model (262.7 M parameters,
with the RAdam state of one step, as the original stores its optimizer) in torch's zip
format and in the legacy format of the published 2020 checkpoints, then runs `test.py` on
each (250 test videos x 20 captions, whole process: wall time and peak RSS). For scale, a
child that only reads the legacy file with torch.load shows what reading it whole costs.
The weights are fresh, so the metrics say nothing; the memory and time are the point.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

from _msrvtt_bench import (REPO, BenchData, bench_config, make_dataset, run_process,
                           uptime_load, write_config)

FORMATS = {"zip": True, "legacy": False}


def _write_checkpoints(config: dict, folder: Path) -> dict[str, Path]:
    """The model with one RAdam step's state, saved in both formats (in a child process,
    so that its 3 GB do not count towards this process's peak)."""
    import torch

    from crosskd.checkpoint import save_original_checkpoint
    from crosskd.config import model_spec
    from crosskd.models import build_model

    torch.manual_seed(0)
    model = build_model(model_spec(config))
    optimizer = torch.optim.RAdam(model.parameters())
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    paths = {name: folder / f"trained_model_{name}.pth" for name in FORMATS}
    save_original_checkpoint(paths["zip"], model, config, optimizer=optimizer.state_dict())
    payload = torch.load(paths["zip"], weights_only=False)
    torch.save(payload, paths["legacy"], _use_new_zipfile_serialization=False)
    return paths


def _torch_reads_whole(path: Path) -> None:
    """What torch.load alone holds after reading the file (printed as peak RSS in GiB)."""
    import torch
    payload = torch.load(path, weights_only=False)
    print(len(payload["state_dict"]), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/crosskd-bench"))
    parser.add_argument("--child", choices=("write", "torch-load"), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work.resolve()
    data_dir = work / "data" / "MSRVTT"
    config = bench_config(data_dir, work / "runs")
    folder = work / "original-checkpoints"
    if args.child == "write":
        _write_checkpoints(config, folder)
        return
    if args.child == "torch-load":
        _torch_reads_whole(args.path)
        return
    make_dataset(BenchData(), data_dir)
    config_path = write_config(config, work / "original-checkpoints-cecap.json")
    folder.mkdir(parents=True, exist_ok=True)
    run_process([sys.executable, __file__, "--work", str(work), "--child", "write"])
    rows = []
    for name in FORMATS:
        path = folder / f"trained_model_{name}.pth"
        result = run_process([sys.executable, str(REPO / "test.py"), "--config",
                              str(config_path), "--resume", str(path),
                              "--eval_from_training_config", "--device", "cpu",
                              "--cache_dir", str(work / "cache")])
        rows.append((f"`test.py`, original checkpoint, {name} format", result.seconds,
                     result.peak_rss_gib))
    whole = run_process([sys.executable, __file__, "--work", str(work), "--child",
                         "torch-load", "--path", str(folder / "trained_model_legacy.pth")])
    rows.append(("torch.load of the legacy file alone", whole.seconds, whole.peak_rss_gib))
    size = (folder / "trained_model_legacy.pth").stat().st_size / 2**30
    print(f"\nCE+ cecap (262.7 M parameters) with RAdam state, {size:.2f} GiB per file; "
          f"250 test videos x 20 captions; load average {uptime_load()}\n")
    print("| process | wall s | peak RSS GiB |\n|---|---|---|")
    for label, seconds, rss in rows:
        print(f"| {label} | {seconds:.1f} | {rss:.2f} |")


if __name__ == "__main__":
    main()
