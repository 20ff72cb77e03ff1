"""Each pretrained expert on its real architecture class at a tiny size with random weights,
loaded through the local-weights path; offline, the error names that path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("transformers", reason="pretrained experts need crosskd[extract]")

from crosskd.cli import main  # noqa: E402
from crosskd.data.pickles import load_small_pickle  # noqa: E402
from crosskd.errors import UserError  # noqa: E402
from crosskd.experts import TOKEN_DIMS  # noqa: E402
from crosskd.extract.decode import DecodeSpec, decode  # noqa: E402
from crosskd.extract.run import decode_spec  # noqa: E402
from crosskd.extract.text_encoders import build_text_encoder  # noqa: E402
from crosskd.extract.video_experts import EXPERT_SETS, EXPERTS, build_experts  # noqa: E402
from tiny_hf import save_tiny_expert, tiny_models  # noqa: E402
from videos import odd_videos  # noqa: E402

PRETRAINED = EXPERT_SETS["default"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    models = tiny_models()
    return {name: (save_tiny_expert(name, model, root / name), model)
            for name, model in models.items()}


@pytest.fixture(scope="module")
def clip_video(tmp_path_factory):
    return odd_videos(tmp_path_factory.mktemp("videos"))


@pytest.mark.parametrize("name", PRETRAINED)
def test_expert_runs_its_architecture_from_local_weights(name, saved, clip_video):
    folder, reference = saved[name]
    (expert,) = build_experts(name, {name: {"weights": str(folder)}},
                              text_encoder=build_text_encoder("demo"))
    # the weights loaded are the ones saved, tensor for tensor
    loaded, original = expert.model.state_dict(), reference.state_dict()
    assert loaded.keys() == original.keys()
    assert all(np.array_equal(loaded[k].numpy(), original[k].numpy()) for k in original)
    video = decode(clip_video["plain"], decode_spec([expert]))
    result = expert.compute(video)
    provenance = expert.provenance()
    assert provenance["weights"].startswith("sha256:") and provenance["dim"] == expert.dim
    if expert.output_kind == "tokens":
        assert expert.dim == TOKEN_DIMS[expert.modality]
    if name == "whisper":  # random weights transcribe random words, or nothing
        assert result.text is not None
        assert result.value is None or result.value.shape[1] == 300
        silent = decode(clip_video["silent"], decode_spec([expert]))
        assert expert.compute(silent).value is None
        return
    assert result.value is not None and result.value.dtype == np.float32
    assert result.value.shape[-1] == expert.dim and np.isfinite(result.value).all()
    if name == "ast":
        assert result.value.shape[0] == 2  # one token per second of the 2 s soundtrack
    if name == "clip":  # and its per-frame features, whose mean is the fixed one
        assert result.frames.shape == (4, expert.dim)
        np.testing.assert_allclose(result.frames.mean(axis=0), result.value, rtol=1e-5)


def test_extract_with_pretrained_experts_writes_their_files(saved, clip_video, tmp_path):
    folder = clip_video["plain"].parent
    captions = tmp_path / "captions.csv"
    captions.write_text("video,caption\n" + "".join(
        f"{name},a {name} clip\n" for name in ("plain", "silent", "vfr", "portrait")))
    options = [f"--expert-option={name}:weights={saved[name][0]}" for name in ("clip", "ast",
                                                                               "whisper")]
    out = tmp_path / "data"
    assert main(["extract", str(folder), "--captions", str(captions), "--out", str(out),
                 "--experts", "clip,ast,whisper", "--text-encoder", "demo", *options]) == 0
    record = json.loads((out / "extraction.json").read_text())
    clip = next(e for e in record["experts"] if e["name"] == "clip")
    assert clip["modality"] == "appearance.clip-vit-base-patch32.0" and clip["fps"] == 2.0
    root = out / "high-quality/structured-symlinks"
    frames = load_small_pickle(root / clip["frames_file"])
    assert frames["plain"].shape == (4, clip["dim"])
    assert record["videos"]["silent"]["missing"] == ["audio", "speech"]
    config = json.loads((out / "config.json").read_text())
    # random Whisper weights may hear no word in any video: speech is then left out
    heard = [name for name in ("audio", "speech")
             if any(name not in entry["missing"] for entry in record["videos"].values())]
    assert "audio" in heard and config["experts"]["modalities"] == [clip["modality"], *heard]
    speech = load_small_pickle(root / "aggregated_speech_feats/speech-tokens.pickle")
    assert all(np.isnan(speech[vid]) or speech[vid].shape[1] == 300 for vid in speech)


def test_open_clip_that_cannot_be_imported_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # what a missing package gives
    with pytest.raises(UserError, match="cannot import open_clip .*--experts clip"):
        build_experts("open-clip")


def test_open_clip_expert_on_random_weights(clip_video):
    pytest.importorskip("open_clip", reason="open_clip imports torchvision, which cannot be "
                        "imported beside this torch build; install both to run this test")
    (expert,) = build_experts("open-clip", {"open-clip": {"pretrained": ""}})
    result = expert.compute(decode(clip_video["plain"], decode_spec([expert])))
    assert result.value.shape == (expert.dim,) and result.frames.shape[1] == expert.dim


def test_every_registered_expert_says_its_kinds():
    for name, cls in EXPERTS.items():
        assert cls.input_kind in ("frames", "clips", "audio", "speech"), name
        assert cls.output_kind in ("fixed", "tokens"), name


def test_unknown_and_clashing_experts_are_one_line():
    with pytest.raises(UserError, match="unknown expert 'nope'"):
        build_experts("demo,nope")
    with pytest.raises(UserError, match="both stored as 'audio'"):
        build_experts("demo-audio,ast", {"ast": {"weights": "/nonexistent"}})


def test_without_network_the_error_names_the_weights_option():
    code = ("from crosskd.extract.video_experts import build_experts\n"
            "from crosskd.errors import UserError\n"
            "try:\n build_experts('clip', {'clip': {'model': 'no-such-org/no-such-clip'}})\n"
            "except UserError as err:\n print(err)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert "--expert-option clip:weights=DIR" in out.stdout, out.stdout + out.stderr


def test_decode_spec_serves_every_expert(saved):
    experts = build_experts("demo")
    spec = decode_spec(experts)
    assert spec.rates == (4.0, 8.0) and spec.pixel_dim == 64 and spec.audio_rate == 16000
    assert decode_spec(experts[:1]).audio_rate is None
    assert isinstance(spec, DecodeSpec)


def test_speech_provenance_changes_with_the_text_encoders_weights(saved):
    """The result cache is keyed by each expert's provenance: transcripts turned into tokens
    by another word-vector file must not be taken from the cache."""
    folder, _ = saved["whisper"]
    records = [build_experts("whisper", {"whisper": {"weights": str(folder)}},
                             text_encoder=build_text_encoder("demo", {"dim": dim}))[0]
               .provenance() for dim in (300, 301)]
    assert records[0]["options"] != records[1]["options"]
