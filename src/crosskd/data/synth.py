"""Synthetic datasets in the published on-disk layouts (same files, names and pickle formats).

Videos share latent topics, so some non-matching pairs are much closer than others; every expert
is a different noisy projection of a video's latent vector; flaky experts are missing (a float
NaN) for a fraction of videos; captions are noisy paraphrase-like views of the latent with
varying token counts, and a few videos have fewer captions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping

import numpy as np
from tqdm import tqdm

from crosskd.data import layouts
from crosskd.data.errors import DataError
from crosskd.data.picklewriter import write_dict_pickle, write_expert_store, write_pickle
from crosskd.datasets import DATASETS
from crosskd.experts import TOKEN_DIMS
from crosskd.untrusted import contained

log = logging.getLogger(__name__)

ROOT_FEAT_FOLDER = "high-quality/structured-symlinks"
VISUAL_EXPERTS = ("scene.densenet161.0", "r2p1d.r2p1d-ig65m-kinetics.0", "imagenet.senet154.0",
                  "r2p1d.r2p1d-ig65m.0", "imagenet.resnext101_32x48d.0")
#: the published configs' aggregation settings of each visual expert (they name its file).
VISUAL_AGGREGATION: dict[str, dict[str, Any]] = {
    "scene.densenet161.0": {"fps": 25, "pixel_dim": 256, "stride": 1, "offset": 0},
    "r2p1d.r2p1d-ig65m-kinetics.0": {"fps": 30, "pixel_dim": 256, "stride": 32, "offset": 0,
                                     "inner_stride": 1},
    "imagenet.senet154.0": {"fps": 25, "pixel_dim": 256, "stride": 1, "offset": 0},
    "r2p1d.r2p1d-ig65m.0": {"fps": 30, "pixel_dim": 256, "stride": 32, "offset": 0,
                            "inner_stride": 1},
    "imagenet.resnext101_32x48d.0": {"fps": 25, "pixel_dim": 256, "stride": 1, "offset": 0},
}
#: bounds of what one synthetic dataset may hold: far above any published dataset's widths
#: and counts, far below what turns a typo (feat_dims 10**9) into a 477 GiB allocation.
MAX_WIDTH = 65_536
MAX_TOKENS = 4_096
MAX_CAPTIONS = 1_000
MAX_VIDEOS = 1_000_000
MAX_FILES = 64  # experts, and teachers
MAX_BYTES = 64 * 2**30  # a full-size MSRVTT with 1600-wide text features is about 32 GiB
TEACHER_FILES = ("train-full-ce-refined-text-w2v.pkl", "train-full-ce-refined-text-gpt2-xl.pkl",
                 "train-full-ce-refined-text-gpt2-xl-finetuned.pkl")


@dataclass
class SynthSpec:
    """Sizes, dimensions and randomness of a synthetic dataset."""

    dataset: str = "MSRVTT"
    videos: int = 400
    captions_per_video: int | None = None
    fewer_captions_fraction: float = 0.01
    visual_dims: dict[str, int] = field(default_factory=lambda: {
        "scene.densenet161.0": 96, "r2p1d.r2p1d-ig65m-kinetics.0": 64,
        "imagenet.senet154.0": 80, "r2p1d.r2p1d-ig65m.0": 72,
        "imagenet.resnext101_32x48d.0": 88})
    token_experts: tuple[str, ...] | None = None
    max_expert_tokens: int = 10
    missing_fraction: dict[str, float] = field(default_factory=lambda: {"audio": 0.25,
                                                                        "speech": 0.35})
    text_feat: str = "w2v"
    text_dim: int = 300
    caption_tokens: tuple[int, int] = (4, 14)
    topics: int = 8
    latent_dim: int = 16
    teacher_dim: int = 32
    teacher_modalities: tuple[str, ...] = ("scene.densenet161.0", "audio", "r2p1d.r2p1d-ig65m.0",
                                           "imagenet.senet154.0")
    expert_store: str | None = "imagenet.resnext101_32x48d.0"
    seed: int = 0
    #: `feat_aggregation` entries naming the files (a config's, for `synth --like`); experts
    #: without one use `VISUAL_AGGREGATION`.
    aggregation: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the splits whose files to write (a split may read its own expert and text files);
    #: empty: every split of the layout.
    splits: tuple[str, ...] = ()
    teacher_files: tuple[str, ...] = TEACHER_FILES
    #: the feature folder below `out` and the teachers' folder below it (a config's
    #: root_feat_folder and distil_params.base_path, for `synth --like`).
    root_feat_folder: str = ROOT_FEAT_FOLDER
    teacher_folder: str = "teachers"

    def __post_init__(self) -> None:
        layouts.get_layout(self.dataset)
        if self.videos < 10:
            raise DataError("a synthetic dataset needs at least 10 videos")
        defaults = DATASETS[self.dataset].synth
        if self.captions_per_video is None:
            self.captions_per_video = defaults.captions_per_video
        if self.token_experts is None:
            self.token_experts = defaults.token_experts
        self.check()

    def check(self) -> None:
        """Refuse counts and widths out of range, or files too large in all (a DataError
        naming which): run again by `write_synthetic`, as fields may change after init."""
        for what, value, low, high in self._ranges():
            in_range(value, what, low, high)
        _refuse_too_large(self)

    def _ranges(self) -> Iterator[tuple[str, Any, int, int]]:
        """(name, value, low, high) of every count and width."""
        yield "videos", self.videos, 10, MAX_VIDEOS
        yield "captions per video", self.captions_per_video, 1, MAX_CAPTIONS
        yield "fewest caption tokens", self.caption_tokens[0], 1, MAX_TOKENS
        yield "most caption tokens", self.caption_tokens[1], self.caption_tokens[0], MAX_TOKENS
        yield "most expert tokens", self.max_expert_tokens, 1, MAX_TOKENS
        yield "text width", self.text_dim, 1, MAX_WIDTH
        yield "teacher width", self.teacher_dim, 1, MAX_WIDTH
        yield "topics", self.topics, 1, MAX_VIDEOS
        yield "latent width", self.latent_dim, 1, MAX_WIDTH
        yield "seed", self.seed, 0, 2**64 - 1
        yield "experts", len(self.modalities), 1, MAX_FILES
        yield "teacher files", len(self.teacher_files), 0, MAX_FILES
        for name, width in self.visual_dims.items():
            yield f"width of expert {name!r}", width, 1, MAX_WIDTH

    @property
    def modalities(self) -> list[str]:
        """Experts written, in the published configs' order."""
        return [*self.visual_dims, *(self.token_experts or ())]


