"""The model part of a config: expert widths (the original's compute_dims) and arch.args."""

from __future__ import annotations

from typing import Any, Mapping

from crosskd import experts
from crosskd.config.paths import format_path
from crosskd.config.values import positive_int, require, sized
from crosskd.errors import ConfigError, UserError
from crosskd.experts import ModelDims
from crosskd.models.spec import ModelSpec

#: arch.args values of every published config; other values were ablations we do not carry.
PUBLISHED_ARCH_ARGS: dict[str, Any] = {
    "use_mish": 1, "use_bn_reason": 1, "num_h_layers": 0, "include_self": 1,
    "l2renorm": False, "keep_missing_modalities": False, "test_caption_mode": "indep",
    "randomise_feats": "", "mimic_ce_dims": 0,
}
SUPPORTED_USE_CE = ("pairwise", "")


def ordered_modalities(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The experts a config uses, in the sorted order the model and checkpoints rely on."""
    section = require(config, "experts", (dict, type(None)), default=None) or {}
    if "modalities" not in section:
        raise UserError("config key experts.modalities is missing: list the video experts to use")
    modalities = require(config, "experts.modalities", list)
    if not all(isinstance(name, str) for name in modalities):
        raise ConfigError(f"config key experts.modalities must list expert names (strings), "
                          f"got {modalities!r:.60}")
    drop_feats = require(config, "experts.drop_feats", (str, type(None)), default="") or ""
    dropped = {name for name in drop_feats.split(",") if name}
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


def expert_aggregation(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The `feat_aggregation` entry of an expert, which every used expert needs."""
    aggregations = require(config, "data_loader.args.feat_aggregation", (dict, type(None)),
                           default=None) or {}
    if aggregations.get(name) is None:
        raise UserError(f"config key {aggregation_key(name)} is missing: "
                        "every expert in experts.modalities needs an entry")
    return aggregations[name]


def expert_temporal(config: Mapping[str, Any], name: str) -> experts.Temporal:
    """How an expert is aggregated over time (a model pooling or fixed statistics)."""
    key = f"{aggregation_key(name)}.temporal"
    return experts.temporal_aggregation(require(config, key, str, default=""), key)


def width_key(config: Mapping[str, Any], name: str) -> str:
    """The key whose value is a fixed-vector expert's width (`feat_dims.<type>`, or a
    `experts.*_dim`), for messages about that width."""
    if name in experts.WIDTH_KEYS:
        return f"experts.{experts.WIDTH_KEYS[name]}"
    entry = ("data_loader", "args", "feat_aggregation", name)
    feat_type = require(config, format_path((*entry, "type")), str, default=None)
    if feat_type is None or require(config, format_path((*entry, "feat_dims")), dict,
                                    default=None) is None:
        raise UserError(f"config key {format_path(entry)}: needs `type` and `feat_dims` "
                        "giving the feature width")
    return format_path((*entry, "feat_dims", feat_type))


def _expert_input(config: Mapping[str, Any], name: str) -> tuple[int, int, tuple[str, int] | None]:
    """(pooled width, raw width, (pooling, size) when the model pools it) of one expert."""
    expert_aggregation(config, name)
    if name in experts.WIDTH_KEYS:
        width = positive_int(config, f"experts.{experts.WIDTH_KEYS[name]}")
        return width, width, None
    temporal = expert_temporal(config, name)
    if temporal.pooling is not None:
        if name not in experts.TOKEN_DIMS:
            raise UserError(f"expert {name!r}: {temporal.pooling.name} pooling is only "
                            f"supported for {sorted(experts.TOKEN_DIMS)}")
        size = positive_int(config, format_path(("arch", "args", temporal.pooling.size_key,
                                                 name)))
        token = experts.TOKEN_DIMS[name]
        return (temporal.pooling.pooled_width(token, size), token,
                (temporal.pooling.name, size))
    key = width_key(config, name)
    width = sized(require(config, key, int), key)
    # "avg-max" style aggregations concatenate one vector per statistic
    width *= len(temporal.statistics)
    return width, width, None


def model_dims(config: Mapping[str, Any]) -> ModelDims:
    """Compute the widths of a config's experts and text, as the original's compute_dims does."""
    arch_args = require(config, "arch.args", (dict, type(None)), default=None) or {}
    project_to_shared = bool(arch_args.get("use_ce") or arch_args.get("mimic_ce_dims"))
    modalities = ordered_modalities(config)
    shared_dim = (positive_int(config, "experts.ce_shared_dim") if project_to_shared
                  else require(config, "experts.ce_shared_dim", (int, type(None)), default=None))
    expert_dims: dict[str, tuple[int, int]] = {}
    raw_input_dims: dict[str, int] = {}
    pooled: dict[str, tuple[str, int]] = {}
    for name in modalities:
        in_dim, raw_dim, pooling = _expert_input(config, name)
        expert_dims[name] = (in_dim, shared_dim if project_to_shared else raw_dim)
        raw_input_dims[name] = raw_dim
        if pooling is not None:
            pooled[name] = pooling
    order = list(experts.TOKEN_DIMS)
    pooled = {name: pooled[name] for name in sorted(pooled, key=order.index)}
    text_dim = text_feature_dim(require(config, "experts.text_feat", str))
    return ModelDims(modalities, expert_dims, raw_input_dims, text_dim, pooled)


def _check_arch_args(config: Mapping[str, Any]) -> None:
    """Refuse ablation settings no published config uses, naming the key and the fix."""
    arch = require(config, "arch", (dict, type(None)), default=None) or {}
    if require(config, "arch.type", (str, type(None)), default="CENet") != "CENet":
        raise UserError(f"config key arch.type = {arch.get('type')!r}: only CENet is supported")
    args = require(config, "arch.args", (dict, type(None)), default=None) or {}
    use_ce = require(config, "arch.args.use_ce", str, default="pairwise")
    if use_ce not in SUPPORTED_USE_CE:
        raise UserError(f"config key arch.args.use_ce = {use_ce!r} is not supported; "
                        "use \"pairwise\" (CE) or \"\" (MoEE)")
    for key, published in PUBLISHED_ARCH_ARGS.items():
        value = args.get(key, published)
        if value != published and not (isinstance(published, str) and not value):
            raise UserError(f"config key arch.args.{key} = {value!r} is not supported (an "
                            f"ablation of the original code); set it to {published!r}")
    if require(config, "arch.args.num_g_layers", int, default=3) < 1:
        raise UserError("config key arch.args.num_g_layers must be at least 1")
    require(config, "arch.args.vlad_clusters", dict)
    text_clusters = require(config, "arch.args.vlad_clusters.text", (int, type(None)),
                            default=None)
    if not text_clusters or text_clusters < 1:
        raise UserError("config key arch.args.vlad_clusters.text must be a positive number of "
                        "NetVLAD clusters for the caption tokens")
    require(config, "arch.args.ghost_clusters", (dict, type(None)), default=None)
    if require(config, "arch.args.ghost_clusters.text", int, default=0) < 0:
        raise ConfigError("config key arch.args.ghost_clusters.text must be an integer >= 0")


def model_spec(config: Mapping[str, Any]) -> ModelSpec:
    """The typed model part of a (resolved) config."""
    _check_arch_args(config)
    return ModelSpec(
        dims=model_dims(config),
        shared_dim=require(config, "experts.ce_shared_dim", (int, type(None)), default=None),
        text_clusters=require(config, "arch.args.vlad_clusters.text", int),
        text_ghost_clusters=require(config, "arch.args.ghost_clusters.text", int, default=0),
        collaborative=bool(require(config, "arch.args.use_ce", str, default="pairwise")),
        num_g_layers=require(config, "arch.args.num_g_layers", int, default=3),
    )
