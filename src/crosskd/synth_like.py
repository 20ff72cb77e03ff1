"""`crosskd synth --like CONFIG`: synthetic data with every file a config reads, at small counts.

The config's data part (crosskd.config.data_spec, for its split and its eval_settings split)
says which experts it reads, each expert's width and whether it is a fixed vector or a token
sequence, the text model (file name and width), the TeachText teachers (their width is
`experts.ce_shared_dim`) and the split lists and caption-index files its protocols use; the
writer is crosskd.data.synth, so the files have the published pickle layouts. The teachers
listed in `distil_params` are written even when `distil_loss` is off: the original's loader
reads them whenever they are listed, so the data is readable by both implementations.

A config may come from anywhere: every file it names stays inside the output folder, and
every width and count it gives is bounded (crosskd.data.synth.MAX_WIDTH, MAX_FILES), before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from crosskd.config import Config, save_config, with_eval_settings
from crosskd.data.errors import DataError
from crosskd.data.spec import DataSpec
from crosskd.data.synth import MAX_FILES, MAX_WIDTH, SynthSpec, write_synthetic
from crosskd.errors import ConfigError
from crosskd.untrusted import contained


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


def _teacher_folder(base_path: str) -> str:
    """Where the reader looks for the teachers, below the feature folder: a relative
    base_path (checked to stay inside by crosskd.config.data), else its fallback."""
    return "teachers" if PurePosixPath(base_path).is_absolute() else base_path


def _checked_widths(config: Config, data: DataSpec) -> dict[str, int]:
    """The fixed-vector experts' widths, each refused past `MAX_WIDTH` naming its key."""
    from crosskd.config.model import width_key
    fixed = {m: data.raw_input_dims[m] for m in data.modalities if m not in data.variable}
    for name, width in fixed.items():
        _in_bound(width, width_key(config, name), "expert width")
    return fixed


def _in_bound(value: int, key: str, what: str, low: int = 1, high: int = MAX_WIDTH) -> None:
    if not low <= value <= high:
        raise ConfigError(f"config key {key}: {what} {value} is out of range; synth --like "
                          f"takes {low} to {high}")


def spec_like(config: Config, sizes: LikeSizes = LikeSizes()) -> SynthSpec:
    """The synthetic dataset that has every file `config` (a resolved config) reads; the
    numbers and file names taken from it are checked first, naming their keys."""
    from crosskd.config import data_spec  # the data part names the model's widths: torch
    from crosskd.config.data import teacher_names
    data = data_spec(config)
    final = data_spec(with_eval_settings(config))
    for key in ("dataset_name", "root_feat_folder"):
        if getattr(final, key) != getattr(data, key):
            raise DataError(f"eval_settings changes data_loader.args.{key}: synth --like "
                            "writes one dataset; make the final test read the training "
                            "dataset")
    fixed = _checked_widths(config, data)
    tokens = tuple(m for m in data.modalities if m in data.variable)
    _in_bound(len(data.modalities), "experts.modalities", "number of experts",
              high=MAX_FILES)
    teachers = data.teachers or teacher_names(config)
    _in_bound(len(teachers), "distil_params.teachers", "number of teacher files", 0,
              MAX_FILES)
    if data.shared_dim is not None:
        _in_bound(data.shared_dim, "experts.ce_shared_dim", "teacher width")
    low, high = sizes.caption_tokens
    high = min(high, data.max_tokens["text"])
    return SynthSpec(
        dataset=data.dataset_name, videos=sizes.videos,
        captions_per_video=sizes.captions_per_video, visual_dims=fixed, token_experts=tokens,
        max_expert_tokens=sizes.max_expert_tokens, text_feat=data.text_feat,
        text_dim=data.text_dim, caption_tokens=(min(low, high), high),
        teacher_dim=data.shared_dim or SynthSpec.teacher_dim, teacher_files=teachers,
        aggregation={m: dict(a) for m, a in data.aggregation.items()},
        splits=tuple(dict.fromkeys((data.split_name, final.split_name))),
        expert_store=(SynthSpec.expert_store if sizes.expert_store
                      and SynthSpec.expert_store in fixed else None),
        topics=sizes.topics, latent_dim=sizes.latent_dim,
        missing_fraction=dict(sizes.missing_fraction),
        fewer_captions_fraction=sizes.fewer_captions_fraction, seed=sizes.seed,
        root_feat_folder=data.root_feat_folder,
        teacher_folder=_teacher_folder(data.teacher_base_path))


def write_like(config: Config, out: Path, sizes: LikeSizes = LikeSizes()) -> Path:
    """Write the data `config` reads under `out` and `out/config.json`: `config` with
    `data_loader.args.data_dir` pointing at `out`. Returns the config's path."""
    write_synthetic(spec_like(config, sizes), out)
    shaped = {**config, "data_loader": {**config["data_loader"],
                                        "args": {**config["data_loader"]["args"],
                                                 "data_dir": str(out.resolve())}}}
    path = out / "config.json"
    save_config(shaped, contained(out, "config.json", "synth --like's config.json"))
    return path
