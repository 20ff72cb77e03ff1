"""`crosskd demo`: the own-video loop offline, CE+ with and without caption distillation.

Makes synthetic videos (coloured shapes moving over backgrounds, a tone or silence, captions
saying so), extracts them with the weight-free demo experts and text encoder into a dataset
(exactly what `crosskd extract --experts demo --text-encoder demo` does), trains the two
generated configs with the same seed, tests both on the full-test split, prints a
model-zoo style table and plots validation R@1 and the training loss per epoch of both runs.
It ends in search: every video indexed with the trained model, and a few long videos made of
parts, extracted in segments, answering one query with a moment (crosskd.commands.demo_moments).
`--features synthetic` runs the same comparison on synthetic published-layout features
(configs/demo/) instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from crosskd.commands import demo_moments
from crosskd.commands.device_flag import DEVICE_HELP
from crosskd.commands.options import positive_int, whole_number
from crosskd.config import ExperimentConfig, apply_overrides, load_config, parse_experiment
from crosskd.data.synth import SynthSpec, write_synthetic
from crosskd.extract.collection import RECORD
from crosskd.extract.training_plan import plan_training
from crosskd.process import detect
from crosskd.search.index import MANIFEST, Index
from crosskd.shipped import config_dir
from crosskd.train.device import resolve_device
from crosskd.train.plots import RunCurves, plot_runs
from crosskd.train.report import describe_protocol, format_table
from crosskd.train.runs import run_folder, train_and_test
from crosskd.train.seed_range import MAX_SEED

log = logging.getLogger(__name__)

#: table label -> config file stem (of configs/demo/ and of the extracted dataset's configs)
VARIANTS = {"CE+": "msrvtt-demo-ce", "CE+ + caption KD": "msrvtt-demo-cecap"}
EXTRACTED = {"msrvtt-demo-ce": "config.json", "msrvtt-demo-cecap": "config-cecap.json"}
VAL_R1 = "val_t2v_metrics_R1"
PLOT_NAME = "demo.png"
#: the demo's synthetic MSRVTT: enough videos (50 validation, 300 test) and little enough
#: signal per caption that no metric reaches 100 (measured in docs/USAGE.md).
DEMO_VIDEOS = 1000
DEMO_DATA = {"topics": 8, "latent_dim": 5}
#: the own-video demo's videos (70% train, 10% val, 20% test; measured in docs/USAGE.md).
DEMO_OWN_VIDEOS = 400
#: optimizer steps of each own-video demo run: the generated configs' plan (1,200 on this
#: collection) would take the demo past two minutes; 450 keep it near one and reach most
#: of the plan's R@1 (docs/PERFORMANCE.md, "Training length of generated configs").
DEMO_STEPS = 450


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser("demo", help="train and compare CE+ with and without "
                                   "caption distillation on synthetic data (no download)",
                                   description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("crosskd-demo"),
                        help="folder for the data, runs, table and plot")
    parser.add_argument("--seed", type=whole_number("seed", 0, MAX_SEED), default=0,
                        help="seed of both runs")
    parser.add_argument("--epochs", type=positive_int,
                        help=f"epochs of each run (default: about {DEMO_STEPS} optimizer "
                        "steps on own videos; the demo configs' trainer.epochs with "
                        "--features synthetic)")
    parser.add_argument("--features", choices=("videos", "synthetic"), default="videos",
                        help="videos: make videos and extract them (the own-video loop); "
                        "synthetic: synthetic features in the published layout (default: "
                        "%(default)s)")
    parser.add_argument("--videos", type=positive_int,
                        help=f"videos to generate (default: {DEMO_OWN_VIDEOS}: 70%%/10%%/20%% "
                        f"train/val/test; with --features synthetic {DEMO_VIDEOS}: "
                        "65%%/5%%/30%%)")
    parser.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument("--serve", action="store_true",
                        help="then serve the search page of the trained model on every "
                        "video (the index named on the 'index:' line) and open it")
    parser.add_argument("--port", type=whole_number("port", 1, 65535), default=8000,
                        help="port of --serve's page")
    parser.set_defaults(func=run)


def _demo_config(stem: str, out: Path, seed: int, epochs: int | None,
                 extracted: bool = False) -> dict[str, Any]:
    """A variant's config: from the extracted dataset, or configs/demo/ on synthetic features."""
    path = (out / "data" / EXTRACTED[stem]) if extracted else config_dir() / "demo" / f"{stem}.json"
    overrides = [("trainer.save_dir", json.dumps(str(out / "runs"))), ("seed", str(seed))]
    if not extracted:
        overrides.append(("data_loader.args.data_dir", json.dumps(str(out / "data" / "MSRVTT"))))
    if epochs is not None:
        overrides.append(("trainer.epochs", str(epochs)))
    config = load_config(path)
    if extracted and epochs is None:
        record = json.loads((out / "data" / RECORD).read_text(encoding="utf-8"))
        config = plan_training(config, record["splits"]["train"], steps=DEMO_STEPS)
    return apply_overrides(config, overrides)


