"""`crosskd synth`: write a synthetic dataset in one of the published on-disk layouts.

With `--like CONFIG` it writes every file that config reads (each expert at its own width and
kind, the text features, the teachers, the split lists and caption-index files of its split
and its eval_settings split) and `OUT/config.json`, the config with data_dir pointing at OUT:
`python3 train.py --config OUT/config.json` then runs it on the synthetic data.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from crosskd.commands.options import whole_number
from crosskd.config import load_config
from crosskd.data import synth
from crosskd.data.layouts import LAYOUTS
from crosskd.data.synth import SynthSpec, write_synthetic
from crosskd.synth_like import LikeSizes, write_like
from crosskd.shipped import resolve_config
from crosskd.train.seed_range import MAX_SEED

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `synth` subcommand."""
    parser = subparsers.add_parser("synth", help="write a synthetic dataset (same files and "
                                   "pickle formats as the published tarballs)",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True,
                        help="data_dir to write (required)")
    parser.add_argument("--like", type=resolve_config, metavar="CONFIG",
                        help="write every file this config reads, at its widths, and "
                        "OUT/config.json pointing at OUT; configs/NAME.json finds a shipped "
                        "config; --dataset, --text-feat, --text-dim and --expert-dim then come "
                        "from the config (default: no config, the options below)")
    parser.add_argument("--dataset", choices=sorted(LAYOUTS), default="MSRVTT",
                        help="whose on-disk layout (file names, split lists) to write "
                        "(default: %(default)s)")
    parser.add_argument("--videos", type=whole_number(low=1, high=synth.MAX_VIDEOS),
                        default=None,
                        help=f"number of videos, at least 10 (default: {SynthSpec.videos}; "
                        f"with --like {LikeSizes.videos})")
    parser.add_argument("--captions", type=whole_number(low=1, high=synth.MAX_CAPTIONS),
                        default=None,
                        help="captions per video; a few videos get one or two fewer "
                        f"(default: dataset-like, 20 for MSRVTT; with --like "
                        f"{LikeSizes.captions_per_video})")
    parser.add_argument("--caption-tokens", "--caption_tokens", nargs=2,
                        type=whole_number(low=1, high=synth.MAX_TOKENS),
                        default=None, metavar=("MIN", "MAX"),
                        help="range of tokens per caption (default: "
                        f"{' '.join(map(str, SynthSpec.caption_tokens))}; with --like "
                        f"{' '.join(map(str, LikeSizes.caption_tokens))}, at most the "
                        "config's max_tokens.text)")
    parser.add_argument("--expert-tokens", "--expert_tokens", default=None,
                        type=whole_number(low=1, high=synth.MAX_TOKENS),
                        help="most tokens per video of a token-sequence expert (audio, "
                        f"speech, ocr) (default: {SynthSpec.max_expert_tokens}; with --like "
                        f"{LikeSizes.max_expert_tokens})")
    parser.add_argument("--text-feat", "--text_feat", default=SynthSpec.text_feat,
                        help="name of the text features (experts.text_feat of a config) "
                        "(default: %(default)s)")
    parser.add_argument("--text-dim", "--text_dim", default=SynthSpec.text_dim,
                        type=whole_number(low=1, high=synth.MAX_WIDTH),
                        help="width of the text features (default: %(default)s)")
    parser.add_argument("--expert-dim", "--expert_dim", default=None,
                        type=whole_number(low=1, high=synth.MAX_WIDTH),
                        help="width of every visual expert (default: small distinct widths, "
                        "64 to 96)")
    parser.add_argument("--topics", type=whole_number(low=1, high=synth.MAX_VIDEOS),
                        default=SynthSpec.topics,
                        help="latent topics the videos share; fewer make retrieval harder "
                        "(default: %(default)s)")
    parser.add_argument("--seed", type=whole_number(low=0, high=MAX_SEED),
                        default=SynthSpec.seed,
                        help="random seed (default: %(default)s)")
    parser.set_defaults(func=run)


def _given(value, default):
    return default if value is None else value


def run(args: argparse.Namespace) -> int:
    """Write the dataset (and, with --like, its config) and print where it is."""
    if args.like is not None:
        sizes = LikeSizes(
            videos=_given(args.videos, LikeSizes.videos),
            captions_per_video=_given(args.captions, LikeSizes.captions_per_video),
            caption_tokens=tuple(_given(args.caption_tokens, LikeSizes.caption_tokens)),
            max_expert_tokens=_given(args.expert_tokens, LikeSizes.max_expert_tokens),
            topics=args.topics, seed=args.seed)
        path = write_like(load_config(args.like), args.out, sizes)
        log.info("train it with: python3 train.py --config %s", path)
        print(path)
        return 0
    widths = SynthSpec().visual_dims
    if args.expert_dim is not None:
        widths = {name: args.expert_dim for name in widths}
    spec = SynthSpec(dataset=args.dataset, videos=_given(args.videos, SynthSpec.videos),
                     captions_per_video=args.captions, text_feat=args.text_feat,
                     text_dim=args.text_dim, visual_dims=widths,
                     caption_tokens=tuple(_given(args.caption_tokens, SynthSpec.caption_tokens)),
                     max_expert_tokens=_given(args.expert_tokens, SynthSpec.max_expert_tokens),
                     topics=args.topics, seed=args.seed)
    root = write_synthetic(spec, args.out)
    print(root)
    return 0
