"""The model part of a config: expert widths (the original's compute_dims) and arch.args.

`ModelKeys` declares the keys it reads (crosskd.config.keys); the data part reads the
experts' keys from it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from crosskd import experts
from crosskd.config.keys import setting
from crosskd.config.paths import format_path
from crosskd.config.reading import read_part
from crosskd.config.values import sized
from crosskd.errors import ConfigError, UserError
from crosskd.experts import ModelDims
from crosskd.models.spec import ModelSpec

SUPPORTED_USE_CE = ("pairwise", "")


def ablation(published: Any) -> Any:
    """An `arch.args` switch of the original's ablations: accepted only at the value every
    published config gives it (an empty string also as any other empty value)."""
    def check(value: Any, key: str) -> Any:
        if value != published and not (isinstance(published, str) and not value):
            raise UserError(f"config key {key} = {value!r} is not supported (an ablation of "
                            f"the original code); set it to {published!r}")
        return value
    return setting(published, convert=check)


@dataclass(frozen=True)
class Experts:
    """`experts`: the video experts a model takes, its text model and the widths set here."""

    modalities: list[str] = setting(missing="list the video experts to use")
    text_feat: str
    drop_feats: str | None = ""
    ce_shared_dim: int | None = None
    #: the width of the `face` expert (crosskd.experts.WIDTH_KEYS)
    face_dim: int | None = setting(None, json=int)


@dataclass(frozen=True)
class Aggregation:
    """An expert's `data_loader.args.feat_aggregation` entry: its pooling over time, its
    width, and the values that name its files (crosskd.data.layouts reads the entry as
    written)."""

    temporal: str = ""
    type: str | None = setting(None, json=str)
    feat_dims: dict[str, int] | None = setting(None, json=dict[str, int])
    fps: int | str | None = None
    pixel_dim: int | str | None = None
    stride: int | str | None = None
    offset: int | str | None = None
    inner_stride: int | str | None = None
    num_segments: int | str | None = None
    #: refused when switched on for an expert in use (crosskd.config.data)
    binarise: Any = None


@dataclass(frozen=True)
class ArchArgs:
    """`arch.args`; `vlad_clusters` sizes NetVLAD per expert (the `size_key` of its Pooling)."""

    vlad_clusters: dict[str, int | None]
    #: left out: gated (CE) experts that keep their own widths, as the original's compute_dims
    use_ce: str | None = setting(None, json=str)
    num_g_layers: int = 3
    ghost_clusters: dict[str, int] | None = None
    use_mish: Any = ablation(1)
    use_bn_reason: Any = ablation(1)
    num_h_layers: Any = ablation(0)
    include_self: Any = ablation(1)
    l2renorm: Any = ablation(False)
    keep_missing_modalities: Any = ablation(False)
    test_caption_mode: Any = ablation("indep")
    randomise_feats: Any = ablation("")
    mimic_ce_dims: Any = ablation(0)


def _check_arch(arch: Arch) -> None:
    """Refuse settings of the original no published config uses, naming the key and the fix."""
    if arch.type != "CENet":
        raise UserError(f"config key arch.type = {arch.type!r}: only CENet is supported")
    if arch.args.use_ce not in (None, *SUPPORTED_USE_CE):
        raise UserError(f"config key arch.args.use_ce = {arch.args.use_ce!r} is not supported; "
                        "use \"pairwise\" (CE) or \"\" (MoEE)")
    if arch.args.num_g_layers < 1:
        raise UserError("config key arch.args.num_g_layers must be at least 1")
    text_clusters = arch.args.vlad_clusters.get("text")
    if not text_clusters or text_clusters < 1:
        raise UserError("config key arch.args.vlad_clusters.text must be a positive number of "
                        "NetVLAD clusters for the caption tokens")
    if _ghost_clusters(arch.args) < 0:
        raise ConfigError("config key arch.args.ghost_clusters.text must be an integer >= 0")


def _ghost_clusters(args: ArchArgs) -> int:
    return (args.ghost_clusters or {}).get("text", 0)


@dataclass(frozen=True)
class Arch:
    """`arch`: the network (only CENet) and its settings, refused when no published config
    has them."""

    args: ArchArgs = setting(json=ArchArgs | None)
    type: str | None = "CENet"

    def __post_init__(self) -> None:
        _check_arch(self)


@dataclass(frozen=True)
class ModelKeys:
    """The keys the model part reads: the architecture (checked first), the experts and
    their entries."""

    arch: Arch = setting(json=Arch | None)
    experts: Experts = setting(json=Experts | None)
    feat_aggregation: dict[str, Aggregation] | None = setting(
        None, key="data_loader.args.feat_aggregation")


def model_keys(config: Mapping[str, Any]) -> ModelKeys:
    """The model part's keys of a config, typed."""
    return read_part(ModelKeys, config)


def ordered_modalities(keys: ModelKeys) -> tuple[str, ...]:
    """The experts a config uses, in the sorted order the model and checkpoints rely on."""
    modalities = keys.experts.modalities
    if not all(isinstance(name, str) for name in modalities):
        raise ConfigError(f"config key experts.modalities must list expert names (strings), "
                          f"got {modalities!r:.60}")
    dropped = {name for name in (keys.experts.drop_feats or "").split(",") if name}
    kept = tuple(sorted(m for m in modalities if m not in dropped))
    if not kept:
        raise ConfigError("config key experts.modalities lists no expert (after "
                          "experts.drop_feats): name at least one video expert")
    return kept