def _curves(experiment: ExperimentConfig, run_dir: Path, result: dict[str, Any]
            ) -> RunCurves:
    """A run's per-epoch validation R@1 and loss, and the epoch its monitor kept."""
    history = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    monitor = experiment.trainer.monitor
    best, best_epoch = monitor.worst, history[-1]["epoch"]
    for row in history:
        if monitor.key in row and monitor.improved(row[monitor.key], best):
            best, best_epoch = row[monitor.key], row["epoch"]
    validated = [row for row in history if VAL_R1 in row]
    return RunCurves(epochs=[row["epoch"] for row in validated],
                     val_r1=[row[VAL_R1] for row in validated],
                     loss_epochs=[row["epoch"] for row in history],
                     loss=[row["loss"] for row in history], best_epoch=best_epoch,
                     test_r1=result["t2v"]["R1"],
                     test_geometric_mean=result["t2v"]["geometric_mean_R1-R5-R10"])


def _extract_videos(out: Path, count: int, seed: int) -> Path:
    """Synthetic videos under out/videos, extracted with the demo experts into out/data."""
    from crosskd.extract.job import ExtractOptions, extract
    from crosskd.extract.synthetic_videos import write_collection

    started = time.monotonic()
    captions = write_collection(out / "videos", count, seed)
    log.info("demo: %d synthetic videos in %s (%.0f s)", count, out / "videos",
             time.monotonic() - started)
    extract(ExtractOptions(videos=out / "videos", captions=captions, out=out / "data",
                           experts="demo", text_encoder="demo", seed=seed))
    log.info("demo: extracted in %.0f s", time.monotonic() - started)
    return out / "data"


def run(args: argparse.Namespace) -> int:
    """Generate the data, train and test both variants, write the table and the plot."""
    started = time.monotonic()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)  # the demo models are tiny: threads cost more than they give
    out = args.out.resolve()
    extracted = args.features == "videos"
    videos = args.videos or (DEMO_OWN_VIDEOS if extracted else DEMO_VIDEOS)
    if extracted:
        data = _extract_videos(out, videos, args.seed)
        demo_moments.extract_moments(out, args.seed)
    else:
        data = out / "data" / "MSRVTT"
        write_synthetic(SynthSpec(dataset="MSRVTT", videos=videos, seed=args.seed, **DEMO_DATA),
                        data)
    results, curves = {}, {}
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for label, stem in VARIANTS.items():
        experiment = parse_experiment(_demo_config(stem, out, args.seed, args.epochs, extracted))
        run_dir = run_folder(experiment.trainer.save_dir, stem, args.seed, stamp)
        log.info("demo: training %s (%s) in %s", label, stem, run_dir)
        context = detect(device, experiment.runtime.amp)
        results[label] = train_and_test(experiment, run_dir, context, cache_dir=out / "cache")
        curves[label] = _curves(experiment, run_dir, results[label])
    protocol = describe_protocol(next(iter(results.values()))["protocol"])
    table = "\n\n".join(format_table(results, direction) for direction in ("t2v", "v2t"))
    source = "videos through the demo experts" if extracted else "features"
    report = (f"{table}\n\nprotocol: {protocol}; synthetic {source} (seed {args.seed}), "
              f"both runs seed {args.seed}\n")
    (out / "results.md").write_text(report, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plot = plot_runs(curves, out / PLOT_NAME,
                     title=f"crosskd demo: synthetic data, seed {args.seed} ({source}, "
                     f"{videos} videos)\ntest: {protocol}")
    index = out / "index"
    _index_demo(experiment.raw, run_dir, out, index, out / "videos", whole_collection=extracted)
    answer = _answer_moment(experiment.raw, run_dir, out, args.seed) if extracted else None
    print(report)
    print(f"data:    {data}\nruns:    {out / 'runs'}\n"
          f"table:   {out / 'results.md'} (and results.json)\nplot:    {plot}\n"
          f"index:   {index} ({label}, {'every video' if extracted else 'test split'})\n"
          f"time:    {time.monotonic() - started:.0f} s\n"
          f"search:  crosskd serve {index}   (or crosskd search {index} --help)")
    if answer is not None:
        print("\n".join(answer.lines(out)))
    if args.serve:
        from crosskd.commands.serve import serve
        serve(index, "127.0.0.1", args.port, open_page=True)
    return 0


def _index_demo(config: dict[str, Any], run_dir: Path, out: Path, path: Path, media: Path,
                whole_collection: bool) -> Index:
    """The search index at `path` of the last variant's best checkpoint: every video (or
    segment) of an own-video collection, or the synthetic features' test split."""
    from crosskd.search.build import build_index, with_split

    if (path / MANIFEST).is_file():  # the index of an earlier demo in this folder
        shutil.rmtree(path)
    index = build_index(with_split(config, None), run_dir, cache_dir=out / "cache",
                        media_roots=[media], whole_collection=whole_collection)
    index.save(path)
    return index


def _answer_moment(config: dict[str, Any], run_dir: Path, out: Path, seed: int
                   ) -> demo_moments.Answer:
    """The long videos' segments indexed with the trained model, the demo's query answered
    with a moment, and the answer kept in out/moment.json."""
    index = _index_demo(demo_moments.moments_config(config, out / demo_moments.DATA), run_dir,
                        out, out / demo_moments.INDEX, out / demo_moments.VIDEOS,
                        whole_collection=True)
    answer = demo_moments.answer_query(index, demo_moments.moment_parts(seed))
    (out / demo_moments.ANSWER).write_text(json.dumps(answer.as_json(), indent=1) + "\n",
                                           encoding="utf-8")
    return answer
