"""`crosskd synth`: write a synthetic dataset in one of the published on-disk layouts."""

from __future__ import annotations

import argparse
from pathlib import Path

from crosskd.data.layouts import LAYOUTS
from crosskd.data.synth import SynthSpec, write_synthetic


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `synth` subcommand."""
    parser = subparsers.add_parser("synth", help="write a synthetic dataset (same files and "
                                   "pickle formats as the published tarballs)",
                                   description=__doc__)
    parser.add_argument("--dataset", choices=sorted(LAYOUTS), default="MSRVTT",
                        help="whose on-disk layout (file names, split lists) to write")
    parser.add_argument("--out", type=Path, required=True,
                        help="data_dir to write (required)")
    parser.add_argument("--videos", type=int, default=SynthSpec.videos,
                        help="number of videos")
    parser.add_argument("--captions", type=int, default=None,
                        help="captions per video (default: dataset-like)")
    parser.add_argument("--text-feat", "--text_feat", default=SynthSpec.text_feat,
                        help="name of the text features (experts.text_feat of a config)")
    parser.add_argument("--text-dim", "--text_dim", type=int, default=SynthSpec.text_dim,
                        help="width of the text features")
    parser.add_argument("--caption-tokens", "--caption_tokens", type=int, nargs=2,
                        default=SynthSpec.caption_tokens, metavar=("MIN", "MAX"),
                        help="range of tokens per caption (default: "
                        f"{' '.join(map(str, SynthSpec.caption_tokens))})")
    parser.add_argument("--expert-dim", "--expert_dim", type=int, default=None,
                        help="width of every visual expert (default: small distinct widths)")
    parser.add_argument("--topics", type=int, default=SynthSpec.topics,
                        help="latent topics the videos share (fewer: harder retrieval)")
    parser.add_argument("--seed", type=int, default=SynthSpec.seed, help="random seed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the dataset and print where it is."""
    spec = SynthSpec(dataset=args.dataset, videos=args.videos,
                     captions_per_video=args.captions, text_feat=args.text_feat,
                     text_dim=args.text_dim, caption_tokens=tuple(args.caption_tokens),
                     topics=args.topics, seed=args.seed)
    if args.expert_dim is not None:
        spec.visual_dims = {name: args.expert_dim for name in spec.visual_dims}
    root = write_synthetic(spec, args.out)
    print(root)
    return 0
