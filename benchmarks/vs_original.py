"""crosskd and the original implementation side by side, on the same data and config, in one run.

    python3 benchmarks/vs_original.py --original ~/src/CrossKD \
        --ce-configs ~/src/collaborative-experts/configs
    python3 benchmarks/vs_original.py          # crosskd only: the original's column is empty

`--original` is a checkout of the original CrossKD code (tqvinhcs/CrossKD); its configs inherit
from the Collaborative-Experts configs (`--ce-configs`, the `configs/` folder of
albanie/collaborative-experts; default: `configs/` inside the checkout). The checkout is
never changed: it is copied to a temporary folder, where the four runtime-compatibility
patches of ../shared/conformance/README.md are applied (each fails loudly when its target
text is not found). The original runs in a venv of its own (built once, with the system's
torch and the reference environment's pinned packages, and cached under --cache).

One synthetic MSRVTT at the real size (1,000/250/250 videos x 20 captions, the published
widths, every file the original's loaders read, teachers included) and one config (the
original's msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json resolved through its parents,
with one epoch, save_period 1, num_workers 0) serve both. Each measurement is taken for the
original and then crosskd, alternating when --repeat asks for more than one:

* train.py as a whole process (one epoch, validation, final test): wall time, peak RSS;
  inside it, from timing stamps (_stamps.py): data loading, the epoch's batches (median of
  the steady ones after RAdam's first five), the epoch, validation;
* test.py (full-test protocol) on the checkpoint that train.py wrote: wall time, peak RSS.

The table gives medians over the repeats, the ratios original / crosskd, the fp32 matmul rate
and the load average measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from _machine import cpu_description, load_average, matmul_gflops, matmul_libraries
from crosskd.cpu import cpu_flags
from crosskd.process import NATIVE_BF16_FLAGS
from _msrvtt_bench import (REPO, BenchData, ProcessResult, make_dataset, run_process,
                           write_config)

log = logging.getLogger("vs_original")

HERE = Path(__file__).resolve().parent
ORIGINAL_CONFIG = "configs_crosskd/msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json"
#: the reference environment of ../shared/conformance/README.md (torch comes from the system).
PINS = ("numpy==2.4.*", "scipy==1.17.*", "scikit-learn==1.9.*", "typeguard==2.13.3",
        "zsvision==0.7.12", "mergedeep==1.3.4", "mock", "dominate", "humanize", "psutil", "ipdb")
NOT_MEASURED = "not measured in this run"
#: RAdam's unrectified first steps (and the first touches of every buffer) are not steady.
STEADY_AFTER = 6


@dataclass(frozen=True)
class Patch:
    """One runtime-compatibility patch: replace `old` by `new` in `path` (exactly `count`x)."""

    path: str
    old: str
    new: str
    why: str
    count: int = 1


PATCHES = (
    Patch("train.py", "\nimport swats\n",
          "\ntry:\n    import swats\nexcept ImportError:  # benchmark patch 1\n    swats = None\n",
          "swats is not installable; only the SWATS optimizer uses it"),
    Patch("test.py", "torch.load(ckpt_path)", "torch.load(ckpt_path, weights_only=False)",
          "torch >= 2.6 loads weights only by default (the checkpoint pickles the config)"),
    Patch("base/base_trainer.py", "torch.load(resume_path)",
          "torch.load(resume_path, weights_only=False)", "as in test.py"),
    Patch("base/base_dataset.py", "text = np.array(text)[pick]",
          "text = [text[i] for i in pick]",
          "numpy >= 1.24 refuses ragged arrays (captions differ in length)"),
    Patch("data_loader/MSRVTT_dataset.py", 'raise ValueError("unrecognised test set")',
          "return  # benchmark patch 4: no expected count for this size",
          "the expected missing-query count exists only for 2990/1000/497 test videos"),
)


class HarnessError(SystemExit):
    """A problem with the original's checkout or environment, said in one line."""


