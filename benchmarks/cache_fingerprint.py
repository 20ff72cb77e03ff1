"""What keying the feature cache on content costs: hashing against packing and mapping.

    python3 benchmarks/cache_fingerprint.py --work /tmp/bench-fp               # 1 GiB file
    python3 benchmarks/cache_fingerprint.py --work /tmp/bench-fp --megabytes 256

Writes one expert pickle of about --megabytes (videos of 16 x 1600 float32 tokens, the
gpt2-xl caption width), then times, in this process: packing it into an empty cache (which
includes the first sha256), the sha256 alone, a load with the fingerprint recorded (stat
only), and a load after `chmod` (ctime changed, content not: hashed again, not repacked).
The file is read once before timing, so every figure is with the file in the page cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np

from crosskd.data import fingerprint
from crosskd.data.picklewriter import write_dict_pickle
from crosskd.data.store import load_packed
from _machine import cpu_description

TOKENS, WIDTH = 16, 1600


def _write(path: Path, megabytes: int) -> None:
    videos = megabytes * (1 << 20) // (TOKENS * WIDTH * 4)
    rng = np.random.default_rng(0)
    block = rng.standard_normal((TOKENS, WIDTH), dtype=np.float32)
    write_dict_pickle(path, ((f"video{i}", block + i) for i in range(videos)))


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--megabytes", type=int, default=1024)
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}", flush=True)
    source, cache = args.work / "features.pickle", args.work / "cache"
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    _write(source, args.megabytes)
    time.sleep(fingerprint.RACY_SECONDS)  # old enough to be recorded
    fingerprint.content_digest(source)  # into the page cache
    size = source.stat().st_size / (1 << 30)
    rows = {
        "pack (cold cache, includes one sha256)": _timed(
            lambda: load_packed(source, "expert", cache)),
        "sha256 alone": _timed(lambda: fingerprint.content_digest(source)),
        "load, fingerprint recorded (stat only)": _timed(
            lambda: load_packed(source, "expert", cache)),
    }
    os.chmod(source, 0o600)
    rows["load after chmod (hash again, no repack)"] = _timed(
        lambda: load_packed(source, "expert", cache))
    print(f"{source.name}: {size:.2f} GiB")
    for name, seconds in rows.items():
        print(f"{name:45s} {seconds:8.3f} s")
    print(f"sha256 throughput: {size / rows['sha256 alone']:.2f} GiB/s; "
          f"{100 * rows['sha256 alone'] / rows['pack (cold cache, includes one sha256)']:.0f} % "
          "of the cold pack")


if __name__ == "__main__":
    main()
