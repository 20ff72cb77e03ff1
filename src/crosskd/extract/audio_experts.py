"""Soundtrack experts: an AudioSet model (AST) as a token sequence, one token per second,
and Whisper speech recognition, its transcript kept as text and embedded by the dataset's
text encoder as the speech tokens (missing when nothing is said)."""

from __future__ import annotations

from typing import Any

import numpy as np

from crosskd.errors import UserError
from crosskd.experts import TOKEN_DIMS
from crosskd.extract.decode import AUDIO_RATE, Decoded
from crosskd.extract.encoder import TextEncoder
from crosskd.extract.expert import Expert, Result
from crosskd.extract.hub import cached_pretrained
from crosskd.extract.pretrained import TransformersExpert, fixed_projection
from crosskd.extract.text_tokens import TextTokens

#: below this RMS a soundtrack counts as silent (no speech to transcribe).
SILENCE_RMS = 1e-3


def audible(audio: np.ndarray | None) -> bool:
    """Whether a soundtrack may hold speech: present and above SILENCE_RMS."""
    return audio is not None and len(audio) > 0 and float(np.sqrt(np.mean(audio**2))) >= SILENCE_RMS


def _processor(expert: TransformersExpert, name: str, **defaults: Any) -> Any:
    """The feature extractor saved with the weights, else one built for the model's config
    (the hub cache first, as for the weights)."""
    cls = getattr(expert.transformers, name)
    source = expert.weights_dir or expert.model_name
    found = cached_pretrained(cls, source)
    if found is not None:
        return found
    try:
        return cls.from_pretrained(source)
    except (OSError, ValueError):
        return cls(**defaults)


class ASTAudio(TransformersExpert):
    """Audio Spectrogram Transformer: patch tokens averaged over frequency, pooled per second,
    projected to the published 128-d audio tokens; missing without an audio track."""

    name = "ast"
    input_kind, output_kind, modality = "audio", "tokens", "audio"
    loader, default_model = "ASTModel", "MIT/ast-finetuned-audioset-10-10-0.4593"
    hub_files = ("preprocessor_config.json",)
    rate, pixel_dim = 0.0, 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        config = self.model.config
        self.extractor = _processor(self, "ASTFeatureExtractor", max_length=config.max_length,
                                    num_mel_bins=config.num_mel_bins)
        self.dim = TOKEN_DIMS["audio"]
        self.projection = fixed_projection(config.hidden_size, self.dim)
        self.window = config.max_length / 100  # seconds per model input (10 ms frames)
        self.frequency_out = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1

    def _window_tokens(self, samples: np.ndarray) -> np.ndarray:
        import torch

        inputs = self.extractor(samples, sampling_rate=AUDIO_RATE, return_tensors="pt")
        with torch.inference_mode(), self.autocast():
            hidden = self.model(input_values=inputs["input_values"].to(self.device)).last_hidden_state
        patches = hidden.float()[0, 2:].cpu().numpy()  # after the cls and distillation tokens
        per_time = patches.reshape(self.frequency_out, -1, patches.shape[-1]).mean(axis=0)
        heard = min(1.0, len(samples) / (self.window * AUDIO_RATE))  # the rest is padding
        per_time = per_time[:max(1, int(np.ceil(len(per_time) * heard)))]
        seconds = max(1, int(round(len(samples) / AUDIO_RATE)))
        return np.stack([group.mean(axis=0) for group in np.array_split(per_time, seconds)
                         if len(group)])

    def compute(self, video: Decoded) -> Result:
        if video.audio is None or not len(video.audio):
            return Result(None)
        step = int(self.window * AUDIO_RATE)
        # a tail under half a second after the first window adds no token
        starts = [start for start in range(0, len(video.audio), step)
                  if start == 0 or len(video.audio) - start >= AUDIO_RATE // 2]
        tokens = [self._window_tokens(video.audio[start:start + step]) for start in starts]
        return Result((np.concatenate(tokens) @ self.projection).astype(np.float32))

    def options(self) -> dict[str, Any]:
        return {**super().options(), "projection": "qr-seed0"}


class WhisperSpeech(TransformersExpert):
    """Whisper ASR per 30 s of soundtrack; the transcript's tokens from the text encoder,
    projected to the published 300-d speech tokens when the encoder is wider."""

    name = "whisper"
    input_kind, output_kind, modality = "speech", "tokens", "speech"
    loader, default_model = "WhisperForConditionalGeneration", "openai/whisper-tiny"
    hub_files = ("preprocessor_config.json", "tokenizer_config.json")
    common_options = ("device", "text_encoder")
    rate, pixel_dim = 0.0, 0

    def __init__(self, *args: Any, text_encoder: TextEncoder, max_new_tokens: int = 96,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the prompt's start tokens and the new ones share the decoder's positions
        self.max_new_tokens = min(int(max_new_tokens),
                                  self.model.config.max_target_positions // 2)
        self.extractor = _processor(self, "WhisperFeatureExtractor",
                                    feature_size=self.model.config.num_mel_bins)
        self.tokenizer = self.load(self.transformers.AutoTokenizer)
        self.dim = TOKEN_DIMS["speech"]
        self.tokens = TextTokens(text_encoder, self.dim)

    @classmethod
    def variant(cls, options: dict[str, Any]) -> tuple[type[Expert], dict[str, Any]]:
        """`backend=faster-whisper` runs Whisper through CTranslate2 instead (its own class
        and options); `transformers`, the default, is this class."""
        from crosskd.extract.faster_whisper_expert import FasterWhisperSpeech

        rest = {key: value for key, value in options.items() if key != "backend"}
        backends = {"transformers": cls, "faster-whisper": FasterWhisperSpeech}
        backend = options.get("backend", "transformers")
        if backend not in backends:
            raise UserError(f"expert whisper: backend={backend!r} is not one of "
                            f"{', '.join(backends)}")
        return backends[backend], rest

    def transcribe(self, audio: np.ndarray) -> str:
        import torch

        step, texts = 30 * AUDIO_RATE, []
        for start in range(0, len(audio), step):
            inputs = self.extractor(audio[start:start + step], sampling_rate=AUDIO_RATE,
                                    return_tensors="pt")
            with torch.inference_mode(), self.autocast():
                ids = self.model.generate(inputs["input_features"].to(self.device),
                                          max_new_tokens=self.max_new_tokens)
            texts.append(self.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip())
        return " ".join(text for text in texts if text)

    def compute(self, video: Decoded) -> Result:
        if not audible(video.audio):
            return Result(None)
        text = self.transcribe(video.audio)
        if not text:
            return Result(None, text="")
        return Result(self.tokens(text), text=text)

    def options(self) -> dict[str, Any]:
        # the encoder's weights too: a cached result must not outlive a swapped word-vector file
        return {**super().options(), **self.tokens.record(),
                "max_new_tokens": self.max_new_tokens}
