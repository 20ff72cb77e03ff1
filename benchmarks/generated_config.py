"""What the config `crosskd extract` writes makes of a collection: test R@1 / R@5 / MdR of
CE+ (config.json) and CE+ with caption KD (config-cecap.json), trained as generated.

    python3 benchmarks/generated_config.py --work /tmp/gencfg
    python3 benchmarks/generated_config.py --work /tmp/gencfg --steps 300 600 1200 --seeds 0 1 2
    PYTHONPATH=/tmp/base/src python3 benchmarks/generated_config.py --work /tmp/gencfg-base

The last line measures another tree (a `git worktree add /tmp/base COMMIT`), as far as its
API matches the calls here (docs/PERFORMANCE.md, "Training length of generated configs").

Two collections of the project's synthetic videos (crosskd.extract.synthetic_videos),
extracted with the weight-free demo experts and text encoder (`--experts demo
--text-encoder demo`): the demo's own-video collection (`crosskd demo`: 400 videos, four
captions each, seed 0) and 64 short clips with three captions each. Each run trains the
dataset's generated config unchanged (its epochs, schedule and selection) and tests its
selected model on the test split. `--epochs N ...` trains for N epochs with the schedule as
written; `--steps N ...` for about N optimizer steps through crosskd.extract.training_plan
(the length study behind its floor and ceilings). Accuracy figures: other jobs on the CPU
change only the times.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import crosskd
from crosskd.checkpoint.run_state import LAST_NAME, load_run_state
from crosskd.config import apply_overrides, load_config, parse_experiment
from crosskd.extract.job import ExtractOptions, extract
from crosskd.extract.synthetic_videos import write_collection
from crosskd.process import ProcessContext
from crosskd.train.runs import train_and_test
from _machine import cpu_description

#: collection -> (videos, captions kept per video); "demo" is crosskd demo's own-video one.
COLLECTIONS = {"demo": (400, 4), "clips64": (64, 3)}
CONFIGS = {"CE+": "config.json", "CE+ + caption KD": "config-cecap.json"}


def make_dataset(work: Path, name: str, seed: int) -> Path:
    """The collection's videos (made once) extracted with this code into work/NAME/data."""
    count, kept = COLLECTIONS[name]
    videos = work / name / "videos"
    captions = videos / "captions.jsonl"
    if not captions.is_file():
        write_collection(videos, count, seed)
        _keep_captions(captions, kept)
    extract(ExtractOptions(videos=videos, captions=captions, out=work / name / "data",
                           experts="demo", text_encoder="demo", seed=seed))
    return work / name / "data"


def _keep_captions(captions: Path, kept: int) -> None:
    """Keep the first `kept` captions of each video."""
    seen: dict[str, int] = {}
    lines = []
    for line in captions.read_text(encoding="utf-8").splitlines():
        video = json.loads(line)["video"]
        seen[video] = seen.get(video, 0) + 1
        if seen[video] <= kept:
            lines.append(line)
    captions.write_text("\n".join(lines) + "\n", encoding="utf-8")


def generated(data: Path, config_name: str, runs: Path, seed: int, epochs: int | None,
              steps: int | None) -> dict[str, Any]:
    """A generated config, trained for `epochs` (schedule as written) or `steps` (through
    the training plan) when given."""
    overrides = [("trainer.save_dir", json.dumps(str(runs))), ("seed", str(seed)),
                 ("trainer.tensorboard", "false")]
    if epochs is not None:
        overrides.append(("trainer.epochs", str(epochs)))
    config = apply_overrides(load_config(data / config_name), overrides)
    if steps is not None:
        from crosskd.extract.training_plan import plan_training  # this code only, not the base's

        plan_training(config, _splits(data)["train"], steps)
    return config


def train_one(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Train and test one config; its test metrics, length and selection."""
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    metrics = train_and_test(parse_experiment(config), run_dir, ProcessContext())
    seconds = time.perf_counter() - started
    state = load_run_state(run_dir / LAST_NAME)
    return {"t2v": metrics["t2v"], "epochs": config["trainer"]["epochs"],
            "best_epoch": state["best_epoch"], "seconds": seconds}


def _splits(data: Path) -> dict[str, int]:
    return json.loads((data / "extraction.json").read_text(encoding="utf-8"))["splits"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for videos and runs")
    parser.add_argument("--collections", nargs="+", choices=COLLECTIONS, default=list(COLLECTIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, nargs="+",
                        help="train for these epochs instead (the schedule as written)")
    parser.add_argument("--steps", type=int, nargs="+",
                        help="train for about these optimizer steps instead (epochs and "
                        "schedule through crosskd.extract.training_plan)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as crosskd demo: the demo models are tiny
    print(f"CPU: {cpu_description()}\ncode: {Path(crosskd.__file__).parent}")
    print("| collection | splits train/val/test | config | epochs | best epoch | seed | "
          "test R@1 | R@5 | MdR | train+test s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    lengths = ([(e, None) for e in args.epochs or []] + [(None, n) for n in args.steps or []]
               or [(None, None)])
    for name in args.collections:
        data = make_dataset(args.work.resolve(), name, seed=0)
        splits = "/".join(str(n) for n in _splits(data).values())
        for epochs, steps in lengths:
            for label, config_name in CONFIGS.items():
                for seed in args.seeds:
                    runs = args.work.resolve() / name / "runs"
                    config = generated(data, config_name, runs, seed, epochs, steps)
                    tag = f"e{epochs}" if epochs else f"s{steps}" if steps else "generated"
                    run = train_one(config, runs / f"{config_name[:-5]}-seed{seed}-{tag}")
                    t2v = run["t2v"]
                    print(f"| {name} | {splits} | {label} | {run['epochs']} | "
                          f"{run['best_epoch']} | {seed} | {t2v['R1']:.1f} | {t2v['R5']:.1f} | "
                          f"{t2v['MedR']:g} | {run['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
