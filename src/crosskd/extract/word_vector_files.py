"""Word-vector files as users have them, read in one streamed pass: GloVe text (`word v1 .. vD`
per line, no header), word2vec text (the same after a `count dim` line) and word2vec's C
binary format (`count dim` line, then `word ` and D little-endian float32 per vector).

The file is hostile input: every malformed line is one UserError naming the file and the line
(or the binary vector's number). Only the words a caption can produce (`encoder.is_word`) are
kept, each vector once, in float32 blocks filled as the file is read, so a multi-GB file is
held once in memory (never also as its text or bytes) and never more than the file holds.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from crosskd.errors import UserError
from crosskd.extract.encoder import is_word
from crosskd.untrusted import ascii_int

log = logging.getLogger(__name__)

#: rows per block of the vector table (16,384 x 300 float32 = 19 MiB).
BLOCK_ROWS = 16384
#: the widest vectors accepted (a `count dim` header asking for more is refused).
MAX_DIM = 65536
#: the longest text line or binary word read (GloVe 300-d lines are about 3 KiB).
MAX_LINE = 1 << 20
MAX_WORD = 4096
_READ = 1 << 20
_FIX = ("give GloVe text (word v1 .. vD per line), word2vec text (a 'count dim' line first) "
        "or a word2vec C binary file")


class WordVectors:
    """word -> float32 vector, the rows kept in fixed-size blocks (no regrowth copies)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.rows: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, word: str) -> bool:
        return word in self.rows

    def __getitem__(self, word: str) -> np.ndarray:
        row = self.rows[word]
        return self._blocks[row // BLOCK_ROWS][row % BLOCK_ROWS]

    def add(self, word: str, vector: np.ndarray) -> None:
        """Keep `vector` under `word` unless the word came earlier (the first one wins)."""
        if word in self.rows:
            return
        row = len(self.rows)
        if row // BLOCK_ROWS == len(self._blocks):
            self._blocks.append(np.empty((BLOCK_ROWS, self.dim), np.float32))
        self._blocks[-1][row % BLOCK_ROWS] = vector
        self.rows[word] = row

    def trim(self) -> None:
        """Give back the unused rows of the last block."""
        if self._blocks:
            self._blocks[-1] = self._blocks[-1][:len(self.rows) % BLOCK_ROWS or BLOCK_ROWS].copy()


def _fail(path: Path, where: str, problem: str) -> UserError:
    return UserError(f"word vectors file {path} {where}: {problem}; {_FIX}")


def _vector(path: Path, where: str, fields: list[bytes] | bytes) -> np.ndarray:
    """D finite float32 numbers from ASCII fields (or D little-endian float32 bytes)."""
    try:
        vector = (np.frombuffer(fields, "<f4") if isinstance(fields, bytes)
                  else np.array(fields, np.float32))
    except ValueError:
        raise _fail(path, where, "a value is not a number (ASCII decimal)") from None
    if not np.isfinite(vector).all():
        raise _fail(path, where, "a value is infinite or NaN")
    return vector


def _word(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").lower()


def _header(line: bytes) -> tuple[int, int] | None:
    """(count, dim) of a word2vec `count dim` first line, None for a GloVe first line."""
    fields = line.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    return (ascii_int(fields[0].decode(), "the header's vector count", 1),
            ascii_int(fields[1].decode(), "the header's width", 1, MAX_DIM))


def _lines(handle: BinaryIO, path: Path, first: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line) from `first` on; a line over MAX_LINE bytes is refused."""
    for number, line in enumerate(iter(lambda: handle.readline(MAX_LINE), b""), first):
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            raise _fail(path, f"line {number}", f"longer than {MAX_LINE} bytes")
        yield number, line


def _read_text(handle: BinaryIO, path: Path, table: WordVectors | None,
               first: int) -> tuple[WordVectors, int]:
    """`word v1 .. vD` lines (D from the table or, without one, from the first line): the
    table and how many vectors the lines hold."""
    total = 0
    for number, line in _lines(handle, path, first):
        fields = line.split()
        if not fields:
            continue
        if table is None:
            if not 2 <= len(fields) <= MAX_DIM + 1:
                raise _fail(path, f"line {number}", f"{len(fields) - 1} numbers; a vector has "
                            f"1 to {MAX_DIM}")
            table = WordVectors(len(fields) - 1)
        if len(fields) < table.dim + 1:
            raise _fail(path, f"line {number}",
                        f"{len(fields) - 1} numbers where the file's vectors have {table.dim}")
        total += 1
        word = _word(b" ".join(fields[:-table.dim]))  # GloVe 840B has words with spaces
        if is_word(word) and word not in table:
            table.add(word, _vector(path, f"line {number}", fields[-table.dim:]))
    if table is None:
        raise _fail(path, "line 1", "the file holds no vectors")
    return table, total


def _binary_records(handle: BinaryIO, path: Path, count: int,
                    dim: int) -> Iterator[tuple[int, bytes, bytes]]:
    """(number, word, D x 4 bytes) of each of `count` C-format records."""
    size, buffer, start = 4 * dim, b"", 0
    for number in range(1, count + 1):
        while True:
            begin = start
            while buffer[begin:begin + 1] in (b"\n", b"\r"):
                begin += 1  # the C tool writes a newline after each vector
            space = buffer.find(b" ", begin, begin + MAX_WORD + 1)
            if space >= 0 and space + 1 + size <= len(buffer):
                break
            if space < 0 and len(buffer) - begin > MAX_WORD:
                raise _fail(path, f"vector {number}", f"no word of at most {MAX_WORD} bytes")
            more = handle.read(_READ)
            if not more:
                raise _fail(path, f"vector {number}",
                            f"the file ends after {number - 1} of the {count} vectors its "
                            "header announces")
            buffer, start = buffer[start:] + more, 0
        yield number, buffer[begin:space], buffer[space + 1:space + 1 + size]
        start = space + 1 + size


def _read_binary(handle: BinaryIO, path: Path, count: int, dim: int) -> WordVectors:
    table = WordVectors(dim)
    for number, raw, data in _binary_records(handle, path, count, dim):
        word = _word(raw)
        if is_word(word) and word not in table:
            table.add(word, _vector(path, f"vector {number}", data))
    return table


def _is_text(handle: BinaryIO) -> bool:
    """Whether what follows a `count dim` header is text: UTF-8 without NUL bytes (binary
    floats hold bytes no UTF-8 text has, a NUL for 0.5 or a lone 0x80 for 1.0)."""
    ahead = handle.peek(_READ)[:_READ]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(ahead, final=False)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in ahead


def _read(handle: BinaryIO, path: Path) -> tuple[WordVectors, int, str]:
    """The table, how many vectors the file holds and the format's name."""
    try:
        header = _header(handle.readline(MAX_LINE))
    except ValueError as err:
        raise _fail(path, "line 1", str(err)) from None
    if header is None:
        handle.seek(0)
        return *_read_text(handle, path, None, 1), "GloVe text"
    count, dim = header
    if _is_text(handle):
        return *_read_text(handle, path, WordVectors(dim), 2), "word2vec text"
    return _read_binary(handle, path, count, dim), count, "word2vec binary"


def load_word_vectors(path: Path) -> WordVectors:
    """The vectors of a GloVe or word2vec file (format auto-detected), logged with its size."""
    try:
        with open(path, "rb", buffering=_READ) as handle:
            table, total, kind = _read(handle, path)
    except FileNotFoundError:
        raise UserError(f"word vectors file {path} not found; pass --text-encoder "
                        "word2vec:path=FILE with a GloVe or word2vec file") from None
    except OSError as err:
        raise UserError(f"word vectors file {path} cannot be read ({err.strerror or err}); "
                        "check the path and that you may read it") from None
    if not len(table):
        raise _fail(path, "(whole file)", "no vector belongs to a word a caption can hold "
                    "(letters a-z, digits, apostrophes)")
    table.trim()
    log.info("word vectors %s: %s, %d vectors of %d dimensions; %d kept (the words a caption "
             "can hold)", path, kind, total, table.dim, len(table))
    return table
