"""`crosskd synth --like CONFIG`: synthetic data with every file a config reads, at small counts.

The config's data part (crosskd.config.data_spec, for its split and its eval_settings split)
says which experts it reads, each expert's width and whether it is a fixed vector or a token
sequence, the text model (file name and width), the TeachText teachers (their width is
`experts.ce_shared_dim`) and the split lists and caption-index files its protocols use; the
writer is crosskd.data.synth, so the files have the published pickle layouts. The teachers
listed in `distil_params` are written even when `distil_loss` is off: the original's loader
reads them whenever they are listed, so the data is readable by both implementations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosskd.config import Config, save_config, with_eval_settings
from crosskd.data.errors import DataError
from crosskd.data.synth import SynthSpec, write_synthetic


@dataclass(frozen=True)
class LikeSizes:
    """The counts `synth --like` writes (the widths come from the config)."""

    videos: int = 40
    captions_per_video: int = 4
    caption_tokens: tuple[int, int] = (2, 6)
    max_expert_tokens: int = 4
    topics: int = SynthSpec.topics
    latent_dim: int = SynthSpec.latent_dim
    missing_fraction: dict[str, float] = field(
        default_factory=lambda: dict(SynthSpec().missing_fraction))
    fewer_captions_fraction: float = SynthSpec.fewer_captions_fraction
    #: the resnext101 expert as the original's ExpertStore pickle (as published) when the
    #: config reads it; False: a plain dict pickle like every other expert.
    expert_store: bool = True
    seed: int = 0


def listed_teachers(config: Config) -> tuple[str, ...]:
    """The teacher files `distil_params.teachers` names, whether or not `distil_loss` is on."""
    names: Any = (config.get("distil_params") or {}).get("teachers") or []
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise DataError(f"config key distil_params.teachers must list file names, "
                        f"got {names!r:.60}")
    return tuple(names)


def spec_like(config: Config, sizes: LikeSizes = LikeSizes()) -> SynthSpec:
    """The synthetic dataset that has every file `config` (a resolved config) reads."""
    from crosskd.config import data_spec  # the data part names the model's widths: torch
    data = data_spec(config)
    final = data_spec(with_eval_settings(config))
    if final.dataset_name != data.dataset_name:
        raise DataError("eval_settings changes data_loader.args.dataset_name: synth --like "
                        "writes one dataset; make the final test read the training dataset")
    fixed = {m: data.raw_input_dims[m] for m in data.modalities if m not in data.variable}
    tokens = tuple(m for m in data.modalities if m in data.variable)
    low, high = sizes.caption_tokens
    return SynthSpec(
        dataset=data.dataset_name, videos=sizes.videos,
        captions_per_video=sizes.captions_per_video, visual_dims=fixed, token_experts=tokens,
        max_expert_tokens=sizes.max_expert_tokens, text_feat=data.text_feat,
        text_dim=data.text_dim, caption_tokens=(low, min(high, data.max_tokens["text"])),
        teacher_dim=data.shared_dim or SynthSpec.teacher_dim,
        teacher_files=data.teachers or listed_teachers(config),
        aggregation={m: dict(a) for m, a in data.aggregation.items()},
        splits=tuple(dict.fromkeys((data.split_name, final.split_name))),
        expert_store=(SynthSpec.expert_store if sizes.expert_store
                      and SynthSpec.expert_store in fixed else None),
        topics=sizes.topics, latent_dim=sizes.latent_dim,
        missing_fraction=dict(sizes.missing_fraction),
        fewer_captions_fraction=sizes.fewer_captions_fraction, seed=sizes.seed)


def write_like(config: Config, out: Path, sizes: LikeSizes = LikeSizes()) -> Path:
    """Write the data `config` reads under `out` and `out/config.json`: `config` with
    `data_loader.args.data_dir` pointing at `out`. Returns the config's path."""
    write_synthetic(spec_like(config, sizes), out)
    shaped = {**config, "data_loader": {**config["data_loader"],
                                        "args": {**config["data_loader"]["args"],
                                                 "data_dir": str(out.resolve())}}}
    path = out / "config.json"
    save_config(shaped, path)
    return path