def apply_patches(root: Path, patches: tuple[Patch, ...] = PATCHES) -> None:
    """Apply every patch to the copy at `root`; refuse when a target text is not found."""
    for patch in patches:
        path = root / patch.path
        if not path.is_file():
            raise HarnessError(f"patch for {patch.path}: the file is not in the original's "
                               f"checkout; is --original a checkout of tqvinhcs/CrossKD?")
        text = path.read_text(encoding="utf-8")
        found = text.count(patch.old)
        if found != patch.count:
            raise HarnessError(f"patch for {patch.path} ({patch.why}): expected "
                               f"{patch.count} occurrence(s) of {patch.old.strip()!r}, found "
                               f"{found}; the checkout differs from the one the patches "
                               f"were written for")
        path.write_text(text.replace(patch.old, patch.new), encoding="utf-8")


def copy_original(original: Path, ce_configs: Path | None, dest: Path) -> Path:
    """A patched copy of the original (and the CE configs under its `configs/`) at `dest`."""
    if not (original / "train.py").is_file() or not (original / ORIGINAL_CONFIG).is_file():
        raise HarnessError(f"--original {original}: no train.py and {ORIGINAL_CONFIG}; give "
                           "a checkout of tqvinhcs/CrossKD")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(original, dest, ignore=shutil.ignore_patterns(".git", "__pycache__",
                                                                  "data"))
    configs = ce_configs or original / "configs"
    if not (configs / "msrvtt").is_dir():
        raise HarnessError(f"--ce-configs {configs}: no msrvtt/ folder; give the configs/ "
                           "folder of albanie/collaborative-experts")
    shutil.copytree(configs, dest / "configs", dirs_exist_ok=True)
    apply_patches(dest)
    return dest


def original_venv(cache: Path) -> Path:
    """The original's python: a venv over the system's torch with PINS, built once."""
    key = hashlib.sha256(json.dumps([sys.version, PINS]).encode()).hexdigest()[:12]
    venv = cache / f"original-venv-{key}"
    python = venv / "bin" / "python"
    if (venv / "ready").is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    log.info("building the original's venv in %s", venv)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS],
                          capture_output=True, text=True)
    if done.returncode:
        raise HarnessError(f"pip install of the original's environment failed: "
                           f"{done.stderr.strip().splitlines()[-1:]}")
    (venv / "ready").write_text("\n".join(PINS) + "\n")
    return python


def benchmark_config(source: Path, data_dir: Path, save_dir: Path, cwd: Path) -> dict:
    """`source` resolved through its parents (from `cwd`, as the original resolves them),
    then pointed at the data, for one epoch with checkpoints and no loader workers."""
    from crosskd.config import load_config
    with contextlib.chdir(cwd):
        config = load_config(source)
    args = config["data_loader"]["args"]
    args.update({"data_dir": str(data_dir), "num_workers": 0})
    config["distil_params"]["base_path"] = "teachers/"
    config["trainer"].update({"epochs": 1, "save_period": 1, "save_dir": str(save_dir),
                              "tensorboard": False})
    return config


def read_stamps(path: Path) -> dict[str, float]:
    """Seconds of loading, per steady batch, the epoch and validation from one stamps file."""
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    first = {}
    for event in events:
        first.setdefault(event["event"], event["t"])
    out = {}
    if "load_end" in first:
        out["load"] = first["load_end"] - first["load_start"]
    if "epoch_start" in first:
        ends = [e["t"] for e in events if e["event"] == "batch_end"]
        starts = [first["epoch_start"], *ends[:-1]]
        batches = [end - start for start, end in zip(starts, ends)]
        steady = batches[STEADY_AFTER:] or batches
        out.update({"batch": statistics.median(steady), "epoch": ends[-1] - first["epoch_start"],
                    "batches": len(batches)})
    if "valid_end" in first:
        out["validation"] = first["valid_end"] - first["valid_start"]
    return out


