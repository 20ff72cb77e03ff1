"""Captions as word2vec vectors from a local file (text `word v1 .. vD` lines, an optional
`count dim` header, or the C binary format); words the file lacks are skipped."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from crosskd.data.fingerprint import content_digest
from crosskd.errors import UserError
from crosskd.extract.encoder import TextEncoder, published_text_feat, stack_tokens, words


def _read_binary(handle: Any, count: int, dim: int) -> dict[str, np.ndarray]:
    vectors = {}
    for _ in range(count):
        word = b""
        while (char := handle.read(1)) not in (b" ", b""):
            word += char
        vectors[word.decode("utf-8", "replace").strip().lower()] = np.frombuffer(
            handle.read(4 * dim), np.float32).copy()
    return vectors


def _read_text(lines: list[str]) -> dict[str, np.ndarray]:
    vectors = {}
    for line in lines:
        parts = line.rstrip().split(" ")
        if len(parts) > 2:
            vectors.setdefault(parts[0].lower(), np.asarray(parts[1:], np.float32))
    return vectors


def _parse(data: bytes) -> dict[str, np.ndarray]:
    first, _, rest = data.partition(b"\n")
    header = first.split()
    is_header = len(header) == 2 and all(part.isdigit() for part in header)
    try:
        return _read_text((rest if is_header else data).decode("utf-8").splitlines())
    except UnicodeDecodeError:
        if not is_header:
            raise
    count, dim = map(int, header)
    return _read_binary(io.BytesIO(rest), count, dim)


def load_word2vec(path: Path) -> dict[str, np.ndarray]:
    """word -> vector; a file that is neither format is one line naming it."""
    try:
        vectors = _parse(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"word2vec file {path} not found; pass --text-encoder "
                        "word2vec:path=FILE with a word2vec text or binary file") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"word2vec file {path} cannot be read ({type(err).__name__}); give a "
                        "word2vec text file (word v1 .. vD per line) or a C binary file") from None
    widths = {len(vector) for vector in vectors.values()}
    if len(widths) != 1:
        raise UserError(f"word2vec file {path}: no vectors, or vectors of several widths "
                        f"({sorted(widths)[:3]}); give one word and its D numbers per line")
    return vectors


class Word2VecEncoder(TextEncoder):
    """One token per known word, its vector from the file."""

    name = "word2vec"

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self.vectors = load_word2vec(Path(path))
        self.dim = len(next(iter(self.vectors.values())))
        self._digest = content_digest(Path(path))

    def encode(self, captions: list[str]) -> list[np.ndarray]:
        return [stack_tokens([self.vectors[w] for w in words(c) if w in self.vectors], self.dim)
                for c in captions]

    def options(self) -> dict[str, Any]:
        return {"path": self.path}

    def weights(self) -> str:
        return f"sha256:{self._digest}"

    @property
    def text_feat(self) -> str:
        return published_text_feat("w2v", self.dim, self.name)
