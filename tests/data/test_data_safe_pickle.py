"""Restricted unpickling: allowed data loads, code-running pickles are refused unrun."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from crosskd.data.pickles import ExpertStore, load_small_pickle, spool_pickle
from crosskd.safe_pickle import (CONTAINER_GLOBALS, NUMPY_GLOBALS, CorruptPickleError,
                                 UnsafePickleError, restricted_loads)

ALLOWED = {**NUMPY_GLOBALS, **CONTAINER_GLOBALS}


class _Payload:
    """A pickle whose loading would create a marker file (if it were ever run)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips(protocol):
    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.float64(1.5), {1, 2}],
            "c": float("nan"), "d": np.array(["x", "yz"]), "e": np.float16}
    loaded = restricted_loads(pickle.dumps(data, protocol=protocol), ALLOWED)
    np.testing.assert_array_equal(loaded["a"], data["a"])
    assert loaded["b"][1] == {1, 2} and loaded["e"] is np.float16


@pytest.mark.parametrize("load", ["generic", "dataset", "spool"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, load):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"video1": _Payload(str(marker))}))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*posix\.mkdir|evil\.pkl.*mkdir"):
        if load == "generic":
            restricted_loads(path.read_bytes(), ALLOWED, what=str(path))
        elif load == "dataset":
            load_small_pickle(path)
        else:
            spool_pickle(path, tmp_path / "out.npy", np.float32, None)
    assert not marker.exists()


def test_truncated_pickle_is_corrupt_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"v": np.ones((50, 4), np.float32)})[:-40])
    with pytest.raises(CorruptPickleError, match="cut.pkl"):
        load_small_pickle(path)
    with pytest.raises(CorruptPickleError, match="cut.pkl"):
        spool_pickle(path, tmp_path / "out.npy", np.float32, None)


def _expert_store_pickle(module: str, protocol: int) -> bytes:
    """Bytes of an original-style ExpertStore pickled under `module`, built without it."""
    state = {"keys": ["v1", "v2"], "dim": 3, "store_dtype": np.float16,
             "store": np.array([[1, 2, 3], [np.nan] * 3], np.float16),
             "keymap": {"v1": 0, "v2": 1}, "missing": {"v2"}}

    body = pickle.dumps(state, protocol=protocol)
    # Wrap the state in NEWOBJ of `module.ExpertStore` + BUILD, as pickling the real class does.
    head = b"\x80\x02" + b"c" + f"{module}\nExpertStore\n".encode() + b")\x81"
    return head + body[2:-1] + b"b."


@pytest.mark.parametrize("module", ["datastructures", "utils.datastructures"])
def test_original_expert_store_is_rebuilt_without_importing_it(tmp_path, module):
    path = tmp_path / "store.pickle"
    path.write_bytes(_expert_store_pickle(module, 2))
    store = load_small_pickle(path)
    assert isinstance(store, ExpertStore)
    assert store.keys == ["v1", "v2"] and store.missing == {"v2"} and store.dim == 3
    spooled = spool_pickle(path, tmp_path / "rows.npy", np.float32, None)
    assert spooled.store.rows == 2
    assert np.load(tmp_path / "rows.npy")[0].tolist() == [1.0, 2.0, 3.0]
