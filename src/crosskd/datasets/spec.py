"""What describes one dataset: its files on disk, its published tarball, its synthetic stand-in
and its published models. Plain data, imported by the data, download and synth code alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class DatasetLayout:
    """File names of one dataset: split lists per split name and the experts at fixed paths.

    `split_custom_paths[split]` replaces or adds custom experts for one split (MSRVTT's
    `miech` split reads its own `antoine/` features); `split_text_feats[text_feat][split]`
    names text feature files read one after another and merged (a later file's entry wins)
    for a text model stored per split (the `openai` features of ActivityNet and MSVD), and
    the files of a text model in `youtube_keyed_text_feats` are keyed by the YouTube names
    of `dict_youtube_mapping.pkl` instead of the video ids.
    """

    name: str
    splits: dict[str, tuple[str, str]]
    custom_paths: dict[str, tuple[str, ...]]
    #: where its files come from, for messages about a missing one: None for a published
    #: dataset (its tarball), else what writes them and when (`crosskd extract`).
    made_by: str | None = None
    raw_captions: str = "raw-captions.pkl"
    strip_list_suffix: bool = False
    text_feat_overrides: dict[str, str] = field(default_factory=dict)
    caption_index_files: dict[str, str] = field(default_factory=dict)
    extra_files: tuple[str, ...] = ()
    split_custom_paths: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    split_text_feats: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    youtube_keyed_text_feats: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureTarball:
    """One dataset's published tarball: its folder name and the sha1 of every accepted release."""

    dataset: str
    folder: str
    releases: Mapping[str, str]

    @property
    def archive_name(self) -> str:
        """The file name on the server (and on disk while it is being unpacked)."""
        return f"high-quality-{self.folder}-experts.tar.gz"


@dataclass(frozen=True)
class SynthDefaults:
    """How `crosskd synth` imitates the dataset when not told otherwise."""

    #: experts stored as token sequences that the published configs use.
    token_experts: tuple[str, ...]
    captions_per_video: int
    video_id_prefix: str
    #: (start, end) fractions of the shuffled videos each split list takes.
    split_fractions: dict[str, tuple[float, float]]
    #: whether the published configs score a video's captions as one paragraph.
    fuse_captions: bool = False


@dataclass(frozen=True)
class PublishedModel:
    """A trained checkpoint of the model zoo: variant, method, Drive file id, t2v numbers
    (R1, R5, R10, R50, MedR) as published."""

    variant: str
    method: str
    drive_id: str
    published: tuple[float, float, float, float, float]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything one dataset contributes; the name is `data_loader.args.dataset_name`.
    `tarball` is None for a dataset made here (own videos through `crosskd extract`)."""

    name: str
    layout: DatasetLayout
    tarball: FeatureTarball | None
    synth: SynthDefaults
    models: tuple[PublishedModel, ...] = ()
