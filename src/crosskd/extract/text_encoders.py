"""The caption-encoder registry: `--text-encoder NAME[:key=value,...]` builds an entry, and a
dataset's recorded encoder (extraction.json `text_encoder`) builds the same one again, so a
query is embedded exactly as the dataset's captions were."""

from __future__ import annotations

from typing import Any, Mapping

from crosskd.errors import UserError
from crosskd.extract.encoder import TextEncoder
from crosskd.extract.hashed_text import HashedWordEncoder
from crosskd.extract.option_values import typed_options
from crosskd.extract.transformers_text import TransformersTextEncoder
from crosskd.extract.word2vec_text import Word2VecEncoder

#: every caption encoder by its registry name.
TEXT_ENCODERS: dict[str, type[TextEncoder]] = {
    cls.name: cls for cls in (HashedWordEncoder, TransformersTextEncoder, Word2VecEncoder)}

__all__ = ["TEXT_ENCODERS", "TextEncoder", "build_text_encoder", "parse_choice",
           "text_encoder_from_record"]


def parse_choice(choice: str) -> tuple[str, dict[str, str]]:
    """`name:key=value,key=value` -> (name, options); option values stay strings."""
    name, _, rest = choice.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{choice!r}: options are key=value separated by commas, as in "
                            "transformers:model=gpt2,weights=DIR")
        options[key.strip()] = value.strip()
    return name.strip(), options


def encoder_options(name: str, options: Mapping[str, Any] | None = None
                    ) -> tuple[type[TextEncoder], dict[str, Any]]:
    """The registered encoder class `name` and `options` typed for it (an unknown name is
    one line)."""
    if name not in TEXT_ENCODERS:
        raise UserError(f"unknown text encoder {name!r}; use one of {', '.join(TEXT_ENCODERS)}")
    cls = TEXT_ENCODERS[name]
    return cls, typed_options(cls, dict(options or {}), f"text encoder {name!r}")


def build_text_encoder(name: str, options: Mapping[str, Any] | None = None) -> TextEncoder:
    """The registered encoder `name`, built with `options` (an unknown one is one line)."""
    cls, typed = encoder_options(name, options)
    try:
        return cls(**typed)
    except TypeError as err:
        raise UserError(f"text encoder {name!r}: bad options {dict(options or {})} ({err})") from None


def text_encoder_from_record(record: Mapping[str, Any]) -> TextEncoder:
    """The encoder a dataset recorded; refused when it no longer gives the same features."""
    try:
        name, options = record["name"], record.get("options") or {}
    except (KeyError, TypeError, AttributeError):
        raise UserError("text encoder record lacks its name; it comes from the dataset's "
                        "extraction.json (key text_encoder), written by crosskd extract") from None
    encoder = build_text_encoder(name, options)
    for key, have in (("dim", encoder.dim), ("weights", encoder.weights())):
        if key in record and record[key] != have:
            raise UserError(f"text encoder {name!r}: the dataset's captions were encoded with "
                            f"{key} {record[key]!r}, this machine gives {have!r}; queries would "
                            "not match - get the same weights (or re-extract the dataset)")
    return encoder
