"""`crosskd index` and `crosskd search` end to end, and their one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_runs import refused_index, search_json
from crosskd.cli import main


def test_index_then_search_by_caption_features_and_video(tmp_path, tiny_collection, capsys):
    folder, _, checkpoint, _ = tiny_collection
    out = tmp_path / "index"
    assert main(["index", "--checkpoint", str(checkpoint), "--config",
                 str(folder / "config.json"), "--out", str(out), "--dtype", "float16"]) == 0
    printed = capsys.readouterr().out
    assert "indexed 18 videos" in printed and "missing" in printed
    answer = search_json(capsys, out, "--caption", "video34:0", "-k", "4")
    assert [set(hit) >= {"video_id", "score", "contributions", "captions"}
            for hit in answer["results"]] == [True] * 4
    scores = [hit["score"] for hit in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    features = np.random.default_rng(0).standard_normal((5, 300)).astype(np.float32)
    np.save(tmp_path / "q.npy", features)
    assert len(search_json(capsys, out, "--features", tmp_path / "q.npy", "-k", "3")["results"]) == 3
    captions = search_json(capsys, out, "--video", "video34", "-k", "2")["results"]
    assert len(captions) == 2 and ":" in captions[0]["caption"]
    assert main(["search", str(out), "--caption", "video34:0", "-k", "2"]) == 0
    assert "video" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["a person cooking"], "--caption VIDEO_ID:INDEX"),
    (["--caption", "nope:0"], "no video 'nope'"),
    (["--caption", "video34"], "VIDEO_ID:INDEX"),
    (["--caption", "video34:0", "-k", "0"], "k must be"),
    (["text", "--caption", "video34:0"], "give one query"),
    ([], "give one query"),
])
def test_bad_queries_end_in_one_line(tiny_collection, capsys, args, message):
    _, _, _, index = tiny_collection
    assert main(["search", str(index), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_folder_that_is_not_an_index(tmp_path, capsys):
    assert main(["search", str(tmp_path), "--caption", "v:0"]) == 2
    assert "not a search index" in capsys.readouterr().err


def test_index_from_the_checkpoints_config_and_a_data_folder(tmp_path, tiny_collection, capsys):
    folder, config, _, _ = tiny_collection
    import torch
    from crosskd.checkpoint.run_state import FORMAT
    state = torch.load(folder / "model.pth", weights_only=True)
    ours = tmp_path / "checkpoint.pth"
    torch.save({"format": FORMAT, "state_dict": state, "config_json": json.dumps(config)}, ours)
    out = tmp_path / "index"
    assert main(["index", "--checkpoint", str(ours), "--data", str(folder / "MSRVTT"),
                 "--split", "full-val", "--out", str(out)]) == 0
    assert "of MSRVTT full-val" in capsys.readouterr().out
    assert main(["index", "--checkpoint", str(ours), "--out", str(out)]) == 2
    assert "holds MSRVTT full-val, another collection than MSRVTT full-test; give --rebuild" \
        in capsys.readouterr().err
    assert main(["index", "--checkpoint", str(ours), "--out", str(tmp_path)]) == 2
    assert f"{tmp_path} exists and is not a search index" in capsys.readouterr().err


def test_a_missing_checkpoint_is_named_by_its_flag(tmp_path, capsys):
    missing = tmp_path / "nope.pth"
    with pytest.raises(SystemExit) as exit_:
        main(["index", "--checkpoint", str(missing), "--out", str(tmp_path / "index")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --checkpoint: {missing}: no such checkpoint" in err
    assert "--resume" not in err


def test_approximate_options_reach_the_backend(tmp_path, tiny_collection, capsys, monkeypatch):
    pytest.importorskip("faiss", reason="the approximate backends are faiss indexes")
    import crosskd.search.groups as index_module
    from crosskd.search import backends
    built = []

    def approximate_even_when_small(kind, vectors, column=None, **options):
        built.append(options)
        return backends.build_backend(kind, vectors, approximate_from=0, column=column,
                                      **options)

    monkeypatch.setattr(index_module, "build_backend", approximate_even_when_small)
    folder, _, checkpoint, exact_index = tiny_collection
    out = tmp_path / "index"
    assert main(["index", "--checkpoint", str(checkpoint), "--config", str(folder / "config.json"),
                 "--out", str(out), "--backend", "hnsw", "--project-to", "8",
                 "--ef-search", "64"]) == 0
    capsys.readouterr()
    assert built and all(options == {"project_to": 8, "ef_search": 64} for options in built)
    approximate = search_json(capsys, out, "--caption", "video34:0", "-k", "3",
                              "--candidates", "18")
    exact = search_json(capsys, exact_index, "--caption", "video34:0", "-k", "3")
    assert [hit["video_id"] for hit in approximate["results"]] == \
        [hit["video_id"] for hit in exact["results"]]


@pytest.mark.parametrize("args, message", [
    (["--nprobe", "4"], "--nprobe only applies to --backend ivf"),
    (["--backend", "hnsw", "--nprobe", "4"], "--nprobe only applies to --backend ivf"),
    (["--project-to", "8", "--ef-search", "9"], "--project-to only applies to --backend ivf "
     "or hnsw; --ef-search only applies to --backend hnsw"),
    (["--backend", "ivf", "--nprobe", "0"],
     "argument --nprobe: 0 is out of range; use a whole number of at least 1"),
    (["--backend", "hnsw", "--ef-search", "1048577"],
     "argument --ef-search/--ef_search: 1048577 is out of range; use a whole number from 1 "
     "to 1048576"),
])
def test_approximate_options_are_checked(tmp_path, tiny_collection, capsys, args, message):
    assert message in refused_index(capsys, tiny_collection, tmp_path / "index", *args)


def test_candidates_are_bounded(tiny_collection, capsys):
    """faiss allocates `candidates` entries per query: a huge count is refused by argparse,
    not a MemoryError from inside faiss."""
    with pytest.raises(SystemExit) as exit_:
        main(["search", str(tiny_collection[3]), "--caption", "video34:0",
              "--candidates", "10000000000"])
    assert exit_.value.code == 2
    assert "argument --candidates: 10000000000 is out of range; use a whole number from 1 to " \
        "1048576" in capsys.readouterr().err
