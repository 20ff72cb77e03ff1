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


def tiny_models() -> dict[str, object]:
    """Each pretrained expert's real architecture class at a tiny size (random weights)."""
    import transformers as t

    small = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 37}
    return {
        "clip": t.CLIPVisionModelWithProjection(t.CLIPVisionConfig(
            **small, image_size=32, patch_size=8, projection_dim=16)),
        "resnet": t.ResNetModel(t.ResNetConfig(embedding_size=8, hidden_sizes=[8, 12],
                                               depths=[1, 1], layer_type="basic")),
        "videomae": t.VideoMAEModel(t.VideoMAEConfig(**small, image_size=32, patch_size=8,
                                                     num_frames=4, tubelet_size=2)),
        "ast": t.ASTModel(t.ASTConfig(**small, max_length=100, num_mel_bins=32)),
        "whisper": t.WhisperForConditionalGeneration(t.WhisperConfig(
            d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=37,
            vocab_size=len(WORDS) + 2, max_target_positions=32, pad_token_id=1,
            bos_token_id=0, eos_token_id=1, decoder_start_token_id=0,
            suppress_tokens=[], begin_suppress_tokens=[])),
    }


def save_tiny_expert(name: str, model, folder: Path) -> Path:
    """The model and the preprocessing files its expert reads, as save_pretrained writes them."""
    import torch
    import transformers as t

    torch.manual_seed(0)
    model.save_pretrained(folder)
    if name == "ast":
        t.ASTFeatureExtractor(max_length=100, num_mel_bins=32).save_pretrained(folder)
    if name == "whisper":
        t.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
        save_tiny_tokenizer(folder)
    return folder


#: the special tokens faster-whisper looks up by name, then a few timestamp tokens
WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>",
                    "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                    "<|notimestamps|>", *(f"<|{i * 0.02:.2f}|>" for i in range(8))]


def save_tiny_whisper_ct2(folder: Path) -> Path:
    """A tiny random Whisper with Whisper's special tokens, converted offline by
    CTranslate2's converter into the folder faster-whisper loads (int8)."""
    import ctranslate2
    import torch
    import transformers as t
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {word: i for i, word in enumerate(["[UNK]", *WORDS, *WHISPER_SPECIALS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece()  # words joined by spaces
    tokenizer.add_special_tokens(WHISPER_SPECIALS)
    end, start = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    torch.manual_seed(0)
    config = t.WhisperConfig(
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=37,
        vocab_size=len(vocab), max_target_positions=448, pad_token_id=end, bos_token_id=end,
        eos_token_id=end, decoder_start_token_id=start, suppress_tokens=[],
        begin_suppress_tokens=[])
    source = folder.with_name(folder.name + "-transformers")
    t.WhisperForConditionalGeneration(config).save_pretrained(source)
    t.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(source)
    t.WhisperFeatureExtractor(feature_size=80).save_pretrained(source)
    ctranslate2.converters.TransformersConverter(
        str(source), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(
        str(folder), quantization="int8")
    return folder
