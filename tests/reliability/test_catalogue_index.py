"""Bad-input catalogue, search-index rows (docs/BAD_INPUTS.md I1-I11): a damaged or hostile
index folder, stored text that would drive a terminal, non-ASCII numbers on the command line,
and `crosskd report` on a folder that holds nothing to report on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from crosskd.cli import main
from crosskd.config import as_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.models import build_model
from crosskd.search.build import index_from_model, with_split
from crosskd.search.index import Index
from reliability_support import assert_one_line_error, tiny_config

REBUILD = "rebuild it with crosskd index"
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u202eevil"


@pytest.fixture(scope="module")
def built_index(pristine_dataset, tmp_path_factory) -> Path:
    """An index of the tiny dataset's evaluation split, embedded by a random model."""
    folder = tmp_path_factory.mktemp("index")
    experiment = as_experiment(with_split(tiny_config(pristine_dataset, folder / "saved"),
                                          None))
    torch.manual_seed(0)
    index = index_from_model(build_model(experiment.model), experiment,
                             RetrievalData.load(experiment.data))
    index.save(folder / "index")
    return folder / "index"


@pytest.fixture
def index(built_index, tmp_path) -> Path:
    """A private copy of the index, for one test to damage."""
    shutil.copytree(built_index, tmp_path / "index")
    return tmp_path / "index"


def _manifest(index: Path) -> dict:
    return json.loads((index / "manifest.json").read_text())


def _caption(index: Path) -> str:
    """A caption reference the index holds."""
    return f"{_manifest(index)['video_ids'][0]}:0"


def test_i1_a_truncated_vector_file_names_the_file_and_the_fix(cli, index):
    vectors = index / "groups" / "g0.npy"
    vectors.write_bytes(vectors.read_bytes()[:-100])
    assert_one_line_error(cli("search", index, "--caption", _caption(index)),
                          "groups/g0.npy", "not a readable .npy array", REBUILD)


