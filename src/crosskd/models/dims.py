"""Input and output widths of every expert and of the text features that a config implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

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


def ordered_modalities(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The experts a config uses, in the sorted order the model and checkpoints rely on."""
    experts = config.get("experts") or {}
    if "modalities" not in experts:
        raise UserError("config key experts.modalities is missing: list the video experts to use")
    dropped = {name for name in (experts.get("drop_feats") or "").split(",") if name}
    return tuple(sorted(m for m in experts["modalities"] if m not in dropped))


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
    args = config["data_loader"]["args"]
    aggregation = (args.get("feat_aggregation") or {}).get(name)
    if aggregation is None:
        raise UserError(f"config key data_loader.args.feat_aggregation.{name} is missing: "
                        "every expert in experts.modalities needs an entry")
    temporal = aggregation.get("temporal", "")
    if name == "face":
        face_dim = config["experts"]["face_dim"]
        return face_dim, face_dim, False
    if temporal == "vlad":
        if name not in VLAD_TOKEN_DIMS:
            raise UserError(f"expert {name!r}: NetVLAD pooling is only supported for "
                            f"{sorted(VLAD_TOKEN_DIMS)}")
        clusters = config["arch"]["args"]["vlad_clusters"][name]
        return VLAD_TOKEN_DIMS[name] * clusters, VLAD_TOKEN_DIMS[name], True
    try:
        width = aggregation["feat_dims"][aggregation["type"]]
    except KeyError:
        raise UserError(f"config key data_loader.args.feat_aggregation.{name}: needs `type` and "
                        "`feat_dims` giving the feature width") from None
    # "avg-max" style aggregations concatenate one vector per statistic
    width *= len(temporal.split("-"))
    return width, width, False


def model_dims(config: Mapping[str, Any]) -> ModelDims:
    """Compute the widths of a config's experts and text, as the original's compute_dims does."""
    arch_args = config["arch"]["args"]
    shared_dim = config["experts"].get("ce_shared_dim")
    project_to_shared = bool(arch_args.get("use_ce") or arch_args.get("mimic_ce_dims"))
    modalities = ordered_modalities(config)
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
    text_dim = text_feature_dim(config["experts"]["text_feat"])
    return ModelDims(modalities, expert_dims, raw_input_dims, text_dim, tuple(vlad_experts))
