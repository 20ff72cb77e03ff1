"""Peak memory of `crosskd report` on an index of MSRVTT full-test's size.

    python3 benchmarks/report_memory.py
    python3 benchmarks/report_memory.py --code /tmp/old/src   # another checkout's crosskd

Builds (once, in --work) a synthetic index of 2,990 videos and 59,800 captions, 7 experts x
768 (random unit-norm embeddings, softmax mixture weights, audio missing for 10 % of the
videos and speech for 40 %: four availability patterns; no model is needed), then runs
`crosskd report` on it in a fresh Python process and prints that process's peak RSS
(ru_maxrss) and wall time. --code puts another source tree first on that process's path,
e.g. `git archive HEAD src | tar -x -C /tmp/old` for the code before a change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from crosskd.search import Index
from crosskd.search.captions import CaptionStore
from _machine import cpu_description, load_average

VIDEOS, CAPTIONS_PER_VIDEO, EXPERTS, WIDTH = 2990, 20, 7, 768
MISSING = {5: 0.10, 6: 0.40}  # expert position -> share of videos without it (audio, speech)
CHUNK = 2048

CHILD = """
import json, resource, sys, time
from crosskd.cli import main
start = time.perf_counter()
status = main(["report", sys.argv[1], "--out", sys.argv[2]])
print(json.dumps({"status": status, "seconds": time.perf_counter() - start,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random float32 vectors, unit norm along the last axis."""
    values = rng.standard_normal(shape, dtype=np.float32)
    return values / np.linalg.norm(values, axis=-1, keepdims=True)


def build(folder: Path, seed: int = 0) -> Path:
    """The synthetic index in `folder/index` (reused when it is already there)."""
    root = folder / "index"
    if root.is_dir():
        return root
    rng = np.random.default_rng(seed)
    availability = np.ones((VIDEOS, EXPERTS), np.float32)
    for expert, share in MISSING.items():
        availability[rng.random(VIDEOS) < share, expert] = 0
    index = Index.from_embeddings([f"video{v}" for v in range(VIDEOS)],
                                  [f"expert{e}" for e in range(EXPERTS)], [WIDTH] * EXPERTS,
                                  unit(rng, (VIDEOS, EXPERTS, WIDTH)), availability)
    count = VIDEOS * CAPTIONS_PER_VIDEO
    embeddings = np.lib.format.open_memmap(folder / "captions.npy", "w+", np.float32,
                                           (count, EXPERTS, WIDTH))
    for start in range(0, count, CHUNK):  # never all in memory
        embeddings[start:start + CHUNK] = unit(rng, (min(CHUNK, count - start), EXPERTS, WIDTH))
    logits = rng.standard_normal((count, EXPERTS), dtype=np.float32)
    weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    owner = np.repeat(np.arange(VIDEOS), CAPTIONS_PER_VIDEO)
    slot = np.tile(np.arange(CAPTIONS_PER_VIDEO), VIDEOS)
    index.captions = CaptionStore(embeddings, weights, owner, slot)
    index.info = {"dataset": "synthetic", "split": "full-test"}
    index.save(root)
    del embeddings
    (folder / "captions.npy").unlink()
    return root


def measure(root: Path, out: Path, code: str | None) -> dict:
    """Peak RSS and time of `crosskd report` in a fresh process."""
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [code, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), str(out)], env=env,
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="folder for the index (default: a temporary "
                        "one, removed afterwards)")
    parser.add_argument("--code", help="source folder of the crosskd to measure (default: the "
                        "installed one)")
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}; load average {load_average():.1f}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        root = build(work)
        print(f"index: {VIDEOS} videos x {VIDEOS * CAPTIONS_PER_VIDEO} captions, "
              f"{EXPERTS} experts x {WIDTH} ({time.perf_counter() - started:.0f} s to build)")
        result = measure(root, work / "report.html", args.code)
        print(f"crosskd report ({args.code or 'installed crosskd'}): peak RSS "
              f"{result['peak_rss_mib']:.0f} MiB, {result['seconds']:.1f} s, "
              f"exit {result['status']}")


if __name__ == "__main__":
    main()
