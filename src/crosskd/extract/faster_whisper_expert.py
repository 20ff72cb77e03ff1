"""Whisper through faster-whisper (CTranslate2; int8 on the CPU), the speech expert's second
backend: `--expert-option whisper:backend=faster-whisper`. It gives what the transformers
backend gives (the transcript as `speech` tokens through the dataset's text encoder) and
keeps every word's start and end time and probability for extraction.json.

Models are CTranslate2 folders (`model.bin`, `config.json`, `tokenizer.json`,
`preprocessor_config.json`): `weights=DIR` names one (offline), `model=NAME` a faster-whisper
size ("tiny", "base", "small", ...) or hub id fetched through the hub cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from crosskd.data.fingerprint import content_digest
from crosskd.errors import UserError
from crosskd.experts import TOKEN_DIMS
from crosskd.extract.audio_experts import audible
from crosskd.extract.decode import Decoded
from crosskd.extract.encoder import TextEncoder
from crosskd.extract.expert import Expert, Result
from crosskd.extract.requirements import Location, Network, Requirement
from crosskd.extract.text_tokens import TextTokens

COMPUTE_TYPES = ("default", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
                 "float16", "bfloat16", "float32")
MAX_BEAM = 16
_CONVERT = ("ct2-transformers-converter --model openai/whisper-base --output_dir DIR "
            "--copy_files tokenizer.json preprocessor_config.json --quantization int8")


def import_faster_whisper() -> Any:
    """The faster_whisper module, or one line naming the extra that installs it."""
    try:
        import faster_whisper
    except ImportError as err:
        raise UserError(f"expert whisper with backend=faster-whisper needs faster-whisper "
                        f"({err}): pip install \"crosskd[speech]\"") from None
    return faster_whisper


def folder_tag(folder: Path) -> str:
    """sha256 over a model folder's files (names and bytes): what fixes the numbers."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(content_digest(path).encode())  # streamed: model.bin runs to GBs
    return f"sha256:{digest.hexdigest()}"


