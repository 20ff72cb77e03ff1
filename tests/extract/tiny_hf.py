"""Tiny random-weight transformers models saved with save_pretrained, for the tests."""

from __future__ import annotations

from pathlib import Path

WORDS = ["a", "red", "blue", "circle", "square", "moves", "left", "right", "on", "green"]


def save_tiny_tokenizer(folder: Path) -> None:
    """A word-level tokenizer over WORDS (and [UNK], [PAD]) written as tokenizer.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(["[UNK]", "[PAD]", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]",
                            pad_token="[PAD]").save_pretrained(folder)


def save_tiny_gpt2(folder: Path, width: int = 300) -> Path:
    """A 1-layer GPT-2 of the given width with random weights and the tiny tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(WORDS) + 2, n_positions=32, n_embd=width, n_layer=1,
                        n_head=4, bos_token_id=1, eos_token_id=1)
    GPT2Model(config).save_pretrained(folder)
    save_tiny_tokenizer(folder)
    return folder
