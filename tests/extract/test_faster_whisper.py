"""The speech expert's faster-whisper backend: a tiny random Whisper converted offline by
CTranslate2's converter (shape and plumbing: tokens, transcript, word times), its options and
errors in one line, and, where CROSSKD_FASTER_WHISPER_MODEL names a real model folder, speech
synthesised by espeak-ng transcribed back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest


from crosskd.cli import main  # noqa: E402
from crosskd.errors import UserError  # noqa: E402
from crosskd.extract.decode import decode  # noqa: E402
from crosskd.extract.encoder import words  # noqa: E402
from crosskd.extract.run import decode_spec  # noqa: E402
from crosskd.extract.text_encoders import build_text_encoder  # noqa: E402
from crosskd.extract.video_experts import build_experts  # noqa: E402
from videos import odd_videos  # noqa: E402

NEEDS = "the faster-whisper backend needs faster-whisper: pip install \"crosskd[speech]\""
REAL_MODEL = "CROSSKD_FASTER_WHISPER_MODEL"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("faster_whisper", reason=NEEDS)
    pytest.importorskip("transformers", reason="converting the tiny model needs transformers")
    from tiny_hf import save_tiny_whisper_ct2

    return save_tiny_whisper_ct2(tmp_path_factory.mktemp("ct2") / "whisper-tiny-ct2")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return odd_videos(tmp_path_factory.mktemp("videos"))


def _whisper(**options):
    (expert,) = build_experts("whisper", {"whisper": {"backend": "faster-whisper", **options}},
                              text_encoder=build_text_encoder("demo"))
    return expert


def test_tiny_converted_whisper_gives_tokens_text_and_word_times(tiny, clips):
    expert = _whisper(weights=str(tiny), language="en", beam="2")
    assert type(expert).__name__ == "FasterWhisperSpeech" and expert.beam == 2
    provenance = expert.provenance()
    assert provenance["options"]["backend"] == "faster-whisper"
    assert provenance["weights"].startswith("sha256:") and provenance["modality"] == "speech"
    assert provenance["options"]["compute_type"] == "int8"
    decoded = decode(clips["plain"], decode_spec([expert]))
    result = expert.compute(decoded)
    assert result.text is not None  # random weights say random words, or nothing
    assert expert.compute(decoded).text == result.text  # no sampling fallback: repeatable
    if result.value is not None:
        assert result.value.shape == (max(1, len(words(result.text))), 300)
        assert result.value.dtype == np.float32
        assert result.timed_text and json.loads(json.dumps(result.timed_text)) == result.timed_text
        assert all(0 <= w["start"] <= w["end"] and 0 <= w["probability"] <= 1
                   for w in result.timed_text)
    silent = decode(clips["silent"], decode_spec([expert]))
    assert expert.compute(silent).value is None


def test_extract_records_the_backend_and_word_times(tiny, clips, tmp_path):
    folder = clips["plain"].parent
    captions = tmp_path / "captions.csv"
    captions.write_text("video,caption\nplain,a red circle\nsilent,a blue square\nvfr,a cross\n")
    out = tmp_path / "data"
    assert main(["extract", str(folder), "--captions", str(captions), "--out", str(out),
                 "--experts", "demo-colour,whisper", "--text-encoder", "demo",
                 "--expert-option", "whisper:backend=faster-whisper",
                 "--expert-option", f"whisper:weights={tiny}",
                 "--expert-option", "whisper:language=en"]) == 0
    record = json.loads((out / "extraction.json").read_text())
    (speech,) = [e for e in record["experts"] if e["name"] == "whisper"]
    assert speech["options"]["backend"] == "faster-whisper"
    assert speech["versions"]["ctranslate2"] and speech["file"].endswith("speech-tokens.pickle")
    plain = record["videos"]["plain"]
    if "speech" in plain["texts"]:
        assert plain["timed_text"]["speech"][0].keys() == {"word", "start", "end", "probability"}
    assert "speech" in record["videos"]["silent"]["missing"]


@pytest.mark.parametrize("options, message", [
    ({"backend": "nope"}, "backend='nope' is not one of transformers, faster-whisper"),
    ({"language": "xx"}, "language='xx' is not a Whisper language code"),
    ({"beam": "99"}, "beam=99 is out of range"),
    ({"beam": "\u00b2"}, "whole number"),
    ({"compute_type": "int3"}, "compute_type='int3' is not one of"),
    ({"weights": "/nonexistent"}, "no model.bin); make one with ct2-transformers-converter"),
])
def test_bad_options_are_one_line(options, message):
    pytest.importorskip("faster_whisper", reason=NEEDS)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _whisper(**options)


def test_a_missing_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(UserError, match=r"needs faster-whisper .*crosskd\[speech\]"):
        _whisper()


def test_offline_the_error_names_the_weights_option(tmp_path):
    pytest.importorskip("faster_whisper", reason=NEEDS)
    code = ("from crosskd.extract.video_experts import build_experts\n"
            "from crosskd.extract.text_encoders import build_text_encoder\n"
            "from crosskd.errors import UserError\n"
            "try:\n build_experts('whisper', {'whisper': {'backend': 'faster-whisper', "
            "'model': 'no-such-org/no-such-whisper'}}, text_encoder=build_text_encoder('demo'))\n"
            "except UserError as err:\n print(err)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert "--expert-option whisper:weights=DIR" in out.stdout, out.stdout + out.stderr


def _spoken(tmp_path, sentence: str) -> np.ndarray:
    """espeak-ng's voice saying `sentence`, as 16 kHz mono float32 samples."""
    import av

    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), sentence], check=True, timeout=60)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
    with av.open(str(wav)) as container:
        pieces = [out.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                  for out in resampler.resample(frame)]
    pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(pieces)


@pytest.mark.skipif(not os.environ.get(REAL_MODEL), reason=f"set {REAL_MODEL} to a faster-whisper "
                    "model folder (e.g. ct2-transformers-converter of openai/whisper-tiny.en)")
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install "
                    "espeak-ng) to synthesise the speech")
def test_a_real_model_transcribes_synthesised_speech(tmp_path):
    from crosskd.extract.synthetic_videos import frames, scenes, write_video

    sentence = "the red circle moves to the left of the green square"
    samples = _spoken(tmp_path, sentence)
    scene = scenes(1)[0]
    seconds = len(samples) / 16000
    path = write_video(tmp_path / "spoken.mp4", frames(scene, 64, 48, int(seconds * 4) + 1), 4,
                       samples)
    expert = _whisper(weights=os.environ[REAL_MODEL], language="en")
    result = expert.compute(decode(path, decode_spec([expert])))
    heard = words(result.text)
    assert len(set(heard) & set(words(sentence))) >= 0.7 * len(set(words(sentence))), heard
    starts = [w["start"] for w in result.timed_text]
    assert starts == sorted(starts) and starts[-1] <= seconds + 0.5