def _model_folder(module: Any, model: str, weights: str | None) -> Path:
    """The CTranslate2 folder to load: `weights`, else `model` from the hub cache."""
    if weights is not None:
        if not (Path(weights) / "model.bin").is_file():
            raise UserError(f"expert whisper: weights={weights} is not a CTranslate2 Whisper "
                            f"folder (no model.bin); make one with {_CONVERT}")
        return Path(weights)
    cached = cached_model_folder(module, model)
    if cached is not None:
        return cached
    try:
        return Path(module.download_model(model))
    except (OSError, ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UserError(f"expert whisper: cannot get faster-whisper model {model!r} ({reason}); "
                        "without network access pass a CTranslate2 folder as --expert-option "
                        f"whisper:weights=DIR (make one with {_CONVERT})") from None


def cached_model_folder(module: Any, model: str) -> Path | None:
    """`model`'s folder from the hub cache alone (no request); None when it is not there."""
    try:
        return Path(module.download_model(model, local_files_only=True))
    except (OSError, ValueError, RuntimeError):
        return None


@dataclass(frozen=True)
class CTranslate2Whisper(Requirement):
    """A CTranslate2 Whisper folder (`weights=DIR`), or a faster-whisper model from the hub."""

    model: str
    folder: str | None = None

    def locate(self, network: Network) -> Location:
        module = import_faster_whisper()
        if self.folder is not None:
            _model_folder(module, self.model, self.folder)  # refuses a folder without model.bin
            return Location.LOCAL
        if cached_model_folder(module, self.model) is not None:
            return Location.CACHED
        return network.hub_location()


def _device(device: str) -> tuple[str, int]:
    """crosskd's `cuda:N` as CTranslate2's (device, index)."""
    kind, _, index = device.partition(":")
    return kind, int(index) if index.isdigit() else 0


class FasterWhisperSpeech(Expert):
    """Whisper ASR through CTranslate2; transcript tokens plus each word's times."""

    name = "whisper"
    input_kind, output_kind, modality = "speech", "tokens", "speech"
    common_options = ("device", "text_encoder")
    rate, pixel_dim = 0.0, 0

    default_model = "tiny"

    @classmethod
    def requirements(cls, options: dict[str, Any]) -> list[Requirement]:
        model = options.get("model") or cls.default_model
        return [CTranslate2Whisper(f"expert whisper (backend=faster-whisper, model={model})",
                                   "--expert-option whisper:weights=DIR", model,
                                   options.get("weights"))]

    def __init__(self, text_encoder: TextEncoder, model: str = default_model,
                 weights: str | None = None, device: str = "cpu", language: str | None = None,
                 beam: int = 5, compute_type: str | None = None,
                 max_new_tokens: int = 224) -> None:
        module = import_faster_whisper()
        self._check(module, language, beam, compute_type)
        self.model_name, self.weights_dir, self.language = model, weights, language
        # half the decoder's 448 positions, as the transformers backend allows: more than
        # fast speech needs per 30 s, and a bound on what a model that never stops costs
        self.beam, self.max_new_tokens = int(beam), min(int(max_new_tokens), 224)
        self.compute_type = compute_type or ("int8" if device == "cpu" else "float16")
        folder = _model_folder(module, model, weights)
        kind, index = _device(device)
        try:
            self.model = module.WhisperModel(str(folder), device=kind, device_index=index,
                                             compute_type=self.compute_type)
        except (OSError, ValueError, RuntimeError) as err:
            raise UserError(f"expert whisper: cannot load the CTranslate2 model in {folder} "
                            f"({str(err).strip()[:160]}); make one with {_CONVERT}") from None
        self._tag = folder_tag(folder)
        self.dim = TOKEN_DIMS["speech"]
        self.tokens = TextTokens(text_encoder, self.dim)

    @staticmethod
    def _check(module: Any, language: str | None, beam: int, compute_type: str | None) -> None:
        """Refuse options CTranslate2 would fail on deep inside a transcription."""
        languages = module.tokenizer._LANGUAGE_CODES
        if language is not None and language not in languages:
            raise UserError(f"expert whisper: language={language!r} is not a Whisper language "
                            f"code (e.g. en, de, fr, zh; {len(languages)} in all)")
        if beam > MAX_BEAM:
            raise UserError(f"expert whisper: beam={beam} is out of range; use 1 to {MAX_BEAM}")
        if compute_type is not None and compute_type not in COMPUTE_TYPES:
            raise UserError(f"expert whisper: compute_type={compute_type!r} is not one of "
                            f"{', '.join(COMPUTE_TYPES)}")

    def transcribe(self, audio: Any) -> tuple[str, list[dict[str, Any]]]:
        """The transcript and its words, each with start, end (seconds) and probability."""
        # temperature 0 only: faster-whisper's fallback would sample again at higher
        # temperatures, and a dataset's features must come out the same on every run
        segments, _ = self.model.transcribe(audio, language=self.language,
                                            beam_size=self.beam, word_timestamps=True,
                                            max_new_tokens=self.max_new_tokens, temperature=0.0)
        texts, timed = [], []
        for segment in segments:
            texts.append(segment.text.strip())
            timed += [{"word": word.word.strip(), "start": round(float(word.start), 3),
                       "end": round(float(word.end), 3),
                       "probability": round(float(word.probability), 3)}
                      for word in segment.words or [] if word.word.strip()]
        return " ".join(text for text in texts if text), timed

    def compute(self, video: Decoded) -> Result:
        if not audible(video.audio):
            return Result(None)
        text, timed = self.transcribe(video.audio)
        if not text:
            return Result(None, text="")
        return Result(self.tokens(text), text=text, timed_text=timed)

    def options(self) -> dict[str, Any]:
        return {"backend": "faster-whisper", "model": self.model_name,
                "weights": self.weights_dir, "language": self.language, "beam": self.beam,
                "compute_type": self.compute_type, "max_new_tokens": self.max_new_tokens,
                **self.tokens.record()}

    def weights(self) -> str:
        return self._tag

    def versions(self) -> dict[str, str]:
        return {**super().versions(), "faster-whisper": metadata.version("faster-whisper"),
                "ctranslate2": metadata.version("ctranslate2")}
