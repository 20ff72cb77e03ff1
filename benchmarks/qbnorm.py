"""QB-Norm in evaluation: t2v before and after, and what the query bank costs.

    python3 benchmarks/qbnorm.py                       # conformance set + a fresh `crosskd demo`
    python3 benchmarks/qbnorm.py --demo crosskd-demo   # the runs of an earlier demo

For the conformance checkpoint (MSRVTT-mini full-test, ../shared/conformance) and each run
of the demo (its own-video collection, full-test split), the same test as
`crosskd test --resume RUN --eval_from_training_config [--qbnorm]`: t2v before and after
QB-Norm (beta 20, every training caption in the bank), the bank's size, and the wall time of
the test without and with the bank (warm packed features, best of --repeat). Then the
NumPy side at MSRVTT scale on synthetic scores: folding a bank of 180,000 (1k-A) and
130,260 (full split) captions into the normalisers, and normalising the 59,800 x 2,990
full-test matrix; the model's embedding of the bank captions is not included there (it
costs what testing that many captions costs: docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from crosskd.checkpoint.reader import stored_config
from crosskd.cli import main as crosskd_main
from crosskd.config import load_config, parse_experiment
from crosskd.process import ProcessContext
from crosskd.qbnorm import DEFAULT_BETA, BankAccumulator
from crosskd.train.evaluate import evaluate_checkpoint
from crosskd.train.report import format_table
from _machine import cpu_description

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "conformance"
GOLDEN = ("configs/msrvtt-mini-cecap.json", "checkpoints/msrvtt-mini-cecap_seed0_trained_model.pth")
#: bank captions x videos at MSRVTT scale: 1k-A (9,000 x 20 train captions, 1,000 test videos)
#: and the full split (6,513 x 20 train captions, 2,990 test videos).
SCALES = {"1k-A": (180_000, 1_000), "full": (130_260, 2_990)}
FULL_TEST_QUERIES = 59_800
BANK_CHUNK = 240  # the CPU's caption chunk (crosskd.inference.DEFAULT_CAPTION_CHUNK)


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """The result of `fn` and its fastest wall time over `repeat` calls."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def measure(name: str, config: dict, checkpoint: Path, cache: Path, repeat: int,
            beta: float) -> dict[str, Any]:
    """Test one checkpoint without and with QB-Norm; both results and wall times."""
    experiment = parse_experiment(config).evaluation()
    cpu = ProcessContext()  # float32, as the golden checkpoint's config
    evaluate_checkpoint(experiment, checkpoint, cpu, cache)  # packs the features once
    plain, plain_s = best_time(lambda: evaluate_checkpoint(experiment, checkpoint, cpu, cache),
                               repeat)
    normed, normed_s = best_time(lambda: evaluate_checkpoint(experiment, checkpoint, cpu,
                                                             cache, qbnorm_beta=beta), repeat)
    assert normed["qbnorm"]["t2v_before"] == plain["t2v"]
    return {"name": name, "plain": plain, "qbnorm": normed, "plain_s": plain_s,
            "qbnorm_s": normed_s}


def golden_config(conformance: Path) -> dict:
    """The conformance config with its data_dir made absolute."""
    config = load_config(conformance / GOLDEN[0])
    args = config["data_loader"]["args"]
    args["data_dir"] = str(conformance / args["data_dir"])
    return config


def demo_runs(demo: Path | None, work: Path) -> list[tuple[str, Path]]:
    """(config name, run folder) of each demo run; runs `crosskd demo` first without `demo`."""
    if demo is None:
        demo = work / "demo"
        assert crosskd_main(["demo", "--out", str(demo)]) == 0
    return [(run.parent.name, run) for run in sorted((demo / "runs").glob("*/*_seed*"))]


def report(result: dict[str, Any]) -> None:
    """Before/after table, the bank and the timings of one checkpoint."""
    qbnorm = result["qbnorm"]["qbnorm"]
    protocol = result["plain"]["protocol"]
    rows = {f"{result['name']}": result["plain"],
            f"{result['name']} + QB-Norm": result["qbnorm"]}
    print(format_table(rows, "t2v"))
    print(f"protocol: {protocol['num_queries']} queries over {protocol['num_videos']} videos; "
          f"bank {qbnorm['bank_size']} training captions, {qbnorm['active_videos']} active "
          f"videos, {qbnorm['normalised_queries']} queries normalised; test "
          f"{result['plain_s']:.2f} s, with QB-Norm {result['qbnorm_s']:.2f} s (+"
          f"{result['qbnorm_s'] - result['plain_s']:.2f} s for the bank)\n")


def numpy_scale(beta: float) -> None:
    """Fold and normalise at MSRVTT scale on synthetic cosine-like scores."""
    rng = np.random.default_rng(0)
    for name, (bank, videos) in SCALES.items():
        chunks = rng.uniform(-0.2, 0.8, (16, BANK_CHUNK, videos)).astype(np.float32)
        accumulator = BankAccumulator(videos, beta)
        start = time.perf_counter()
        for step in range(bank // BANK_CHUNK):
            accumulator.add(chunks[step % len(chunks)])
        folded = time.perf_counter() - start
        print(f"fold {bank:,} x {videos:,} bank scores ({name}), {BANK_CHUNK} rows at a time: "
              f"{folded:.2f} s")
    querybank = accumulator.result()
    sims = rng.uniform(-0.2, 0.8, (FULL_TEST_QUERIES, SCALES["full"][1])).astype(np.float32)
    start = time.perf_counter()
    replaced = querybank.normalise_in_place(sims)
    print(f"normalise the {FULL_TEST_QUERIES:,} x {SCALES['full'][1]:,} full-test matrix in "
          f"place: {time.perf_counter() - start:.2f} s ({int(replaced.sum()):,} rows replaced, "
          f"{int(querybank.active.sum()):,} active videos)")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, help="an earlier `crosskd demo --out` folder "
                        "(default: run the demo into a temporary folder)")
    parser.add_argument("--conformance", type=Path, default=CONFORMANCE)
    parser.add_argument("--beta", type=float, default=DEFAULT_BETA)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}\n")
    with tempfile.TemporaryDirectory(prefix="crosskd-qbnorm-") as work:
        cache = Path(work) / "cache"
        if (args.conformance / GOLDEN[1]).is_file():
            report(measure("conformance CE+ cap KD", golden_config(args.conformance),
                           args.conformance / GOLDEN[1], cache, args.repeat, args.beta))
        else:
            print(f"no conformance data in {args.conformance}: skipped\n")
        for name, run_dir in demo_runs(args.demo, Path(work)):
            report(measure(f"demo {name}", stored_config(run_dir), run_dir, cache,
                           args.repeat, args.beta))
    numpy_scale(args.beta)


if __name__ == "__main__":
    run()
