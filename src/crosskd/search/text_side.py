"""The model's text side, kept in the index: caption features (or free text, through the
dataset's recorded text encoder) -> a Query, embedded exactly as evaluation embeds captions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from crosskd.config import model_spec
from crosskd.errors import UserError
from crosskd.models import CENet
from crosskd.models.ce_net import build_caption_embedder
from crosskd.models.embeddings import TextEmbedding
from crosskd.search.query import Query

WEIGHTS = "text_model.pt"
SETTINGS = "text.json"
#: longest free-text query accepted (characters)
MAX_QUERY_CHARS = 1000
NO_ENCODER = ("free-text queries need the dataset's text encoder, and this index's dataset "
              "records none that is available here (published features); query with "
              "--caption VIDEO_ID:INDEX or --features FILE.npy (caption features "
              "[tokens, {dim}])")


class TextSide:
    """A trained model's caption side (crosskd.models.ce_net.CaptionEmbedder), the caption
    length it was trained with, and the dataset's text encoder for free text."""

    def __init__(self, config: Mapping[str, Any], state: Mapping[str, torch.Tensor],
                 max_tokens: int, encoder_record: Mapping[str, Any] | None = None) -> None:
        """`state` is the caption side's state dict (the model's keys, loaded strictly)."""
        self.config = dict(config)
        self.state = dict(state)
        self.max_tokens = int(max_tokens)
        self.encoder_record = dict(encoder_record) if encoder_record else None
        self.embedder = build_caption_embedder(model_spec(self.config), self.state)
        self.text_dim = int(self.embedder.text_dim)
        self._encoder = None

    @classmethod
    def of_model(cls, model: CENet, config: Mapping[str, Any], max_tokens: int,
                 encoder_record: Mapping[str, Any] | None = None) -> "TextSide":
        """The text side of `model` (of `config`), its weights copied to host memory."""
        state = {key: value.detach().to("cpu", copy=True)
                 for key, value in model.caption_embedder().state_dict().items()}
        return cls(config, state, max_tokens, encoder_record)

    @property
    def free_text(self) -> bool:
        """Whether a text encoder is recorded and its code is installed here."""
        return (self.encoder_record is not None
                and importlib.util.find_spec("crosskd.extract") is not None)

    def embed_features(self, features: np.ndarray | torch.Tensor, label: str = "features"
                       ) -> Query:
        """A Query from one caption's token features `[tokens, text_dim]`."""
        embedded = self.embed_many([features])
        return Query(embedded.embeddings[0].numpy(), embedded.weights[0].numpy(), label)

    def embed_many(self, captions: Sequence[np.ndarray | torch.Tensor]) -> TextEmbedding:
        """Captions' token features (each `[tokens, text_dim]`), truncated and zero-padded to
        the model's `max_tokens` as evaluation pads them, embedded at once."""
        padded = torch.zeros(len(captions), self.max_tokens, self.text_dim)
        for row, features in enumerate(captions):
            tokens = torch.as_tensor(np.asarray(features), dtype=torch.float32)
            if tokens.dim() != 2 or tokens.shape[1] != self.text_dim or not len(tokens):
                raise UserError(f"caption features must be [tokens, {self.text_dim}] (one "
                                f"caption), not {list(tokens.shape)}")
            if not torch.isfinite(tokens).all():
                raise UserError("caption features hold NaN or infinite values")
            kept = tokens[:self.max_tokens]
            padded[row, :len(kept)] = kept
        with torch.inference_mode():
            return self.embedder(padded)

    def embed_text(self, text: str) -> Query:
        """A Query from free text, through the dataset's text encoder."""
        text = text.strip()
        if not text:
            raise UserError("the query is empty")
        if len(text) > MAX_QUERY_CHARS:
            raise UserError(f"the query is {len(text)} characters; at most {MAX_QUERY_CHARS}")
        if not self.free_text:
            raise UserError(NO_ENCODER.format(dim=self.text_dim))
        (features,) = self.encode([text])
        return self.embed_features(features, text)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """Token features of each text by the dataset's recorded text encoder (built once);
        the caller checks `free_text` first."""
        if self._encoder is None:
            from crosskd.extract.text_encoders import text_encoder_from_record
            self._encoder = text_encoder_from_record(self.encoder_record)
        return self._encoder.encode(texts)

    def save(self, root: Path) -> None:
        torch.save(self.state, root / WEIGHTS)
        settings = {"config": self.config, "max_tokens": self.max_tokens,
                    "text_encoder": self.encoder_record}
        (root / SETTINGS).write_text(json.dumps(settings) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, root: Path) -> "TextSide | None":
        if not (root / WEIGHTS).is_file():
            return None
        settings = json.loads((root / SETTINGS).read_text(encoding="utf-8"))
        state = torch.load(root / WEIGHTS, map_location="cpu", weights_only=True)
        return cls(settings["config"], state, settings["max_tokens"], settings["text_encoder"])