@dataclass
class Side:
    """One implementation: how to run its train.py / test.py, and what was measured."""

    name: str
    python: Path
    cwd: Path
    env: dict[str, str]
    figures: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    #: whose functions _stamps.py wraps ("original" or "crosskd")
    kind: str = "crosskd"
    #: crosskd's command-line flags for train.py and test.py
    flags: list[str] = field(default_factory=list)

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.figures.setdefault(key, []).append(value)

    def median(self, key: str) -> float | None:
        values = self.figures.get(key)
        return statistics.median(values) if values else None


def _failure(result: ProcessResult) -> str:
    if result.returncode == -9:
        return (f"killed after {result.seconds:.0f} s at {result.peak_rss_gib:.1f} GiB (out "
                f"of memory; {available_gib():.1f} GiB available now)")
    return f"failed with exit code {result.returncode}"


def run_train(side: Side, config: Path, work: Path) -> None:
    """train.py of `side` in its own process, with timing stamps. The stamps taken before a
    failure (the original can run out of memory in its final test) are kept."""
    stamps = work / f"stamps-{side.name}-train.jsonl"
    stamps.unlink(missing_ok=True)
    load = load_average()
    result = run_process([str(side.python), str(HERE / "_stamps.py"), str(stamps), side.kind,
                          str(side.cwd / "train.py"), "--config", str(config), *side.flags],
                         env=side.env, cwd=side.cwd, check=False)
    phases = read_stamps(stamps)
    side.add(phases)
    if result.returncode:
        side.failures.append(f"train.py {_failure(result)}")
        log.warning("%s train.py %s; output ends:\n%s", side.name, _failure(result),
                    result.stdout[-1500:])
        return
    side.add({"train_s": result.seconds, "train_cpu": result.cpu_seconds,
              "train_rss": result.peak_rss_gib})
    log.info("%s train.py: %.0f s, %.2f GiB (load %.2f at start); %s", side.name,
             result.seconds, result.peak_rss_gib, load, phases)


def run_test(side: Side, config: Path, checkpoint: Path | None, extra: list[str]) -> None:
    """test.py of `side` on `checkpoint` (the full-test protocol of the config), with
    `extra` flags after the side's own."""
    if checkpoint is None:
        side.failures.append("test.py not run: train.py wrote no checkpoint")
        return
    load = load_average()
    result = run_process([str(side.python), str(side.cwd / "test.py"), "--config", str(config),
                          "--resume", str(checkpoint), "--eval_from_training_config",
                          *side.flags, *extra],
                         env=side.env, cwd=side.cwd, check=False)
    if result.returncode:
        side.failures.append(f"test.py {_failure(result)}")
        log.warning("%s test.py %s", side.name, _failure(result))
        return
    side.add({"test_s": result.seconds, "test_cpu": result.cpu_seconds,
              "test_rss": result.peak_rss_gib})
    log.info("%s test.py: %.1f s, %.2f GiB (load %.2f at start)", side.name, result.seconds,
             result.peak_rss_gib, load)


