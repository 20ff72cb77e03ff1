"""`crosskd search`: the videos a trained model ranks highest for a query, from an index
built by `crosskd index`.

The query is free text (datasets with a recorded text encoder), a caption of the indexed
split (--caption VIDEO_ID:INDEX) or a file of caption features (--features FILE.npy,
[tokens, text_dim]); --video VIDEO_ID ranks the split's captions for a video instead. Of a
segmented index, each hit is a moment (its video and time range); --per-video keeps each
video's best one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from crosskd.commands.backend_flags import add_search_flags, given_search_options
from crosskd.commands.options import whole_number
from crosskd.errors import UserError
from crosskd.search.answers import answer, caption_answer, query_of
from crosskd.search.index import Index
from crosskd.search.moments import Moment
from crosskd.untrusted import terminal_safe

#: characters of a read or heard text that the table shows
READ_SHOWN = 160


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `search` subcommand."""
    parser = subparsers.add_parser("search", help="search an index with a text query",
                                   description=__doc__)
    parser.add_argument("index", type=Path, help="index folder (crosskd index --out)")
    parser.add_argument("text", nargs="?", help="free-text query (default: none)")
    parser.add_argument("-k", type=whole_number("k"), default=10, help="results to return")
    parser.add_argument("--caption", metavar="VIDEO_ID:INDEX", help="query with a stored caption (default: none)")
    parser.add_argument("--features", type=Path, metavar="FILE.npy",
                        help="query with caption features [tokens, text_dim] (default: none)")
    parser.add_argument("--video", metavar="VIDEO_ID",
                        help="video -> text: rank the indexed captions for this video (default: none)")
    add_search_flags(parser)
    parser.add_argument("--exact", action="store_true",
                        help="search exactly even if the index was built approximate")
    parser.add_argument("--no-qbnorm", "--no_qbnorm", dest="qbnorm", action="store_false",
                        help="rank by the model's raw scores even if the index was built "
                        "with --qbnorm (default: QB-Norm where the index has it)")
    parser.add_argument("--per-video", "--per_video", dest="per_video", action="store_true",
                        help="of an index of segments, keep each video's best segment only "
                        "(still k hits where there are k videos; no effect on whole videos)")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.set_defaults(func=run)


def read_features(path: Path) -> np.ndarray:
    """Caption features from a .npy file (no pickles)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable .npy array of caption features ({err})") \
            from None


def _print_videos(result: dict) -> None:
    """The answer as a table, each hit's read or heard text under it; every stored text
    (expert names, video ids, captions, read text) escaped, so an index cannot drive the
    terminal."""
    weights = ", ".join(f"{terminal_safe(m)} {w:.2f}"
                        for m, w in result["query"]["weights"].items())
    print(f"query {result['query']['label']!r}; expert weights: {weights}")
    if "qbnorm" in result["query"]:
        print(_qbnorm_line(result["query"]["qbnorm"]))
    for rank, hit in enumerate(result["results"], 1):
        top = sorted(hit["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        shares = ", ".join(f"{terminal_safe(m)} {c:+.3f}" for m, c in top)
        caption = terminal_safe(hit["captions"][0]) if hit["captions"] else ""
        normalised = f"  {hit['normalised_score']:.4g}" if "normalised_score" in hit else ""
        print(f"{rank:3d}  {hit['score']:+.4f}{normalised}  {_item(hit)}  "
              f"[{shares}]  {caption}")
        for line in _read_lines(hit.get("read", {})):
            print(line)


def _item(hit: dict) -> str:
    """A hit's video, and of a segment its time range: `video0003  01:20-01:30`."""
    video = terminal_safe(hit["video_id"])
    if "segment_id" not in hit:
        return video
    return f"{video}  {Moment(hit['video_id'], hit['start'], hit['end']).clock()}"


def _read_lines(read: dict[str, str]) -> list[str]:
    """One indented line per text the video's experts read or heard, shortened to
    READ_SHOWN characters (--json has it whole) and escaped: it is text from the video."""
    return [f"     {terminal_safe(kind)}: "
            f"{terminal_safe(text if len(text) <= READ_SHOWN else text[:READ_SHOWN] + '...')}"
            for kind, text in read.items()]


def _qbnorm_line(qbnorm: dict) -> str:
    """Which scores ranked the table, and the columns: raw score, then normalised."""
    if not qbnorm["requested"]:
        how = "off (--no-qbnorm): ranked by the raw score"
    elif qbnorm["applied"]:
        how = "ranked by the normalised score"
    else:
        how = "not applied (the best video is no bank query's best match): ranked by raw score"
    return (f"QB-Norm (beta {qbnorm['beta']:g}, bank of {qbnorm['bank_size']} captions) "
            f"{how}; columns: score, normalised score")


def _print_captions(result: dict) -> None:
    """Video -> text as a table, stored text escaped."""
    for rank, hit in enumerate(result["results"], 1):
        print(f"{rank:3d}  {hit['score']:+.4f}  {terminal_safe(hit['caption'])}  "
              f"{terminal_safe(hit['text'])}")


def _print_json(result: dict) -> None:
    """Exact JSON, ASCII only (control and non-ASCII characters as \\u escapes, safe on a
    terminal); NaN is not JSON, and a stored vector holding it is a damaged index."""
    try:
        print(json.dumps(result, ensure_ascii=True, allow_nan=False))
    except ValueError:
        raise UserError("the index gave a NaN or infinite score: its stored vectors are "
                        "damaged; rebuild it with crosskd index") from None


def run(args: argparse.Namespace) -> int:
    """Answer one query and print it (as a table, or JSON with --json)."""
    index = Index.load(args.index, exact=args.exact, **given_search_options(args))
    if args.video is not None:
        if args.text or args.caption or args.features:
            raise UserError("--video ranks captions for a video; give no other query with it")
        result = caption_answer(index, args.video, args.k)
        show = _print_captions
    else:
        features = read_features(args.features) if args.features else None
        result = answer(index, query_of(index, args.text, args.caption, features), args.k,
                        args.qbnorm, args.per_video)
        show = _print_videos
    collection = index.collection()
    if args.json:
        _print_json({"collection": collection.as_json(), **result})
    else:
        print(f"searched {terminal_safe(collection.summary())}")
        show(result)
    return 0
