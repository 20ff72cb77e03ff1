"""`crosskd extract`: turn a folder (or list file) of videos plus their captions into a dataset
in the published MSRVTT layout, with split lists, config.json / config-cecap.json for train.py
and test.py, keyframes and extraction.json (what produced every feature, and a report of
videos that could not be read).

Results are cached per video under OUT/.extract-cache: a rerun, or a run after an
interruption, skips finished videos. `--shard I/N` extracts every N-th video (under torchrun
each rank takes its own shard); the last shard to finish writes the dataset, or `--merge`
writes it from the cache.

examples:
  crosskd extract videos/ --captions captions.csv --out data/mine --experts demo --text-encoder demo
  crosskd extract videos/ --captions captions.jsonl --out data/mine --device cuda
  torchrun --nproc-per-node 4 -m crosskd extract videos/ --captions c.csv --out data/mine
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from crosskd.commands.device_flag import DEVICE_HELP
from crosskd.commands.options import existing_file, whole_number
from crosskd.errors import UserError
from crosskd.train.seed_range import MAX_SEED

log = logging.getLogger(__name__)
MAX_FRAMES = 10_000  # per video and rate: memory grows with it
MAX_WORKERS = 256  # decoding threads; each holds up to two decoded videos


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `extract` subcommand."""
    parser = subparsers.add_parser("extract", help="extract expert features from your own "
                                   "videos into a dataset train.py and test.py read",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", type=Path, metavar="VIDEOS",
                        help="a folder of videos (searched recursively) or a text file with "
                        "one video path per line; a video's id is its file name without suffix")
    parser.add_argument("--captions", type=existing_file, required=True,
                        help="CSV with video and caption columns (WebVid's videoid,name too), "
                        "JSON lines, or the MSR-VTT annotation JSON; an optional split column "
                        "(train/val/test) fixes a video's split")
    parser.add_argument("--out", type=Path, required=True, help="the dataset folder to write")
    parser.add_argument("--experts", default="default",
                        help="comma-separated expert names or sets: demo (weight-free), "
                        "default (clip, resnet, videomae, ast, whisper); ocr reads text on "
                        "screen (pip install \"crosskd[ocr]\"), e.g. default,ocr "
                        "(default: %(default)s)")
    parser.add_argument("--expert-option", "--expert_option", action="append", default=[],
                        metavar="NAME:KEY=VALUE",
                        help="an option of one expert, e.g. clip:weights=DIR (a local "
                        "save_pretrained folder) or clip:model=openai/clip-vit-base-patch16; "
                        "repeat for more")
    parser.add_argument("--text-encoder", "--text_encoder", default="transformers",
                        help="caption encoder NAME[:key=value,...]: demo (hashed words, "
                        "weight-free), transformers[:model=gpt2,weights=DIR], "
                        "word2vec:path=FILE (GloVe text, word2vec text or binary) (default: "
                        "%(default)s, i.e. GPT-2)")
    parser.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument("--shard", metavar="I/N", type=_shard,
                        help="extract only every N-th video, from the I-th (default: all, or "
                        "torchrun's RANK/WORLD_SIZE)")
    parser.add_argument("--merge", action="store_true",
                        help="write the dataset from the cached results of every shard")
    parser.add_argument("--max-frames", "--max_frames", default=64,
                        type=whole_number("frames per video and rate", 1, MAX_FRAMES),
                        help="most frames per video and rate (longer videos are sampled "
                        "evenly; bounds memory) (default: %(default)s)")
    parser.add_argument("--workers", type=whole_number("decoding threads", 1, MAX_WORKERS),
                        default=2,
                        help="decoding threads (default: %(default)s)")
    parser.add_argument("--seed", type=whole_number("seed", 0, MAX_SEED), default=0,
                        help="seed of the train/val/test draw (default: %(default)s)")
    parser.set_defaults(func=run)


def _shard(text: str) -> tuple[int, int]:
    """argparse type of --shard: `I/N` in ASCII digits, 0 <= I < N."""
    from crosskd.extract.job import shard_numbers

    try:
        return shard_numbers(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def expert_options(items: list[str]) -> dict[str, dict[str, str]]:
    """`NAME:KEY=VALUE` items -> {name: {key: value}}."""
    options: dict[str, dict[str, str]] = {}
    for item in items:
        name, _, assignment = item.partition(":")
        key, sep, value = assignment.partition("=")
        if not name or not sep or not key:
            raise UserError(f"--expert-option {item!r}: write NAME:KEY=VALUE, e.g. "
                            "clip:weights=/models/clip")
        options.setdefault(name, {})[key] = value
    return options


def run(args: argparse.Namespace) -> int:
    """Extract (this shard of) the videos and write the dataset when all are done."""
    from crosskd.extract.job import ExtractOptions, extract
    from crosskd.train.device import resolve_device

    options = ExtractOptions(
        videos=args.videos, captions=args.captions, out=args.out, experts=args.experts,
        expert_options=expert_options(args.expert_option), text_encoder=args.text_encoder,
        device=str(resolve_device(args.device)), shard=args.shard,
        merge=args.merge, max_frames=args.max_frames, workers=args.workers, seed=args.seed)
    record = extract(options)
    if record is None:
        print(f"shard done; the dataset is written when every shard is ({args.out})")
        return 0
    print(f"dataset: {args.out}\nrecord:  {record}\n"
          f"train:   python3 train.py --config {args.out / 'config.json'}\n"
          f"         (with caption KD: {args.out / 'config-cecap.json'})")
    return 0