def available_gib() -> float:
    """MemAvailable of /proc/meminfo (what other processes leave), 0 where unknown."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            line = next(row for row in meminfo if row.startswith("MemAvailable:"))
        return int(line.split()[1]) / 2**20
    return 0.0


def newest(pattern: str, root: Path) -> Path | None:
    """The last-written file matching `pattern` under `root` (None: there is none)."""
    found = sorted(root.glob(pattern), key=lambda path: path.stat().st_mtime)
    return found[-1] if found else None


ROWS = (("load", "loading the data (in train.py)", "s"),
        ("batch", "training, s per batch of 64 (median after the first {steady})", "s"),
        ("epoch", "one training epoch ({batches} batches)", "s"),
        ("validation", "validation, {val} videos x {captions} captions", "s"),
        ("train_s", "train.py one epoch + validation + final test, whole process", "s"),
        ("train_cpu", "train.py, CPU time (user + system)", "s"),
        ("train_rss", "train.py, peak RSS", "GiB"),
        ("test_s", "test.py (full-test {test} x {captions}), whole process", "s"),
        ("test_cpu", "test.py, CPU time (user + system)", "s"),
        ("test_rss", "test.py, peak RSS", "GiB"))


def table(ours: Side, original: Side | None, labels: dict) -> str:
    lines = ["| what | original | crosskd | original / crosskd |", "|---|---|---|---|"]
    for key, label, unit in ROWS:
        mine, theirs = ours.median(key), original.median(key) if original else None
        label = label.format(**labels)
        if mine is None:
            continue
        if theirs is None and original and original.failures:
            lines.append(f"| {label} | not measured ({'; '.join(original.failures)}) | "
                         f"{mine:.2f} {unit} | |")
        elif theirs is None:
            lines.append(f"| {label} | {NOT_MEASURED} | {mine:.2f} {unit} | {NOT_MEASURED} |")
        else:
            lines.append(f"| {label} | {theirs:.2f} {unit} | {mine:.2f} {unit} | "
                         f"{theirs / mine:.2f}x |")
    return "\n".join(lines)


def bf16_report(ours: Side, bf16: Side, work: Path, labels: dict) -> str:
    """crosskd in bf16 against fp32 (same run): times and the test metrics' deviation."""
    flags = sorted(NATIVE_BF16_FLAGS & cpu_flags())
    lines = [f"\ncrosskd with trainer.amp \"bf16\" (CPU bf16 matmul instructions: "
             f"{', '.join(flags) or 'none, so bf16 is emulated'})\n",
             "| what | crosskd fp32 | crosskd bf16 | fp32 / bf16 |", "|---|---|---|---|"]
    for key, label, unit in ROWS:
        exact, mixed = ours.median(key), bf16.median(key)
        if exact is not None and mixed is not None:
            lines.append(f"| {label.format(**labels)} | {exact:.2f} {unit} | {mixed:.2f} {unit} | "
                         f"{exact / mixed:.2f}x |")
    paths = [work / f"metrics-{side.name}.json" for side in (ours, bf16)]
    if all(path.is_file() for path in paths):
        exact, mixed = (json.loads(path.read_text(encoding="utf-8")) for path in paths)
        for direction in ("t2v", "v2t"):
            deltas = ", ".join(f"{key} {mixed[direction][key] - value:+.2f}"
                               for key, value in exact[direction].items()
                               if not key.startswith("geometric"))
            lines.append(f"\ntest metrics, bf16 - fp32, {direction}: {deltas}")
    return "\n".join(lines)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path,
                        help="checkout of the original CrossKD (tqvinhcs/CrossKD); left out: "
                             "crosskd only")
    parser.add_argument("--ce-configs", type=Path,
                        help="configs/ of albanie/collaborative-experts (default: the "
                             "checkout's configs/)")
    parser.add_argument("--work", type=Path,
                        default=Path(tempfile.gettempdir()) / "crosskd-vs-original",
                        help="folder for the data, the original's copy and the runs (~6 GB)")
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "crosskd" / "benchmarks",
                        help="where the original's venv is kept between runs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each side this many times, alternating (medians)")
    parser.add_argument("--bf16", action="store_true",
                        help="also run crosskd with trainer.amp \"bf16\" (third column, "
                             "test metrics' deviation from fp32)")
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--val", type=int, default=250)
    parser.add_argument("--test", type=int, default=250)
    parser.add_argument("--captions", type=int, default=20)
    return parser.parse_args()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = _parse_args()
    print(f"CPU: {cpu_description()}", flush=True)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    loads = [load_average()]
    memory = available_gib()
    spec = BenchData(args.train, args.val, args.test, args.captions)
    data_dir = work / "data" / "MSRVTT"
    if seconds := make_dataset(spec, data_dir):
        log.info("generated the dataset in %.0f s", seconds)
    cache = work / "crosskd-cache"
    shutil.rmtree(work / "runs", ignore_errors=True)
    env = {"CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO / "src")}
    ours = Side("crosskd", Path(sys.executable), REPO, env)
    original = None
    if args.original:
        copy = copy_original(args.original.resolve(),
                             args.ce_configs.resolve() if args.ce_configs else None,
                             work / "original")
        original = Side("original", original_venv(args.cache.expanduser()), copy,
                        {"CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": ""}, kind="original")
        config = benchmark_config(copy / ORIGINAL_CONFIG, data_dir, work / "runs", copy)
        source = f"the original's {ORIGINAL_CONFIG} resolved through the CE configs"
    else:
        shipped = REPO / "configs" / Path(ORIGINAL_CONFIG).name
        config = benchmark_config(shipped, data_dir, work / "runs", REPO)
        source = f"crosskd's {shipped.relative_to(REPO)}"
    config_path = write_config(config, work / "configs_bench" / "msrvtt-cecap.json")
    ours.flags = ["--device", "cpu", "--cache_dir", str(cache)]
    bf16 = None
    if args.bf16:
        bf16 = Side("crosskd-bf16", ours.python, REPO, env,
                    flags=[*ours.flags, "--set", 'trainer.amp="bf16"'])
        bf16_config = write_config({**config, "trainer": {**config["trainer"],
                                                           "save_dir": str(work / "runs-bf16")}},
                                   work / "configs_bench" / "msrvtt-cecap-bf16.json")
    gflops = [{library: matmul_gflops(library=library) for library in matmul_libraries()}]
    for _ in range(args.repeat):
        if original:
            run_train(original, config_path, work)
        shutil.rmtree(cache, ignore_errors=True)  # crosskd's train.py packs from cold
        run_train(ours, config_path, work)
        if bf16:
            run_train(bf16, bf16_config, work)
        loads.append(load_average())
        if original:
            run_test(original, config_path, newest("**/trained_model.pth", work / "runs"), [])
        best = "*/*/model_best.pth"
        run_test(ours, config_path, newest(best, work / "runs"),
                 ["--out", str(work / "metrics-crosskd.json")])
        if bf16:
            run_test(bf16, bf16_config, newest(best, work / "runs-bf16"),
                     ["--out", str(work / "metrics-crosskd-bf16.json")])
        loads.append(load_average())
    gflops.append({library: matmul_gflops(library=library) for library in matmul_libraries()})
    rates = "; ".join(f"{library} {min(g[library] for g in gflops):.1f}-"
                      f"{max(g[library] for g in gflops):.1f}" for library in gflops[0])
    labels = {"steady": STEADY_AFTER, "batches": int(ours.median("batches") or 0),
              "val": args.val, "test": args.test, "captions": args.captions}
    print(f"\nsynthetic MSRVTT {args.train}/{args.val}/{args.test} videos x {args.captions} "
          f"captions in the original's layout; config: {source} (CE+ cecap, 262.7 M "
          f"parameters, batch 64, 1 epoch, num_workers 0); medians of {args.repeat} run(s) "
          f"per side, alternating; fp32 2048^2 matmul GFLOP/s (torch's, which the "
          f"original uses, and oneDNN's, which crosskd's linear layers use where "
          f"available): {rates}; load average {', '.join(f'{x:.2f}' for x in loads)} (start, after "
          f"each train.py pair and test.py pair); {os.cpu_count()} CPUs, {memory:.1f} GiB "
          f"memory available at the start\n")
    print(table(ours, original, labels))
    if bf16:
        print(bf16_report(ours, bf16, work, labels))
    for side in (original, ours, bf16):
        for failure in side.failures if side else ():
            print(f"\n{side.name}: {failure}")


if __name__ == "__main__":
    main()
