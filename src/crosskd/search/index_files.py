"""Reading an index folder, which is a file we did not write: `crosskd search` and `serve`
open folders that were copied, downloaded, truncated by a full disk or edited by hand.

Every file is found inside the folder (symlinks resolved, crosskd.untrusted.contained), every
array is read without pickles and checked for its dtype and shape before it is used, and the
manifest is checked field by field, so a damaged index ends in one line naming the file and
the fix, never in an IndexError from deep inside a search.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crosskd.errors import UserError
from crosskd.qbnorm import MAX_BETA
from crosskd.search.backends import BACKENDS
from crosskd.search.storage import DTYPES
from crosskd.search.text_side import SETTINGS, WEIGHTS, TextSide
from crosskd.untrusted import contained, terminal_safe

FORMAT = "crosskd-search-index"
VERSION = 1
MANIFEST = "manifest.json"
#: each video's digest of what the model read of it (crosskd.search.update), uint8
#: `[V, DIGEST_BYTES]`
DIGESTS = "digests.npy"
DIGEST_BYTES = 16
REBUILD = "rebuild it with crosskd index"
#: widest expert embedding accepted from a manifest
MAX_DIM = 1 << 16


class DamagedIndex(UserError):
    """A file of an index folder is missing, unreadable or inconsistent with the manifest."""


@dataclass(frozen=True)
class IndexFolder:
    """An index folder opened for reading; every path it hands out stays inside it."""

    root: Path

    def damaged(self, relative: str, problem: str) -> DamagedIndex:
        """The one-line error about one file of the folder."""
        return DamagedIndex(terminal_safe(f"{self.root / relative}: {problem}; the index is "
                                          f"damaged, {REBUILD}"))

    def file(self, relative: str, required: bool = True) -> Path | None:
        """The regular file at `relative`, or None when it is absent and not `required`."""
        path = contained(self.root, relative, f"index {self.root}")
        if path.is_file():
            return path
        if path.exists():
            raise self.damaged(relative, "is not a regular file")
        if required:
            raise self.damaged(relative, "is missing")
        return None

    def folder(self, relative: str) -> bool:
        """Whether the folder at `relative` is there (and inside the index)."""
        return contained(self.root, relative, f"index {self.root}").is_dir()

    def array(self, relative: str, dtype: str, shape: Sequence[int | None],
              mmap: bool = False) -> np.ndarray:
        """The .npy array at `relative`, of `dtype` and `shape` (None: any length), C order.
        Memory-mapped copy-on-write with `mmap`: pages are read when used, and the array is
        writable in memory (torch wraps it without a warning) while the file stays as it is."""
        path = self.file(relative)
        try:
            array = np.load(path, mmap_mode="c" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise self.damaged(relative, f"is not a readable .npy array ({err})") from None
        if not isinstance(array, np.ndarray):  # an .npz archive
            array.close()
            raise self.damaged(relative, "is an .npz archive, not a .npy array")
        expected = "[" + ", ".join("N" if n is None else str(n) for n in shape) + "]"
        if (array.dtype != np.dtype(dtype) or array.ndim != len(shape)
                or any(n is not None and n != m for n, m in zip(shape, array.shape))
                or not array.flags.c_contiguous):
            raise self.damaged(relative, f"holds {array.dtype} {list(array.shape)}"
                               f"{'' if array.flags.c_contiguous else ' in Fortran order'}, "
                               f"not {dtype} {expected} in C order")
        return array

    def finite(self, relative: str, array: np.ndarray, low: float | None = None,
               high: float | None = None) -> np.ndarray:
        """`array` when its values are finite and within [low, high]."""
        values = np.asarray(array, np.float64)
        if not np.isfinite(values).all():
            raise self.damaged(relative, "holds NaN or infinite values")
        if (low is not None and (values < low).any()) or (high is not None and
                                                          (values > high).any()):
            raise self.damaged(relative, f"holds values outside [{low}, {high}]")
        return array

    def positions(self, relative: str, array: np.ndarray, count: int) -> np.ndarray:
        """`array` when every value is a position in [0, count)."""
        if len(array) and (array.min() < 0 or array.max() >= count):
            raise self.damaged(relative, f"holds positions outside 0..{count - 1}")
        return array

    def json(self, relative: str) -> Any:
        """The JSON document at `relative`."""
        path = self.file(relative)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as err:
            raise self.damaged(relative, f"is not readable JSON ({err})") from None


@dataclass(frozen=True)
class Manifest:
    """manifest.json, checked: what the arrays of the folder must agree with."""

    modalities: tuple[str, ...]
    dims: tuple[int, ...]
    dtype: str
    backend: str
    video_ids: list[str]
    #: (availability row, number of videos) of each pattern, in group order
    patterns: list[tuple[tuple[float, ...], int]]
    info: dict[str, Any] = field(default_factory=dict)
    #: QB-Norm's (beta, bank size) when the index holds normalisers (crosskd.search.normalisers)
    qbnorm: tuple[float, int] | None = None


def read_manifest(folder: IndexFolder) -> Manifest:
    """The checked manifest, or a UserError naming the field and the fix."""
    if folder.file(MANIFEST, required=False) is None:
        raise UserError(terminal_safe(f"{folder.root} is not a search index (no {MANIFEST}); "
                                      "build one with crosskd index"))
    raw = folder.json(MANIFEST)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or \
            raw.get("version") != VERSION or isinstance(raw.get("version"), bool):
        raise folder.damaged(MANIFEST, f"is not a crosskd search index of version {VERSION}")
    check = _FieldCheck(folder)
    modalities = tuple(check.strings(raw, "modalities"))
    dims = tuple(check.ints(raw, "dims", 1, MAX_DIM, length=len(modalities)))
    video_ids = check.strings(raw, "video_ids")
    return Manifest(modalities, dims, check.choice(raw, "dtype", DTYPES),
                    check.choice(raw, "backend", tuple(BACKENDS)), video_ids,
                    check.patterns(raw, len(modalities), len(video_ids)),
                    check.mapping(raw, "info"), check.querybank(raw))


@dataclass(frozen=True)
class _FieldCheck:
    """Type and range checks of manifest fields, each failure naming its field."""

    folder: IndexFolder

    def fail(self, key: str, problem: str) -> DamagedIndex:
        return self.folder.damaged(MANIFEST, f"field {key!r} {problem}")

    def strings(self, raw: dict, key: str) -> list[str]:
        """A non-empty list of distinct non-empty strings."""
        value = raw.get(key)
        if not isinstance(value, list) or not value or \
                not all(isinstance(s, str) and s for s in value):
            raise self.fail(key, "must be a non-empty list of non-empty strings")
        if len(set(value)) != len(value):
            raise self.fail(key, "holds the same name twice")
        return value

    def ints(self, raw: dict, key: str, low: int, high: int, length: int) -> list[int]:
        """A list of `length` whole numbers in [low, high]."""
        value = raw.get(key)
        if not isinstance(value, list) or len(value) != length or not all(
                isinstance(n, int) and not isinstance(n, bool) and low <= n <= high
                for n in value):
            raise self.fail(key, f"must be a list of {length} whole numbers from {low} to "
                            f"{high}")
        return value

    def choice(self, raw: dict, key: str, choices: tuple[str, ...]) -> str:
        value = raw.get(key)
        if value not in choices or not isinstance(value, str):
            raise self.fail(key, f"must be one of {', '.join(choices)}")
        return value

    def mapping(self, raw: dict, key: str) -> dict[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be an object")
        return value

    def querybank(self, raw: dict) -> tuple[float, int] | None:
        """QB-Norm's settings: absent (or null), or {"beta": a number > 0, "bank_size": a
        whole number of at least 1}."""
        value = raw.get("qbnorm")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail("qbnorm", "must be an object with beta and bank_size")
        beta, size = value.get("beta"), value.get("bank_size")
        if not isinstance(beta, (int, float)) or isinstance(beta, bool) or \
                not 0 < beta <= MAX_BETA:  # also NaN and ints beyond a float
            raise self.fail("qbnorm.beta", f"must be a number > 0 and at most {MAX_BETA:g}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise self.fail("qbnorm.bank_size", "must be a whole number of at least 1")
        return float(beta), size

    def patterns(self, raw: dict, experts: int, videos: int
                 ) -> list[tuple[tuple[float, ...], int]]:
        """Distinct availability rows of `experts` values in [0, 1] (one above 0), each with
        a count of videos; the counts add up to `videos`."""
        value = raw.get("patterns")
        if not isinstance(value, list) or not value:
            raise self.fail("patterns", "must be a non-empty list")
        found = [self.pattern(entry, i, experts) for i, entry in enumerate(value)]
        if len({row for row, _ in found}) != len(found):
            raise self.fail("patterns", "holds the same availability twice")
        if sum(count for _, count in found) != videos:
            raise self.fail("patterns", f"counts {sum(c for _, c in found)} videos, the "
                            f"manifest's video_ids {videos}")
        return found

    def pattern(self, entry: Any, i: int, experts: int) -> tuple[tuple[float, ...], int]:
        key = f"patterns[{i}]"
        if not isinstance(entry, dict):
            raise self.fail(key, "must be an object")
        row, count = entry.get("availability"), entry.get("videos")
        if not isinstance(row, list) or len(row) != experts or not all(
                isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a <= 1
                for a in row) or not any(a > 0 for a in row):
            raise self.fail(f"{key}.availability", f"must be {experts} numbers from 0 to 1, "
                            "one of them above 0")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise self.fail(f"{key}.videos", "must be a whole number of at least 1")
        return tuple(float(a) for a in row), count


def read_availability(folder: IndexFolder, manifest: Manifest) -> np.ndarray:
    """availability.npy `[V, E]`, its values in [0, 1]."""
    availability = folder.array("availability.npy", "float32",
                                (len(manifest.video_ids), len(manifest.modalities)))
    return folder.finite("availability.npy", availability, 0, 1)


def read_digests(folder: IndexFolder, videos: int) -> np.ndarray | None:
    """digests.npy `[V, DIGEST_BYTES]` (None when the index records none: an update embeds
    every video of it again)."""
    if folder.file(DIGESTS, required=False) is None:
        return None
    return folder.array(DIGESTS, "uint8", (videos, DIGEST_BYTES))


def read_text_side(folder: IndexFolder, shape: tuple[int, int]) -> TextSide | None:
    """The stored text model (None when the index holds none), or a UserError naming its
    files: they are read by torch's weights-only loader and built into the model, which must
    embed a caption as `shape` `[experts, width]` as the index's videos are."""
    if folder.file(WEIGHTS, required=False) is None:
        return None
    settings = folder.json(SETTINGS)
    if not isinstance(settings, dict) or not isinstance(settings.get("config"), dict):
        raise folder.damaged(SETTINGS, "must be an object whose 'config' is the model's config")
    try:
        text_side = TextSide.load(folder.root)
        probe = text_side.embed_features(np.zeros((1, text_side.text_dim), np.float32))
    except UserError as err:
        raise folder.damaged(SETTINGS, f"describes no usable text model ({err})") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, EOFError,
            pickle.UnpicklingError) as err:
        raise folder.damaged(WEIGHTS, f"cannot be read with {SETTINGS} as the index's text "
                             f"model ({type(err).__name__}: {err})") from None
    if probe.embeddings.shape != shape or probe.weights.shape != shape[:1]:
        raise folder.damaged(SETTINGS, f"describes a text model embedding captions as "
                             f"{list(probe.embeddings.shape)}, not the index's {list(shape)}")
    return text_side