def test_i2_a_manifest_field_of_the_wrong_type(cli, index):
    manifest = _manifest(index)
    manifest["dims"] = [str(d) for d in manifest["dims"]]
    (index / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(cli("search", index, "--caption", _caption(index)),
                          "manifest.json", "field 'dims' must be a list of", REBUILD)


def test_i3_a_missing_caption_file(cli, index):
    (index / "captions" / "owner.npy").unlink()
    assert_one_line_error(cli("search", index, "--caption", _caption(index)),
                          "captions/owner.npy: is missing", REBUILD)


def test_i4_member_positions_outside_the_collection(cli, index):
    members = index / "groups" / "g0.members.npy"
    np.save(members, np.load(members) + 1000)
    assert_one_line_error(cli("search", index, "--caption", _caption(index)),
                          "g0.members.npy", "positions outside", REBUILD)


def test_i5_a_file_linked_to_outside_the_index_folder(cli, index, tmp_path):
    outside = tmp_path / "elsewhere.npy"
    shutil.move(index / "availability.npy", outside)
    (index / "availability.npy").symlink_to(outside)
    assert_one_line_error(cli("search", index, "--caption", _caption(index)),
                          "'availability.npy' points outside", "must stay inside that folder")


def test_i6_serve_opens_an_index_with_the_same_checks(cli, index):
    (index / "captions" / "texts.json").write_text('["not", "a", "table"]')
    assert_one_line_error(cli("serve", index, "--port", "8765"), "captions/texts.json",
                          "must map indexed video ids to lists of caption texts", REBUILD)


def test_i7_stored_captions_and_ids_are_escaped_on_the_terminal(index, capsys):
    texts = json.loads((index / "captions" / "texts.json").read_text())
    for video_id in texts:
        texts[video_id] = [HOSTILE + text for text in texts[video_id]]
    (index / "captions" / "texts.json").write_text(json.dumps(texts))
    video_id = _manifest(index)["video_ids"][0]
    for query in (["--caption", f"{video_id}:0"], ["--video", video_id]):
        assert main(["search", str(index), *query, "-k", "3"]) == 0
        printed = capsys.readouterr().out
        assert "\x1b" not in printed and "\x07" not in printed and "\u202e" not in printed
        assert "\\x1b]0;pwned\\x07\\x1b[2J\\u202eevil" in printed


def test_i8_json_output_is_exact_ascii_json(index, capsys):
    texts = json.loads((index / "captions" / "texts.json").read_text())
    texts = {video_id: [HOSTILE] * len(captions) for video_id, captions in texts.items()}
    (index / "captions" / "texts.json").write_text(json.dumps(texts))
    assert main(["search", str(index), "--caption", _caption(index), "--json"]) == 0
    printed = capsys.readouterr().out
    assert printed.isascii() and all(ch.isprintable() for ch in printed.strip())
    assert json.loads(printed)["results"][0]["captions"][0] == HOSTILE


@pytest.mark.parametrize("reference", ["{video}:\u00b2", "{video}:\u0663", "{video}:\uff11"])
def test_i9_a_caption_number_in_non_ascii_digits(cli, index, reference):
    reference = reference.format(video=_manifest(index)["video_ids"][0])
    assert_one_line_error(cli("search", index, "--caption", reference),
                          "VIDEO_ID:INDEX with INDEX in ASCII digits")


@pytest.mark.parametrize("argv", [
    ["search", "{index}", "--caption", "{caption}", "-k", "\u0663"],
    ["search", "{index}", "--caption", "{caption}", "--candidates", "\uff15"],
    ["index", "--checkpoint", "{index}/manifest.json", "--out", "{index}2", "--backend", "ivf",
     "--nprobe", "\u0663"],
    ["index", "--checkpoint", "{index}/manifest.json", "--out", "{index}2", "--backend", "hnsw",
     "--ef-search", "\u00b2"],
])
def test_i10_numeric_flags_in_non_ascii_digits(cli, index, argv):
    argv = [a.format(index=index, caption=_caption(index)) for a in argv]
    assert_one_line_error(cli(*argv), f"argument {argv[-2]}", "is not a whole number", "ASCII digits")


def test_i11_report_on_a_folder_without_a_checkpoint_names_its_own_argument(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    line = assert_one_line_error(cli("report", run), f"RUN_OR_INDEX {run}",
                                 "holds no checkpoint (model_best.pth or checkpoint_last.pth)")
    assert "--resume" not in line
    line = assert_one_line_error(cli("report", tmp_path / "nope"), "RUN_OR_INDEX",
                                 "no such run folder, checkpoint or index folder")
    assert "--resume" not in line


def test_i12_index_from_a_folder_without_a_checkpoint_names_its_own_flag(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    line = assert_one_line_error(cli("index", "--checkpoint", run, "--out", tmp_path / "ix"),
                                 f"argument --checkpoint: {run}: the folder holds neither "
                                 "model_best.pth nor checkpoint_last.pth")
    assert "--resume" not in line and not (tmp_path / "ix").exists()


def test_i13_a_qbnorm_beta_that_would_overflow(cli, index):
    """A manifest's beta beyond MAX_BETA made every normalised score inf (a JSON the server
    cannot send); it is refused when the index is opened."""
    manifest = _manifest(index)
    manifest["qbnorm"] = {"beta": 1e30, "bank_size": 10}
    (index / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(cli("search", index, "--caption", _caption(index)), "manifest.json",
                          "qbnorm.beta", "at most 300", REBUILD)


def test_i14_an_api_qbnorm_switch_that_is_not_0_or_1(index):
    from fastapi.testclient import TestClient

    from crosskd.search.server import create_app

    client = TestClient(create_app(Index.load(index)), base_url="http://127.0.0.1:8000")
    for value in ("2", "yes", "\u00b9"):
        response = client.get("/search", params={"caption": _caption(index), "qbnorm": value})
        assert response.status_code == 400
        assert response.json()["error"].startswith("qbnorm must be 0 or 1")