def text_feature_dim(text_feat: str) -> int:
    """Token width of a text feature model, e.g. 1600 for `gpt2-xl-finetune`, 300 for an own
    dataset's `hashed-words-300d`."""
    width = experts.text_feature_width(text_feat)
    if width is None:
        known = ", ".join(sorted(experts.TEXT_FEATURE_DIMS))
        raise UserError(f"config key experts.text_feat: unknown text model {text_feat!r}; "
                        f"use one of {known}, or NAME-<width>d for own text features")
    return sized(width, "experts.text_feat")


def aggregation_key(name: str) -> str:
    """The key path of an expert's `feat_aggregation` entry (its name quoted if dotted)."""
    return format_path(("data_loader", "args", "feat_aggregation", name))


def expert_aggregation(keys: ModelKeys, name: str) -> Aggregation:
    """The `feat_aggregation` entry of an expert, which every used expert needs."""
    entry = (keys.feat_aggregation or {}).get(name)
    if entry is None:
        raise UserError(f"config key {aggregation_key(name)} is missing: "
                        "every expert in experts.modalities needs an entry")
    return entry


def expert_temporal(keys: ModelKeys, name: str) -> experts.Temporal:
    """How an expert is aggregated over time (a model pooling or fixed statistics)."""
    return experts.temporal_aggregation(expert_aggregation(keys, name).temporal,
                                        f"{aggregation_key(name)}.temporal")


def _given(value: int | None, key: str) -> int:
    """A width or count the model needs, named by `key` when it is not given."""
    if value is None:
        raise ConfigError(f"config key {key} is missing")
    return sized(value, key)


def _width_source(keys: ModelKeys, name: str) -> tuple[str, int | None]:
    """(the key giving it, its value) of a fixed-vector expert's width: `feat_dims.<type>` of
    its entry, or an `experts.*_dim`."""
    if name in experts.WIDTH_KEYS:
        field = experts.WIDTH_KEYS[name]
        return f"experts.{field}", getattr(keys.experts, field)
    entry = expert_aggregation(keys, name)
    if entry.type is None or entry.feat_dims is None:
        raise UserError(f"config key {aggregation_key(name)}: needs `type` and `feat_dims` "
                        "giving the feature width")
    key = format_path(("data_loader", "args", "feat_aggregation", name, "feat_dims", entry.type))
    return key, entry.feat_dims.get(entry.type)


def _fixed_width(keys: ModelKeys, name: str) -> int:
    key, width = _width_source(keys, name)
    return _given(width, key)


def width_key(config: Mapping[str, Any], name: str) -> str:
    """The key whose value is a fixed-vector expert's width, for messages about that width."""
    return _width_source(model_keys(config), name)[0]


def _expert_input(keys: ModelKeys, name: str) -> tuple[int, int, tuple[str, int] | None]:
    """(pooled width, raw width, (pooling, size) when the model pools it) of one expert."""
    expert_aggregation(keys, name)
    if name in experts.WIDTH_KEYS:
        width = _fixed_width(keys, name)
        return width, width, None
    temporal = expert_temporal(keys, name)
    if temporal.pooling is not None:
        if name not in experts.TOKEN_DIMS:
            raise UserError(f"expert {name!r}: {temporal.pooling.name} pooling is only "
                            f"supported for {sorted(experts.TOKEN_DIMS)}")
        sizes = getattr(keys.arch.args, temporal.pooling.size_key)
        size = _given(sizes.get(name), format_path(("arch", "args", temporal.pooling.size_key,
                                                    name)))
        token = experts.TOKEN_DIMS[name]
        return (temporal.pooling.pooled_width(token, size), token,
                (temporal.pooling.name, size))
    # "avg-max" style aggregations concatenate one vector per statistic
    width = _fixed_width(keys, name) * len(temporal.statistics)
    return width, width, None


def dims_of(keys: ModelKeys) -> ModelDims:
    """The widths of the experts and the text, as the original's compute_dims has them."""
    project_to_shared = bool(keys.arch.args.use_ce)
    modalities = ordered_modalities(keys)
    shared_dim = keys.experts.ce_shared_dim
    if project_to_shared:
        shared_dim = _given(shared_dim, "experts.ce_shared_dim")
    expert_dims: dict[str, tuple[int, int]] = {}
    raw_input_dims: dict[str, int] = {}
    pooled: dict[str, tuple[str, int]] = {}
    for name in modalities:
        in_dim, raw_dim, pooling = _expert_input(keys, name)
        expert_dims[name] = (in_dim, shared_dim if project_to_shared else raw_dim)
        raw_input_dims[name] = raw_dim
        if pooling is not None:
            pooled[name] = pooling
    order = list(experts.TOKEN_DIMS)
    pooled = {name: pooled[name] for name in sorted(pooled, key=order.index)}
    text_dim = text_feature_dim(keys.experts.text_feat)
    return ModelDims(modalities, expert_dims, raw_input_dims, text_dim, pooled)


def model_dims(config: Mapping[str, Any]) -> ModelDims:
    """Compute the widths of a config's experts and text, as the original's compute_dims does."""
    return dims_of(model_keys(config))


def model_spec(config: Mapping[str, Any]) -> ModelSpec:
    """The typed model part of a (resolved) config."""
    keys = model_keys(config)
    return ModelSpec(
        dims=dims_of(keys),
        shared_dim=keys.experts.ce_shared_dim,
        text_clusters=keys.arch.args.vlad_clusters["text"],
        text_ghost_clusters=_ghost_clusters(keys.arch.args),
        collaborative=keys.arch.args.use_ce != "",
        num_g_layers=keys.arch.args.num_g_layers,
    )
