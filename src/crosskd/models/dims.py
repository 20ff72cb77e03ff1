"""Input and output widths of every expert and of the text features that a config implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from crosskd.config import ConfigError, require
from crosskd.errors import UserError

#: token width of each text feature model (`experts.text_feat`).
TEXT_FEATURE_DIMS: dict[str, int] = {
    "w2v": 300, "grovle": 300, "mt_grovle": 300, "hglmm_300d": 300, "hglmm_6kd": 6000,
    "howto100m_mil_nce": 512, "openai": 768, "openai-gpt": 768, "electra": 256,
    "gpt2": 768, "gpt2-medium": 1024, "gpt2-large": 1280, "gpt2-xl": 1600,
    "gpt2-xl-finetune": 1600, "bert-base-uncased": 768, "t5-small": 512, "t5-base": 768,
    "t5-large": 1024, "t5-3b": 1024, "t5-11b": 1024, "albert-base-v2": 768,
    "albert-large-v2": 1024, "albert-xlarge-v2": 2048, "ctrl": 1280, "roberta-base": 768,
    "roberta-large": 1024, "xlnet-base-cased": 768, "xlnet-large-cased": 1024,
    "transfo-xl-wt103": 1024,
}

#: token width of the experts that can be pooled with NetVLAD (temporal "vlad"), in the order
#: the original registers their pooling layers (this fixes the state-dict order).
VLAD_TOKEN_DIMS: dict[str, int] = {"ocr": 300, "audio": 128, "speech": 300}


@dataclass(frozen=True)
class ModelDims:
    """Widths the network is built with; `expert_dims[m] = (pooled input width, output width)`."""

    modalities: tuple[str, ...]
    expert_dims: dict[str, tuple[int, int]]
    raw_input_dims: dict[str, int]
    text_dim: int
    vlad_experts: tuple[str, ...]


def positive_int(config: Mapping[str, Any], dotted_key: str) -> int:
    """Read a width or count (a JSON integer > 0) from the config, naming the key if it is not."""
    value = require(config, dotted_key, int)
    if value < 1:
        raise ConfigError(f"config key {dotted_key} must be an integer > 0, got {value}")
    return value


def _setting(node: Mapping[str, Any], key: str, field: str, kind: type, default: Any = None
             ) -> Any:
    """`node[field]` checked against `kind`, for keys `require` cannot address (expert names
    hold dots); `key` is the dotted path of `node`, used in the message."""
    value = node.get(field, default)
    if value is None:
        raise ConfigError(f"config key {key}.{field} is missing")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"config key {key}.{field} must be {kind.__name__}, "
                          f"not {type(value).__name__} ({value!r:.60})")
    return value


def ordered_modalities(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The experts a config uses, in the sorted order the model and checkpoints rely on."""
    experts = require(config, "experts", (dict, type(None)), default=None) or {}
    if "modalities" not in experts:
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
    """Token width of a text feature model, e.g. 1600 for `gpt2-xl-finetune`."""
    try:
        return TEXT_FEATURE_DIMS[text_feat]
    except KeyError:
        known = ", ".join(sorted(TEXT_FEATURE_DIMS))
        raise UserError(f"config key experts.text_feat: unknown text model {text_feat!r}; "
                        f"use one of {known}") from None


def _expert_input(name: str, config: Mapping[str, Any]) -> tuple[int, int, bool]:
    """(pooled width, raw token width, pooled with NetVLAD?) of one expert."""
    aggregations = require(config, "data_loader.args.feat_aggregation", (dict, type(None)),
                           default=None) or {}
    aggregation = aggregations.get(name)
    key = f"data_loader.args.feat_aggregation.{name}"
    if aggregation is None:
        raise UserError(f"config key {key} is missing: "
                        "every expert in experts.modalities needs an entry")
    if not isinstance(aggregation, dict):
        raise ConfigError(f"config key {key} must be dict, not {type(aggregation).__name__}")
    temporal = _setting(aggregation, key, "temporal", str, default="")
    if name == "face":
        face_dim = positive_int(config, "experts.face_dim")
        return face_dim, face_dim, False
    if temporal == "vlad":
        if name not in VLAD_TOKEN_DIMS:
            raise UserError(f"expert {name!r}: NetVLAD pooling is only supported for "
                            f"{sorted(VLAD_TOKEN_DIMS)}")
        clusters = positive_int(config, f"arch.args.vlad_clusters.{name}")
        return VLAD_TOKEN_DIMS[name] * clusters, VLAD_TOKEN_DIMS[name], True
    if "type" not in aggregation or "feat_dims" not in aggregation:
        raise UserError(f"config key {key}: needs `type` and "
                        "`feat_dims` giving the feature width")
    feat_type = _setting(aggregation, key, "type", str)
    width = _setting(_setting(aggregation, key, "feat_dims", dict), f"{key}.feat_dims",
                     feat_type, int)
    if width < 1:
        raise ConfigError(f"config key {key}.feat_dims.{feat_type} must be an integer > 0, "
                          f"got {width}")
    # "avg-max" style aggregations concatenate one vector per statistic
    width *= len(temporal.split("-"))
    return width, width, False


def model_dims(config: Mapping[str, Any]) -> ModelDims:
    """Compute the widths of a config's experts and text, as the original's compute_dims does."""
    arch_args = require(config, "arch.args", (dict, type(None)), default=None) or {}
    project_to_shared = bool(arch_args.get("use_ce") or arch_args.get("mimic_ce_dims"))
    modalities = ordered_modalities(config)
    shared_dim = (positive_int(config, "experts.ce_shared_dim") if project_to_shared
                  else require(config, "experts.ce_shared_dim", (int, type(None)), default=None))
    expert_dims: dict[str, tuple[int, int]] = {}
    raw_input_dims: dict[str, int] = {}
    vlad_experts = []
    for name in modalities:
        in_dim, raw_dim, is_vlad = _expert_input(name, config)
        out_dim = shared_dim if project_to_shared else raw_dim
        expert_dims[name] = (in_dim, out_dim)
        raw_input_dims[name] = raw_dim
        if is_vlad:
            vlad_experts.append(name)
    vlad_experts.sort(key=list(VLAD_TOKEN_DIMS).index)
    text_dim = text_feature_dim(require(config, "experts.text_feat", str))
    return ModelDims(modalities, expert_dims, raw_input_dims, text_dim, tuple(vlad_experts))
