"""Captions through any transformers model: the last hidden state of every token (TeachText
used GPT-2's), from the hub cache or a local `save_pretrained` folder."""

from __future__ import annotations

from typing import Any

import numpy as np

from crosskd.errors import UserError
from crosskd.experts import named_text_feat
from crosskd.extract.encoder import TextEncoder
from crosskd.extract.hub import from_pretrained, import_transformers, weights_tag
from crosskd.extract.requirements import HubModel, Requirement

_BATCH = 32


class TransformersTextEncoder(TextEncoder):
    """Token features = `AutoModel(...).last_hidden_state`, captions cut at `max_tokens`."""

    name = "transformers"
    default_model, default_max_tokens = "gpt2", 64
    #: files it reads from the hub besides the config and the weights.
    hub_files = ("tokenizer_config.json",)

    def __init__(self, model: str = default_model, weights: str | None = None,
                 max_tokens: int = default_max_tokens, device: str = "cpu") -> None:
        transformers = import_transformers("text encoder transformers")
        what, option = f"text encoder transformers (model={model})", "--text-encoder transformers:weights"
        self.model_name, self.weights_dir, self.max_tokens = model, weights, int(max_tokens)
        self.device = device
        self.tokenizer = from_pretrained(transformers.AutoTokenizer, model, weights, what, option)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.padding_side = "right"
        self.model = from_pretrained(transformers.AutoModel, model, weights, what, option)
        self.model.eval().to(device)
        self.dim = int(self.model.config.hidden_size)
        self._tag = weights_tag(model, weights, self.model)

    @classmethod
    def requirements(cls, options: dict[str, Any]) -> list[Requirement]:
        model = options.get("model") or cls.default_model
        return [HubModel(f"text encoder transformers (model={model})",
                         "--text-encoder transformers:weights=DIR", model, options.get("weights"),
                         cls.hub_files)]

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """From the model's config alone: `max_tokens` within its positions (captions are
        encoded after every video, where a longer one would fail)."""
        (need,) = cls.requirements(options)
        transformers = import_transformers(need.what)
        config = from_pretrained(transformers.AutoConfig, need.model, need.folder, need.what,
                                 "--text-encoder transformers:weights")
        positions = getattr(config, "max_position_embeddings", None)
        max_tokens = int(options.get("max_tokens", cls.default_max_tokens))
        if isinstance(positions, int) and max_tokens > positions:
            raise UserError(f"{need.what}: max_tokens={max_tokens} is more than the model's "
                            f"{positions} positions; give max_tokens={positions} or fewer")

    def encode(self, captions: list[str]) -> list[np.ndarray]:
        import torch

        out: list[np.ndarray] = []
        for start in range(0, len(captions), _BATCH):
            batch = [caption or " " for caption in captions[start:start + _BATCH]]
            inputs = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True,
                                    max_length=self.max_tokens).to(self.device)
            with torch.inference_mode():
                hidden = self.model(**inputs).last_hidden_state.float().cpu().numpy()
            lengths = inputs["attention_mask"].sum(dim=1).tolist()
            out.extend(np.ascontiguousarray(h[:max(n, 1)]) for h, n in zip(hidden, lengths))
        return out

    def options(self) -> dict[str, Any]:
        return {"model": self.model_name, "weights": self.weights_dir,
                "max_tokens": self.max_tokens}

    def weights(self) -> str:
        return self._tag

    def versions(self) -> dict[str, str]:
        import torch
        import transformers

        return {**super().versions(), "torch": torch.__version__,
                "transformers": transformers.__version__}

    @property
    def text_feat(self) -> str:
        return named_text_feat(self.model_name.rsplit("/", 1)[-1], self.dim)
