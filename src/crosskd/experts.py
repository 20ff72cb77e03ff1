"""What every expert and text feature is made of: widths, and how a temporal aggregation is
turned into one vector per video. The one place the model, the data loader, the synthetic
data and the config layer all read these facts from (it imports nothing of theirs).

Two registries are extended here:

- `TOKEN_DIMS`: experts stored as token sequences, with their token width, in the order
  the original registers their pooling layers (this fixes the state-dict order);
- `POOLINGS`: temporal aggregations that pool a token sequence inside the model ("vlad":
  NetVLAD). Every other aggregation is a fixed statistic (`FIXED_STATISTICS`), precomputed
  per video and concatenated when several are joined by "-" ("avg-max").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crosskd.errors import ConfigError

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

#: the text features of an own dataset (crosskd extract) are named `<encoder>-<width>d`, e.g.
#: `hashed-words-300d`, `gpt2-768d`: the name says what made them and how wide they are.
_NAMED_WIDTH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*-([1-9][0-9]{0,5})d")


def named_text_feat(encoder: str, width: int) -> str:
    """The `experts.text_feat` name of own text features: what made them, then their width."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", encoder).strip("-._") or "text"
    return f"{safe}-{int(width)}d"


def text_feature_width(text_feat: str) -> int | None:
    """Token width of a text feature model: a published one's, or the width an own name
    (`named_text_feat`) carries; None for a name that is neither."""
    if text_feat in TEXT_FEATURE_DIMS:
        return TEXT_FEATURE_DIMS[text_feat]
    named = _NAMED_WIDTH.fullmatch(text_feat)
    return int(named.group(1)) if named else None


#: token width of the experts stored as token sequences, in pooling-layer order.
TOKEN_DIMS: dict[str, int] = {"ocr": 300, "audio": 128, "speech": 300}

#: experts whose width is a key of the config's `experts` section, not `feat_dims`.
WIDTH_KEYS: dict[str, str] = {"face": "face_dim"}

#: per-video statistics a fixed-width expert may be stored as.
FIXED_STATISTICS = ("avg", "max", "ent", "std")


@dataclass(frozen=True)
class Pooling:
    """A temporal aggregation done by the model: a token sequence pooled to one vector.

    `size_key` is the `arch.args` section sizing it per expert (NetVLAD's clusters); the
    pooled width is the token width times that size.
    """

    name: str
    size_key: str

    def pooled_width(self, token_width: int, size: int) -> int:
        return token_width * size


VLAD = Pooling("vlad", "vlad_clusters")
POOLINGS: dict[str, Pooling] = {pooling.name: pooling for pooling in (VLAD,)}


@dataclass(frozen=True)
class Temporal:
    """A parsed `temporal` value: a model-side pooling, or the fixed statistics stored."""

    pooling: Pooling | None
    statistics: tuple[str, ...] = ()

    @property
    def variable_length(self) -> bool:
        """True when the expert is stored as token sequences (pooled by the model)."""
        return self.pooling is not None


def temporal_aggregation(temporal: str, key: str) -> Temporal:
    """Parse the `temporal` of an expert; `key` names it in the error."""
    if temporal in POOLINGS:
        return Temporal(POOLINGS[temporal])
    statistics = tuple(temporal.split("-"))
    if temporal and all(part in FIXED_STATISTICS for part in statistics):
        return Temporal(None, statistics)
    known = " or ".join(POOLINGS)
    raise ConfigError(f"config key {key}: unknown temporal aggregation {temporal!r}; use "
                      f"{known} or {'/'.join(FIXED_STATISTICS)} (joined by -)")


@dataclass(frozen=True)
class ModelDims:
    """Widths the network and the data are built with.

    `expert_dims[m] = (pooled input width, output width)`; `raw_input_dims[m]` is the width
    of what the data holds (a token for pooled experts); `pooled[m] = (pooling, size)` for
    the experts the model pools, in `TOKEN_DIMS` order.
    """

    modalities: tuple[str, ...]
    expert_dims: dict[str, tuple[int, int]]
    raw_input_dims: dict[str, int]
    text_dim: int
    pooled: dict[str, tuple[str, int]]
