"""Fuzz the safe pickle loaders: damaged or hostile bytes give a result or a UserError, nothing else.

Valid dataset-like pickles (every protocol) and checkpoints are damaged by bit flips,
truncation, inserted or overwritten opcodes and spliced random bytes, then read by the loaders
users reach: the allow-list loader (`restricted_loads`), the small-pickle reader of the data
layer, the spooling reader that streams arrays to disk, and the checkpoint reader of `test`.
Any exception type other than crosskd.errors.UserError escaping from them is a bug (a
traceback instead of one line); a crash of the interpreter is worse, hence the child process.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from crosskd.data.pickles import load_small_pickle, spool_pickle
from crosskd.errors import UserError
from crosskd.safe_pickle import CONTAINER_GLOBALS, NUMPY_GLOBALS, restricted_loads
from crosskd.checkpoint.reader import read_checkpoint

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                phases=(Phase.explicit, Phase.generate),  # no shrinking: bounded CI time
                suppress_health_check=[HealthCheck.too_slow])

#: every opcode byte the pickle module defines (the "random opcodes" inserted into streams).
OPCODES = sorted({op.code.encode("latin1")[0] for op in pickletools.opcodes})


def _seed_objects() -> list[object]:
    """Structures shaped like the published dataset pickles (experts, captions, NaN = missing)."""
    rng = np.random.default_rng(0)
    return [
        {"video0": rng.standard_normal(4).astype(np.float32), "video1": float("nan")},
        {"video0": [rng.standard_normal((3, 5)).astype(np.float16),
                    rng.standard_normal((2, 5)).astype(np.float16)]},
        {"v": {"audio": rng.standard_normal((2, 3)), "ids": np.array(["a", "b"])}},
        collections.OrderedDict(a=np.int64(3), b={1, 2}, c=frozenset({"x"}), d=b"raw\x00bytes"),
        [np.arange(6, dtype=np.int32).reshape(2, 3), (1.5, "text"), np.str_("id")],
    ]


SEEDS = [pickle.dumps(obj, protocol=protocol)
         for obj in _seed_objects() for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]


def _checkpoint_seeds() -> list[bytes]:
    """An original-layout trained_model.pth in torch's zip and legacy (plain pickle) formats."""
    payload = {"arch": "CENet", "epoch": 3, "monitor_best": 0.5, "config": {"seed": 0},
               "state_dict": {"fc.weight": torch.ones(3, 2), "fc.bias": torch.zeros(3)}}
    blobs = []
    for zipped in (True, False):
        buffer = io.BytesIO()
        torch.save(payload, buffer, _use_new_zipfile_serialization=zipped)
        blobs.append(buffer.getvalue())
    return blobs


CHECKPOINT_SEEDS = _checkpoint_seeds()


def _mutate(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid seed after 1-4 random mutations."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["flip", "truncate", "insert_op", "overwrite_op", "splice"]))
        if kind == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[where:]
        elif kind == "insert_op":
            data.insert(where, draw(st.sampled_from(OPCODES)))
        elif kind == "overwrite_op" and data:
            data[where] = draw(st.sampled_from(OPCODES))
        elif kind == "splice":
            data[where:where] = draw(st.binary(min_size=1, max_size=12))
    return bytes(data)


@st.composite
def damaged_pickles(draw: st.DrawFn) -> bytes:
    """A valid dataset-like pickle after 1-4 random mutations."""
    return _mutate(draw, SEEDS)


@st.composite
def damaged_checkpoints(draw: st.DrawFn) -> bytes:
    """A valid checkpoint (zip or legacy format) after 1-4 random mutations."""
    return _mutate(draw, CHECKPOINT_SEEDS)


random_streams = st.builds(lambda proto, body: bytes([0x80, proto]) + body,
                           st.integers(0, 5), st.binary(max_size=64))
opcode_streams = st.lists(st.sampled_from(OPCODES), max_size=40).map(bytes)
fuzz_inputs = st.one_of(damaged_pickles(), random_streams, opcode_streams)


def _load_or_user_error(load, data: bytes) -> None:
    """Call the loader; a result or a UserError (with a message) are the only allowed outcomes."""
    try:
        load(data)
    except UserError as err:
        assert str(err).strip(), "a UserError must carry a message"


def test_seed_pickles_load_intact():
    """Without damage the loaders return the data, so the fuzz starts from valid inputs."""
    allowed = {**NUMPY_GLOBALS, **CONTAINER_GLOBALS}
    protocols = pickle.HIGHEST_PROTOCOL + 1
    for index, blob in enumerate(SEEDS):
        expected = _seed_objects()[index // protocols]
        assert pickle.dumps(restricted_loads(blob, allowed)) == pickle.dumps(expected)


def _survives_in_child(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter: a crash there fails the test instead of pytest."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_a_corrupt_dtype_state_is_refused_instead_of_crashing_the_process():
    """One byte changed in a numpy scalar pickle ('i8' -> 'a8') once forged a dtype of size -1."""
    done = _survives_in_child(
        "import pickle, numpy as np\n"
        "from crosskd.safe_pickle import CONTAINER_GLOBALS, NUMPY_GLOBALS, restricted_loads\n"
        "from crosskd.errors import UserError\n"
        "blob = pickle.dumps({'a': np.int64(3)}, protocol=4).replace(b'i8', b'a8')\n"
        "try:\n"
        "    restricted_loads(blob, {**NUMPY_GLOBALS, **CONTAINER_GLOBALS}, 'expert.pkl')\n"
        "except UserError as err:\n"
        "    print(err)\n"
        "import gc; gc.collect()\n")
    assert done.returncode == 0, f"loader crashed the interpreter (status {done.returncode})"
    assert "expert.pkl" in done.stdout


@FUZZ
@given(fuzz_inputs)
def test_restricted_loads_never_raises_anything_but_user_errors(data):
    _load_or_user_error(lambda blob: restricted_loads(blob, {**NUMPY_GLOBALS, **CONTAINER_GLOBALS}),
                        data)


@pytest.fixture(scope="module")
def scratch() -> Path:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@FUZZ
@given(data=fuzz_inputs)
def test_dataset_pickle_readers_never_raise_anything_but_user_errors(scratch, data):
    path = scratch / "features.pickle"
    path.write_bytes(data)
    _load_or_user_error(lambda _: load_small_pickle(path), data)
    _load_or_user_error(lambda _: spool_pickle(path, scratch / "spool.npy", np.dtype("float32"),
                                               max_rows=8), data)


@FUZZ
@given(data=damaged_checkpoints())
def test_checkpoint_reader_never_raises_anything_but_user_errors(scratch, data):
    path = scratch / "trained_model.pth"
    path.write_bytes(data)
    _load_or_user_error(lambda _: read_checkpoint(path), data)
