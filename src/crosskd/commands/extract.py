"""`crosskd extract`: turn a folder (or list file) of videos, and their captions if you have
them, into an own-video dataset: expert features of every video, the captioned ones split
into train / val / test, config.json / config-cecap.json for train.py and test.py, keyframes
and extraction.json (the collection's name and counts, what produced every feature, and a
report of videos that could not be read). Without captions the collection can be indexed and
searched with a model trained elsewhere on the same experts.

Extracting again into the same OUT adds the new videos; the dataset's videos keep their splits,
and those whose file is gone stay (--prune removes them). Results are cached per video under
OUT/.extract-cache: a rerun, or a run after an interruption, skips finished videos.
`--shard I/N` extracts every N-th video (under torchrun each rank takes its own shard); the
last shard to finish writes the dataset, or `--merge` writes it from the cache.

`--segment SECONDS` cuts every video into consecutive windows of that length, `--segment
shots` at its shots (PySceneDetect), and makes each segment a retrieval item: its own
features and keyframe, its start and end, the timed captions it overlaps (a captions file
with start and end times); splits are drawn by video.

examples:
  crosskd extract videos/ --captions captions.csv --out data/mine --experts demo --text-encoder demo
  crosskd extract videos/ --captions captions.jsonl --out data/mine --device cuda
  crosskd extract more-videos/ --out data/mine        # add videos (without captions) to it
  crosskd extract archive/ --out data/archive --name "Archive 2024"   # no captions: index it
  crosskd extract lectures/ --captions moments.csv --out data/lectures --segment 10
  crosskd extract films/ --captions activitynet.json --out data/films --segment shots
  torchrun --nproc-per-node 4 -m crosskd extract videos/ --captions c.csv --out data/mine
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from crosskd.commands.device_flag import DEVICE_HELP
from crosskd.commands.options import existing_file, whole_number
from crosskd.errors import UserError
from crosskd.train.seed_range import MAX_SEED
from crosskd.untrusted import terminal_safe

if TYPE_CHECKING:
    from crosskd.extract.job import Written
    from crosskd.extract.segmentation import Segmentation

log = logging.getLogger(__name__)
MAX_NAME = 100  # characters of a collection's name: pages and reports show it in a line
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
    parser.add_argument("--captions", type=existing_file,
                        help="CSV with video and caption columns (WebVid's videoid,name too), "
                        "JSON lines, or the MSR-VTT annotation JSON; an optional split column "
                        "(train/val/test) fixes a video's split. Without it (and for videos "
                        "it does not name) videos are indexed, not trained on (default: none)")
    parser.add_argument("--out", type=Path, required=True,
                        help="the dataset folder to write, or to add the videos to")
    parser.add_argument("--name", type=_collection_name,
                        help="the collection's name, as pages and reports show it (default: "
                        "the name it has, else the --out folder's name)")
    parser.add_argument("--prune", action="store_true",
                        help="remove the dataset's videos whose file is gone (default: keep "
                        "them, from the cache)")
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
                        help="most frames per video (per segment with --segment) and rate "
                        "(longer ones are sampled evenly; bounds memory) (default: "
                        "%(default)s)")
    parser.add_argument("--segment", type=_segmentation, metavar="SECONDS|shots",
                        help="cut each video into segments, the dataset's items: consecutive "
                        "windows of SECONDS (0.5 to 86400; a last window under min(1 s, "
                        "SECONDS/4) joins the one before), or its shots (PySceneDetect, "
                        'pip install "crosskd[shots]"; shots over 30 s cut into 30 s '
                        "windows) (default: whole videos)")
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


def _segmentation(text: str) -> Segmentation:
    """argparse type of --segment: `shots` or a number of seconds in range."""
    from crosskd.extract.segmentation import parse_segmentation

    try:
        return parse_segmentation(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _collection_name(text: str) -> str:
    """argparse type of --name: printable text on one line, 1 to MAX_NAME characters."""
    name = text.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise argparse.ArgumentTypeError(f"{terminal_safe(text)!r:.120}: give a name of 1 to "
                                         f"{MAX_NAME} printable characters on one line")
    return name


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
    from crosskd.process import detect
    from crosskd.train.device import resolve_device

    context = detect(resolve_device(args.device))
    options = ExtractOptions(
        videos=args.videos, captions=args.captions, out=args.out, name=args.name,
        prune=args.prune, experts=args.experts,
        expert_options=expert_options(args.expert_option), text_encoder=args.text_encoder,
        device=str(context.device), shard=args.shard or context.shard,
        merge=args.merge, max_frames=args.max_frames, workers=args.workers, seed=args.seed,
        segmentation=args.segment)
    written = extract(options)
    if written is None:
        print(f"shard done; the dataset is written when every shard is ({args.out})")
        return 0
    print(summary(written, args.out))
    return 0


def summary(written: Written, out: Path) -> str:
    """What the run wrote: the changes, the collection's counts, and what to run next."""
    from crosskd.extract.record import counts

    collection, held = written.collection, counts(written.collection, written.items)
    splits = ", ".join(f"{len(ids)} {name}" for name, ids in collection.splits.items())
    captioned = (f"{held['captioned_videos']} with captions ({splits})" if splits
                 else "no captions")
    if "segments" in held:
        captioned += (f"; {held['segments']} segments, {held['captioned_segments']} with "
                      "captions")
    lines = [*collection.changes(),
             f"dataset: {out} ({collection.name!r}: {held['videos']} videos, {captioned})",
             f"record:  {written.record}"]
    if collection.splits:
        lines += [f"train:   python3 train.py --config {out / 'config.json'}",
                  f"         (with caption KD: {out / 'config-cecap.json'})"]
    else:
        lines.append("index:   with a model trained on the same experts and text encoder: "
                     f"crosskd index --checkpoint RUN --data {out} --out INDEX")
    return "\n".join(terminal_safe(line) for line in lines)
