"""Evaluation at MSRVTT full-test scale (2,990 videos x 20 captions): memory and time of test.py.

    python3 benchmarks/eval_full_test.py                  # 2,990 x 20, real widths
    python3 benchmarks/eval_full_test.py --test 300 --work /tmp/crosskd-fulltest-small

Writes a seeded synthetic MSRVTT with the real widths (1600-d caption tokens, 6-18 tokens per
caption: 59,800 captions are a ~4.6 GB float32 text pickle, and as much again for the packed
cache) with --test videos in the full-test list, saves an untrained CE+ cecap model (262.7 M
parameters) as a run checkpoint, and runs `test.py --eval_from_training_config` as a child
process on the packed (cached) features: wall time and its own peak RSS (wait4). The
packing runs before, in its own process, and is reported apart. The scores of a random model do not matter;
the work and memory are those of a trained one. Memory stays bounded by the caption chunk
(240 captions): the only thing that grows with the split is the float32 similarity matrix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _machine import cpu_description, load_average
from _msrvtt_bench import BenchData, bench_config, make_dataset, run_process, write_config

REPO = Path(__file__).resolve().parents[1]
#: a child that only loads (and, on a cold cache, packs) the data of a config.
PACK = ("import sys; from crosskd.config import data_spec, load_config; "
        "from crosskd.data.retrieval import RetrievalData; "
        "RetrievalData.load(data_spec(load_config(sys.argv[1])), cache_dir=sys.argv[2])")


def _write_checkpoint(config: dict, path: Path) -> None:
    """An untrained model of `config` as one of our (weights-only) run checkpoints."""
    import torch
    from crosskd.checkpoint.run_state import save_run_state
    from crosskd.config import model_spec
    from crosskd.models import build_model
    torch.manual_seed(0)
    model = build_model(model_spec(config))
    save_run_state(path, model_state=model.state_dict(), epoch=0, config=config,
                   monitor_best=0.0)


def main() -> None:
    print(f"CPU: {cpu_description()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/crosskd-fulltest"))
    parser.add_argument("--test", type=int, default=2990)
    parser.add_argument("--captions", type=int, default=20)
    parser.add_argument("--train", type=int, default=64)
    args = parser.parse_args()
    work = args.work.resolve()
    data_dir = work / "data" / "MSRVTT"
    generated = make_dataset(BenchData(args.train, 10, args.test, args.captions), data_dir)
    print(f"dataset ready ({generated:.0f} s to generate)", flush=True)
    config = bench_config(data_dir, work / "runs")
    config_path = write_config(config, work / "fulltest-cecap.json")
    checkpoint = work / "untrained.pth"
    if not checkpoint.is_file():
        _write_checkpoint(config, checkpoint)
    command = [sys.executable, str(REPO / "test.py"), "--config", str(config_path), "--resume",
               str(checkpoint), "--eval_from_training_config", "--device", "cpu",
               "--cache_dir", str(work / "cache")]
    cache = work / "cache"
    pack = run_process([sys.executable, "-c", PACK, str(config_path), str(cache)])
    run = run_process(command)
    queries = args.test * args.captions
    sims_gib = queries * args.test * 4 / 2**30
    print(run.stdout.strip().splitlines()[-1])
    print(f"\nMSRVTT full-test scale: {args.test} videos x {args.captions} captions = {queries} "
          f"queries; load average {load_average():.2f}\n")
    print("| process | wall s | peak RSS GiB |\n|---|---|---|")
    print(f"| loading the data (packing unless cached) | {pack.seconds:.0f} | "
          f"{pack.peak_rss_gib:.2f} |")
    print(f"| test.py, whole process (cached features) | {run.seconds:.0f} | "
          f"{run.peak_rss_gib:.2f} |")
    print(f"\nof which: the similarity matrix {sims_gib:.2f} GiB (float32 {queries} x "
          f"{args.test}); the weights (0.98 GiB float32) are memory-mapped and each large one "
          "unmapped after use; the rest is bounded by the 240-caption chunk")

if __name__ == "__main__":
    main()