def in_range(value: Any, what: str, low: int, high: int) -> None:
    """Refuse `value` unless it is a whole number in [low, high], naming `what`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"synthetic dataset: {what} must be a whole number, not {value!r:.40}")
    if not low <= value <= high:
        raise DataError(f"synthetic dataset: {what} = {value} is out of range; use {low} "
                        f"to {high}")


def estimated_bytes(spec: SynthSpec) -> dict[str, int]:
    """An upper bound of the bytes each kind of file takes (float32 values)."""
    videos, captions = spec.videos, spec.captions_per_video or 1
    parts = {f"expert {name!r} (width {width})": videos * width * 4
             for name, width in spec.visual_dims.items()}
    parts.update({f"expert {name!r} ({spec.max_expert_tokens} tokens of width "
                  f"{TOKEN_DIMS.get(name, 0)})":
                  videos * spec.max_expert_tokens * TOKEN_DIMS.get(name, 0) * 4
                  for name in spec.token_experts or ()})
    parts[f"text features ({captions} captions of up to {spec.caption_tokens[1]} tokens "
          f"of width {spec.text_dim})"] = videos * captions * spec.caption_tokens[1] * \
        spec.text_dim * 4
    parts[f"{len(spec.teacher_files)} teacher file(s) (width {spec.teacher_dim})"] = \
        len(spec.teacher_files) * videos * (1 + captions) * len(spec.teacher_modalities) * \
        spec.teacher_dim * 4
    return parts


def _refuse_too_large(spec: SynthSpec) -> None:
    """Refuse a dataset whose files would exceed `MAX_BYTES`, naming its largest part."""
    parts = estimated_bytes(spec)
    total = sum(parts.values())
    if total > MAX_BYTES:
        largest = max(parts, key=parts.__getitem__)
        raise DataError(f"synthetic dataset: about {total / 2**30:.1f} GiB to write, over the "
                        f"{MAX_BYTES // 2**30} GiB limit; the largest part is {largest}, "
                        f"{parts[largest] / 2**30:.1f} GiB: use fewer videos or captions, "
                        "or smaller widths")


@dataclass(frozen=True)
class _Target:
    """Where the files go: every path resolved inside `out`, symlinks included at every
    level, because config values name them (a downloaded config must not write elsewhere)."""

    out: Path
    folder: str

    def __call__(self, relative: str | PurePosixPath, what: str) -> Path:
        return contained(self.out, PurePosixPath(self.folder, relative), what)


class _World:
    """The latent structure shared by all files: topics, video latents, caption latents."""

    def __init__(self, spec: SynthSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        self.video_ids = [self._video_id(i) for i in range(spec.videos)]
        centres = rng.standard_normal((spec.topics, spec.latent_dim)) * 2.0
        topic = rng.integers(0, spec.topics, spec.videos)
        self.latent = (centres[topic] + rng.standard_normal((spec.videos, spec.latent_dim))
                       ).astype(np.float32)
        base = spec.captions_per_video or 1
        fewer = np.zeros(spec.videos, bool)
        if spec.fewer_captions_fraction > 0:
            count = max(1, round(spec.fewer_captions_fraction * spec.videos))
            fewer[rng.choice(spec.videos, count, replace=False)] = True
        self.num_captions = np.where(fewer, np.maximum(base - rng.integers(1, 3, spec.videos), 1),
                                     base)
        self.topic = topic
        self.seed_base = spec.seed

    def _video_id(self, i: int) -> str:
        return f"{DATASETS[self.spec.dataset].synth.video_id_prefix}{i}"

    def rng(self, *tags: int | str) -> np.random.Generator:
        """An independent generator per file (and per video chunk), stable across runs."""
        words = [self.seed_base, *[sum(map(ord, str(t))) * 7919 + i for i, t in enumerate(tags)]]
        return np.random.default_rng(words)

    def projection(self, name: str, width: int) -> np.ndarray:
        return (self.rng("proj", name).standard_normal((self.spec.latent_dim, width))
                / np.sqrt(self.spec.latent_dim)).astype(np.float32)

    def caption_latents(self, v: int, rng: np.random.Generator) -> np.ndarray:
        """One paraphrase-like latent per caption of video v (shared across text and teachers)."""
        count = int(self.num_captions[v])
        return self.latent[v] + 0.6 * rng.standard_normal((count, self.spec.latent_dim),
                                                         dtype=np.float32)


def _fixed_items(world: _World, name: str, width: int) -> Iterator[tuple[str, Any]]:
    proj, rng = world.projection(name, width), world.rng("expert", name)
    noise = 0.3 + 0.4 * rng.random()
    missing = rng.random(len(world.video_ids)) < world.spec.missing_fraction.get(name, 0.0)
    for v, vid in enumerate(world.video_ids):
        row = world.latent[v] @ proj + noise * rng.standard_normal(width, dtype=np.float32)
        yield vid, float("nan") if missing[v] else row.astype(np.float32)


def _token_items(world: _World, name: str) -> Iterator[tuple[str, Any]]:
    width = TOKEN_DIMS[name]
    proj, rng = world.projection(name, width), world.rng("expert", name)
    missing = rng.random(len(world.video_ids)) < world.spec.missing_fraction.get(name, 0.0)
    for v, vid in enumerate(world.video_ids):
        count = int(rng.integers(min(2, world.spec.max_expert_tokens),
                                 world.spec.max_expert_tokens + 1))
        tokens = world.latent[v] @ proj + rng.standard_normal((count, width), dtype=np.float32)
        yield vid, float("nan") if missing[v] else tokens.astype(np.float32)


def _caption_tokens(world: _World, latents: np.ndarray, proj: np.ndarray,
                    rng: np.random.Generator) -> list[np.ndarray]:
    low, high = world.spec.caption_tokens
    out = []
    for latent in latents:
        count = int(rng.integers(low, high + 1))
        words = latent + 0.8 * rng.standard_normal((count, latent.shape[0]), dtype=np.float32)
        out.append((words @ proj).astype(np.float32))
    return out


def _text_items(world: _World) -> Iterator[tuple[str, Any]]:
    proj = world.projection("text", world.spec.text_dim)
    for v, vid in enumerate(world.video_ids):
        rng = world.rng("captions", v)
        latents = world.caption_latents(v, rng)
        yield vid, _caption_tokens(world, latents, proj, rng)


def _raw_captions(world: _World) -> dict[str, list[list[str]]]:
    low, high = world.spec.caption_tokens
    rng = world.rng("raw")
    return {vid: [[f"topic{world.topic[v]}word{int(w)}" for w in
                   rng.integers(0, 30, int(rng.integers(low, high + 1)))]
                  for _ in range(int(world.num_captions[v]))]
            for v, vid in enumerate(world.video_ids)}


def _teacher_items(world: _World, teacher: int) -> Iterator[tuple[str, Any]]:
    spec = world.spec
    projections = {m: world.projection(f"teacher{teacher}-{m}", spec.teacher_dim)
                   for m in spec.teacher_modalities}
    for v, vid in enumerate(world.video_ids):
        rng = world.rng("captions", v)
        latents = world.caption_latents(v, rng)
        noise = world.rng("teacher", teacher, v)
        video = {m: (world.latent[v] @ p + 0.2 * noise.standard_normal(spec.teacher_dim))
                 .astype(np.float32) for m, p in projections.items()}
        text = {m: (latents @ p).astype(np.float32) for m, p in projections.items()}
        yield vid, {"vid_embds": video, "text_embds": text}


def _write_expert_store(path: Path, items: Iterator[tuple[str, Any]], width: int) -> None:
    keys, rows, missing = [], [], set()
    for vid, value in items:
        keys.append(vid)
        if isinstance(value, float):
            missing.add(vid)
            rows.append(np.full(width, np.nan, np.float16))
        else:
            rows.append(value.astype(np.float16))
    write_expert_store(path, {"keys": keys, "dim": width, "store_dtype": np.float16,
                              "store": np.stack(rows), "keymap": {k: i for i, k in enumerate(keys)},
                              "missing": missing})


_LAYOUT_FILE = "a file of the dataset layout"
_TEXT_FILE = "config key experts.text_feat"
_TEACHER_FILE = "config key distil_params.teachers (below distil_params.base_path)"


def _expert_what(name: str) -> str:
    return f"file of expert {name!r} (experts.modalities, data_loader.args.feat_aggregation)"


def _teacher_path(spec: SynthSpec, teacher: int) -> PurePosixPath:
    return PurePosixPath(spec.teacher_folder, spec.teacher_files[teacher])


def _refuse_escapes(world: _World, target: _Target, layout: layouts.DatasetLayout,
                    aggregation: dict[str, dict[str, Any]]) -> None:
    """Resolve every file's target before the first is written, so a path that leads
    outside `out` (a config value, a symlink already there) leaves nothing half-written."""
    spec = world.spec
    planned = [(path, _TEXT_FILE) for path in _text_files(world, layout)]
    planned += [(_teacher_path(spec, t), _TEACHER_FILE) for t in range(len(spec.teacher_files))]
    planned += [(path, _expert_what(name)) for name in spec.modalities
                for paths in _expert_files(spec, layout, name, aggregation) for path in paths]
    planned += [(name, _LAYOUT_FILE) for name in (
        layout.raw_captions, *_split_members(world, layout),
        *layout.caption_index_files.values(), *layout.extra_files)]
    for path, what in planned:
        target(path, what)


def _write_split_lists(world: _World, target: _Target, layout: layouts.DatasetLayout) -> None:
    suffix = ".mp4" if layout.strip_list_suffix else ""
    for name, chosen in _split_members(world, layout).items():
        lines = [f"{world.video_ids[i]}{suffix}" for i in chosen]
        target(name, _LAYOUT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_extras(world: _World, target: _Target, layout: layouts.DatasetLayout) -> None:
    for split, name in layout.caption_index_files.items():
        eval_list = layouts.read_split_list(target(layout.splits[split][1], _LAYOUT_FILE),
                                            layout, split)
        rng = world.rng("caption-index")
        index = {vid: int(rng.integers(0, world.num_captions[world.video_ids.index(vid)]))
                 for vid in eval_list}
        write_pickle(target(name, _LAYOUT_FILE), index)
    if "dict_youtube_mapping.pkl" in layout.extra_files:
        write_pickle(target("dict_youtube_mapping.pkl", _LAYOUT_FILE), _youtube_names(world))


def feat_aggregation(spec: SynthSpec) -> dict[str, dict[str, Any]]:
    """The `feat_aggregation` config entries that name and size the files `spec` writes."""
    entries: dict[str, dict[str, Any]] = {}
    for name, width in spec.visual_dims.items():
        entries[name] = {**VISUAL_AGGREGATION.get(name, {}), "temporal": "avg", "type": "embed",
                         "aggregate": "concat", "aggregate-axis": 1,
                         "feat_dims": {"embed": width, "logits": 400}}
    for name in spec.token_experts or ():
        entries[name] = {"model": name, "flaky": True, "temporal": "vlad", "type": "embed",
                         "binarise": False, "feat_dims": {"embed": TOKEN_DIMS[name]}}
    return {**entries, **{name: dict(entry) for name, entry in spec.aggregation.items()
                          if name in entries}}


def _split_members(world: _World, layout: layouts.DatasetLayout) -> dict[str, list[int]]:
    """The videos (positions) of every split list, as `_write_split_lists` writes them."""
    shuffled = list(world.rng("splits").permutation(len(world.video_ids)))
    names = {name for pair in layout.splits.values() for name in pair}
    fractions = DATASETS[layout.name].synth.split_fractions
    members = {}
    for name in sorted(names):
        low, high = fractions[name]
        members[name] = shuffled[int(low * len(shuffled)): int(high * len(shuffled))]
    return members


def _text_files(world: _World, layout: layouts.DatasetLayout) -> Mapping[str, set[int] | None]:
    """Each text feature file to write and its videos (None: all of them).

    A text model stored per split (`split_text_feats`) has its first file hold the split's
    training videos and its last the split's evaluation videos, as the published ones do.
    """
    spec = world.spec
    if spec.text_feat not in layout.split_text_feats:
        (path,) = layouts.text_feat_paths(layout, spec.text_feat, "")
        return {path: None}
    members = _split_members(world, layout)
    files: dict[str, set[int]] = {}
    for split in spec.splits or tuple(layout.split_text_feats[spec.text_feat]):
        paths = layouts.text_feat_paths(layout, spec.text_feat, split)
        for path, video_list in zip((paths[0], paths[-1]), layout.splits[split]):
            files.setdefault(path, set()).update(members[video_list])
    return dict(files)


def _youtube_names(world: _World) -> dict[str, str]:
    return {vid: f"yt{i:07d}_{i % 97}_{i % 89}" for i, vid in enumerate(world.video_ids)}


def _write_text(world: _World, target: _Target, layout: layouts.DatasetLayout) -> None:
    """The caption features, in one file or in the per-split files of the text model."""
    spec = world.spec
    names = (_youtube_names(world) if spec.text_feat in layout.youtube_keyed_text_feats
             else {vid: vid for vid in world.video_ids})
    for path, videos in _text_files(world, layout).items():
        kept = None if videos is None else {world.video_ids[v] for v in videos}
        write_dict_pickle(target(path, _TEXT_FILE),
                          ((names[vid], value) for vid, value in _text_items(world)
                                        if kept is None or vid in kept))


def _expert_files(spec: SynthSpec, layout: layouts.DatasetLayout, name: str,
                  aggregation: dict[str, dict[str, Any]]) -> list[tuple[str, ...]]:
    """The file groups of an expert (one group per split that reads its own files).

    Without `spec.splits`, an expert only some splits have (MSRVTT `miech`'s antoine-rgb)
    is written for those.
    """
    groups, refusals = [], []
    for split in spec.splits or tuple(layout.splits):
        try:
            groups.append(layouts.expert_paths(layout, name, aggregation, split))
        except DataError as err:
            refusals.append(err)
    if refusals and (spec.splits or not groups):
        raise refusals[0]
    return list(dict.fromkeys(groups))


def _write_expert(world: _World, target: _Target, name: str, paths: tuple[str, ...]) -> None:
    spec = world.spec
    what = _expert_what(name)
    if name not in spec.visual_dims:
        write_dict_pickle(target(paths[0], what), _token_items(world, name))
        return
    width = spec.visual_dims[name] // len(paths)
    for part, relative in enumerate(paths):
        tag = name if part == 0 else f"{name}#{part}"
        items = _fixed_items(world, tag, width)
        path = target(relative, what)
        if name == spec.expert_store and len(paths) == 1:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_expert_store(path, items, width)
        else:
            write_dict_pickle(path, items)


def write_synthetic(spec: SynthSpec, out: Path) -> Path:
    """Write a dataset of `spec` under `out` (the data_dir); returns the feature folder."""
    spec.check()
    layout = layouts.get_layout(spec.dataset)
    target = _Target(Path(out), spec.root_feat_folder)
    target(".", "config key data_loader.args.root_feat_folder").mkdir(parents=True,
                                                                     exist_ok=True)
    root = Path(out) / spec.root_feat_folder
    world = _World(spec)
    aggregation = feat_aggregation(spec)
    _refuse_escapes(world, target, layout, aggregation)
    jobs = [(name, "expert") for name in spec.modalities] + [("text", "captions")]
    jobs += [(str(t), "teacher") for t in range(len(spec.teacher_files))]
    for name, kind in tqdm(jobs, desc=f"synth {spec.dataset}", unit="file", leave=False):
        if kind == "teacher":
            write_dict_pickle(target(_teacher_path(spec, int(name)), _TEACHER_FILE),
                              _teacher_items(world, int(name)))
        elif kind == "captions":
            _write_text(world, target, layout)
        else:
            for paths in _expert_files(spec, layout, name, aggregation):
                _write_expert(world, target, name, paths)
    write_pickle(target(layout.raw_captions, _LAYOUT_FILE), _raw_captions(world))
    _write_split_lists(world, target, layout)
    _write_extras(world, target, layout)
    meta = {**asdict(spec), "num_captions": {v: int(n) for v, n in
                                             zip(world.video_ids, world.num_captions)}}
    contained(out, "dataset_meta.json", "synth's dataset_meta.json").write_text(
        json.dumps(meta, indent=1), encoding="utf-8")
    log.info("wrote synthetic %s (%d videos) to %s", spec.dataset, spec.videos, out)
    return root


def example_config(spec: SynthSpec, data_dir: Path | str, split_name: str | None = None,
                   max_text_tokens: int = 12) -> dict[str, Any]:
    """A minimal config whose data_loader, experts and arch keys fit a synthetic dataset."""
    layout = layouts.get_layout(spec.dataset)
    split = split_name or next(iter(layout.splits))
    fused = DATASETS[spec.dataset].synth.fuse_captions
    max_tokens = {"text": max_text_tokens, **{name: min(8, spec.max_expert_tokens)
                                              for name in spec.token_experts or ()}}
    return {
        "experts": {"modalities": spec.modalities, "text_feat": spec.text_feat,
                    "text_agg": "vlad", "ce_shared_dim": spec.teacher_dim, "face_dim": 512,
                    "drop_feats": ""},
        "arch": {"type": "CENet", "args": {"use_ce": "pairwise",
                                            "vlad_clusters": {"text": 3, "audio": 2, "speech": 2},
                                            "ghost_clusters": {"text": 1}}},
        "data_loader": {"args": {
            "dataset_name": spec.dataset, "data_dir": str(data_dir),
            "root_feat_folder": spec.root_feat_folder, "split_name": split,
            "feat_aggregation": feat_aggregation(spec), "max_tokens": max_tokens,
            "fuse_captions": fused,
            "num_test_captions": 1 if fused else spec.captions_per_video}},
        "distil_loss": False,
        "distil_params": {"base_path": f"{spec.teacher_folder}/",
                          "teachers": list(spec.teacher_files)},
    }
