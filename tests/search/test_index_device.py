"""`crosskd index --device`: where a collection is embedded (the CPU unless asked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cli_runs import refused_index
from crosskd.cli import main

#: what an index holds of the model's embeddings
EMBEDDINGS = ("captions/embeddings.npy", "captions/weights.npy", "groups/g0.npy")


def _index(tiny_collection, out: Path, *args: str) -> Path:
    folder, _, checkpoint, _ = tiny_collection
    assert main(["index", "--checkpoint", str(checkpoint), "--config",
                 str(folder / "config.json"), "--out", str(out), *args]) == 0
    return out


def test_the_cpu_device_builds_the_default_index(tmp_path, tiny_collection, capsys):
    default = _index(tiny_collection, tmp_path / "default")
    on_cpu = _index(tiny_collection, tmp_path / "cpu", "--device", "cpu")
    for name in (*EMBEDDINGS, "text_model.pt", "manifest.json"):
        assert (on_cpu / name).read_bytes() == (default / name).read_bytes(), name


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", "--device 'gpu': expected a GPU index (0), 'cpu' or 'cuda:N'"),
    pytest.param("cuda:1", "--device 'cuda:1': no CUDA GPU is visible; use --device cpu",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
])
def test_a_device_that_cannot_run_is_one_line(tmp_path, tiny_collection, capsys, device,
                                              message):
    line = refused_index(capsys, tiny_collection, tmp_path / "index", "--device", device)
    assert line == f"crosskd index: error: {message}"
    assert not (tmp_path / "index").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_index_holds_the_cpu_embeddings(tmp_path, tiny_collection, capsys):
    on_cpu = _index(tiny_collection, tmp_path / "cpu")
    on_gpu = _index(tiny_collection, tmp_path / "gpu", "--device", "cuda", "--qbnorm")
    for name in EMBEDDINGS:
        np.testing.assert_allclose(np.load(on_gpu / name), np.load(on_cpu / name), atol=1e-4)
    assert (on_gpu / "text_model.pt").read_bytes() == (on_cpu / "text_model.pt").read_bytes()
