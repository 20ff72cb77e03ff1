"""Text written in the video (`--experts ocr`): RapidOCR's PP-OCRv4 detection, orientation and
recognition models (shipped inside the rapidocr-onnxruntime wheel, run by onnxruntime) read
one frame per second; the lines, merged across frames (`ocr_lines`), become the published
`ocr` token expert through the dataset's text encoder, missing when no word is read.

One frame per second: captions and subtitles stay at least a second (usually 2-6 s), slides
and tickers longer, so 1/s sees each of them while costing a twentieth of reading every
frame of a 20 fps video; a frame that looks like the last one read is not read again (a
slide, a paused screen). Frames are decoded at 720 px on their short side, their own size
(`Expert.own_pixel_dim`), while the image models keep their 224 px frames: PP-OCR's
recogniser (trained mostly on Chinese) drops the spaces between English words in small
text, and subtitles of a 1080p video (about 4 % of its height) keep their spaces at 720
lines but not at 480. Like every frame expert it reads at most --max-frames frames per video
(64 by default), spread evenly over a longer video.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from crosskd.data.fingerprint import content_digest
from crosskd.errors import UserError
from crosskd.experts import TOKEN_DIMS
from crosskd.extract.decode import Decoded
from crosskd.extract.encoder import TextEncoder, words
from crosskd.extract.expert import Expert, Result
from crosskd.extract.ocr_lines import Line, distinct_text, merge_lines
from crosskd.extract.text_tokens import TextTokens

#: a frame whose every 16x16 block differs from the last frame read by less than this many
#: grey levels on average shows the same thing (compression noise stays well below it).
SAME_PICTURE = 4.0
_BLOCK = 16


def import_rapidocr() -> Any:
    """The rapidocr_onnxruntime module, or one line naming the extra that installs it."""
    try:
        import rapidocr_onnxruntime
    except ImportError as err:
        raise UserError(f"expert ocr needs rapidocr-onnxruntime ({err}): pip install "
                        "\"crosskd[ocr]\" (its wheel ships the PP-OCR models)") from None
    return rapidocr_onnxruntime


def _models_tag(module: Any) -> str:
    """sha256 over the ONNX models the wheel ships (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted((Path(module.__file__).parent / "models").glob("*.onnx")):
        digest.update(path.name.encode())
        digest.update(content_digest(path).encode())
    return f"sha256:{digest.hexdigest()}"


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two frames show the same thing: no 16x16 block changed by SAME_PICTURE grey
    levels on average (a new line of text changes its blocks by far more)."""
    if a.shape != b.shape:
        return False
    grey = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=-1)
    rows, cols = grey.shape[0] // _BLOCK, grey.shape[1] // _BLOCK
    if not rows or not cols:
        return bool(grey.mean() < SAME_PICTURE)
    blocks = grey[:rows * _BLOCK, :cols * _BLOCK].reshape(rows, _BLOCK, cols, _BLOCK)
    return bool(blocks.mean(axis=(1, 3)).max() < SAME_PICTURE)


class RapidOCRText(Expert):
    """Lines read from one frame per second; their words are the `ocr` tokens."""

    name = "ocr"
    input_kind, output_kind, modality = "frames", "tokens", "ocr"
    own_pixel_dim = True
    common_options = ("text_encoder",)
    rate = 1.0

    def __init__(self, text_encoder: TextEncoder, pixel_dim: int = 720,
                 min_confidence: int = 50) -> None:
        module = import_rapidocr()
        if not 32 <= pixel_dim <= 2000:
            raise UserError(f"expert ocr: pixel_dim={pixel_dim} is out of range; give the "
                            "frames' short side in pixels, 32 to 2000 (default 720)")
        if min_confidence > 100:
            raise UserError(f"expert ocr: min_confidence={min_confidence} is out of range; "
                            "give a percentage, 1 to 100 (default 50)")
        self.pixel_dim, self.min_confidence = int(pixel_dim), int(min_confidence)
        # detection at the decoded size: RapidOCR would otherwise scale frames up to 736 px
        self.engine = module.RapidOCR(text_score=self.min_confidence / 100,
                                      det_limit_side_len=self.pixel_dim)
        self.dim = TOKEN_DIMS["ocr"]
        self.tokens = TextTokens(text_encoder, self.dim)
        self._tag = _models_tag(module)

    def read(self, frame: np.ndarray) -> list[Line]:
        """The lines of one `[H, W, 3]` RGB frame, top to bottom (RapidOCR takes BGR)."""
        import cv2

        try:
            found, _ = self.engine(np.ascontiguousarray(frame[..., ::-1]))
        except cv2.error as err:
            raise RuntimeError(f"OpenCV: {str(err).strip().splitlines()[-1][:160]}") from None
        lines = (Line(str(text).strip(), float(score)) for _, text, score in found or [])
        return [line for line in lines if line.text]

    def _read_frames(self, frames: np.ndarray) -> list[list[Line]]:
        """Each frame's lines; a frame like the last one read reuses its lines."""
        read: list[list[Line]] = []
        last: np.ndarray | None = None
        for frame in frames:
            if last is None or not same_picture(last, frame):
                lines, last = self.read(frame), frame
            read.append(lines)
        return read

    def compute(self, video: Decoded) -> Result:
        frames, times = video.frames[self.rate], video.times[self.rate]
        segments = merge_lines(list(zip(times.tolist(), self._read_frames(frames))))
        text = distinct_text(segments)
        if not words(text):
            return Result(None)
        return Result(self.tokens(text), text=text,
                      timed_text=[segment.record() for segment in segments])

    def options(self) -> dict[str, Any]:
        return {"pixel_dim": self.pixel_dim, "min_confidence": self.min_confidence,
                **self.tokens.record()}

    def weights(self) -> str:
        return self._tag

    def versions(self) -> dict[str, str]:
        return {**super().versions(), "rapidocr-onnxruntime":
                metadata.version("rapidocr-onnxruntime"),
                "onnxruntime": metadata.version("onnxruntime")}
