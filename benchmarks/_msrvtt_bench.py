"""Shared by the pipeline benchmarks: a seeded synthetic MSRVTT at the published model size,
its config, and whole-process measurements (wall time and peak RSS of a child process).

The data has the real widths (scene 2208, senet154 2048, resnext101 2048, two r2p1d 512,
audio 128-d and speech 300-d tokens, gpt2-xl-finetune 1600-d caption tokens) and split lists
of exactly the requested sizes; the config is the published
msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json with data_dir pointed at it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from crosskd.synth_like import LikeSizes

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json"
REAL_DIMS = {"scene.densenet161.0": 2208, "r2p1d.r2p1d-ig65m-kinetics.0": 512,
             "imagenet.senet154.0": 2048, "r2p1d.r2p1d-ig65m.0": 512,
             "imagenet.resnext101_32x48d.0": 2048}
FEATURES = "high-quality/structured-symlinks"


@dataclass
class BenchData:
    """Sizes of a synthetic MSRVTT: videos per split, captions per video, tokens per caption."""

    train: int = 1000
    val: int = 250
    test: int = 250
    captions: int = 20
    caption_tokens: tuple[int, int] = (6, 18)
    visual_dims: dict[str, int] | None = None
    seed: int = 0

    def key(self) -> dict[str, Any]:
        """What identifies the dataset on disk (it is regenerated when this changes)."""
        return {"train": self.train, "val": self.val, "test": self.test,
                "captions": self.captions, "caption_tokens": list(self.caption_tokens),
                "visual_dims": self.visual_dims or REAL_DIMS, "seed": self.seed, "version": 2}


def make_dataset(spec: BenchData, data_dir: Path) -> float:
    """Write the dataset under `data_dir` unless it is already there; returns seconds spent.

    It is written by a child process: a child started later by this one would otherwise
    report this process's peak memory as its own (the peak RSS a child inherits at exec).
    """
    marker = data_dir / "bench_spec.json"
    if marker.is_file() and json.loads(marker.read_text()) == spec.key():
        return 0.0
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, json.dumps(dataclasses.asdict(spec)),
                    str(data_dir)], check=True)
    return time.perf_counter() - start


def bench_sizes(spec: BenchData) -> LikeSizes:
    """The counts and randomness of the benchmark's data (the widths come from the config)."""
    from crosskd.synth_like import LikeSizes  # not at import: the parent stays small (wait4)
    return LikeSizes(videos=spec.train + spec.val + spec.test, captions_per_video=spec.captions,
                     caption_tokens=tuple(spec.caption_tokens), max_expert_tokens=32, topics=64,
                     latent_dim=64, missing_fraction={"audio": 0.1, "speech": 0.3},
                     fewer_captions_fraction=0.0, expert_store=False, seed=spec.seed)


def _write_dataset(spec: BenchData, data_dir: Path) -> None:
    """Generate the synthetic MSRVTT of `spec` into `data_dir` (in this process).

    It has every file the original's loaders read for the benchmark config (its teachers
    too, `experts.ce_shared_dim` wide, although caption distillation is off), so the original
    and crosskd run on the same files.
    """
    from crosskd.data.synth import write_synthetic
    from crosskd.synth_like import spec_like
    marker = data_dir / "bench_spec.json"
    config = bench_config(data_dir, data_dir / "runs", visual_dims=spec.visual_dims)
    write_synthetic(spec_like(config, bench_sizes(spec)), data_dir)
    _write_split_lists(spec, data_dir / FEATURES)
    marker.write_text(json.dumps(spec.key()))


def _write_split_lists(spec: BenchData, root: Path) -> None:
    """Exactly `train` / `val` / `test` videos in the full-val and full-test lists."""
    ids = [f"video{i}" for i in range(spec.train + spec.val + spec.test)]
    parts = {"train_list_full.txt": ids[:spec.train],
             "val_list_full.txt": ids[spec.train:spec.train + spec.val],
             "test_list_full.txt": ids[spec.train + spec.val:]}
    for name, chosen in parts.items():
        (root / name).write_text("\n".join(chosen) + "\n", encoding="utf-8")


def bench_config(data_dir: Path, save_dir: Path, epochs: int = 1,
                 visual_dims: dict[str, int] | None = None) -> dict[str, Any]:
    """The published CE+ caption-distillation MSRVTT config, pointed at the synthetic data."""
    from crosskd.config import load_config
    config = load_config(CONFIG)
    config["data_loader"]["args"]["data_dir"] = str(data_dir)
    config["trainer"].update({"epochs": epochs, "save_dir": str(save_dir), "tensorboard": False})
    aggregation = config["data_loader"]["args"]["feat_aggregation"]
    for name, width in (visual_dims or {}).items():
        aggregation[name]["feat_dims"]["embed"] = width
    return config


def write_config(config: dict[str, Any], path: Path) -> Path:
    """Save a config as JSON for a command line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path


@dataclass
class ProcessResult:
    """Wall time, peak RSS (GiB), output and CPU seconds (user + system) of one child."""

    seconds: float
    peak_rss_gib: float
    stdout: str
    cpu_seconds: float = 0.0
    returncode: int = 0


def run_process(command: list[str], env: dict[str, str] | None = None,
                cwd: Path = REPO, check: bool = True) -> ProcessResult:
    """Run a child to completion; its own peak RSS comes from wait4's rusage (not the max
    over every child so far, which RUSAGE_CHILDREN would give). A failing child stops the
    benchmark, unless `check` is False (then see `returncode`: -9 when it was killed)."""
    with tempfile.TemporaryFile("w+") as log_file:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   text=True, env={**os.environ, **(env or {})}, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        log_file.seek(0)
        output = log_file.read()
    if process.returncode and check:
        sys.stderr.write(output[-4000:])
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return ProcessResult(seconds, usage.ru_maxrss / 2**20, output,
                         usage.ru_utime + usage.ru_stime, process.returncode)


@contextlib.contextmanager
def foreach_radam(active: bool = True) -> Iterator[None]:
    """While active, graphed RAdam steps captured (first run) inside update every tensor
    through torch's foreach kernels instead of the compiled piece kernel (for comparison)."""
    from crosskd.optim import fast_radam
    default = fast_radam._PIECE
    if active:
        fast_radam._PIECE = 2**62  # no whole piece: everything is a remainder
    try:
        yield
    finally:
        fast_radam._PIECE = default


def uptime_load() -> str:
    """The 1-minute load average, to report with every timing."""
    return f"{os.getloadavg()[0]:.2f}"


if __name__ == "__main__":  # make_dataset's child: python3 _msrvtt_bench.py SPEC_JSON DATA_DIR
    _fields = json.loads(sys.argv[1])
    _fields["caption_tokens"] = tuple(_fields["caption_tokens"])
    _write_dataset(BenchData(**_fields), Path(sys.argv[2]))
