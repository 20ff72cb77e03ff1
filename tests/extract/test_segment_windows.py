"""Segments at extraction, piece by piece: the windows and shots a video is cut into, the
caption-to-segment overlap rule (a property test), each segment decoded on its own grid with
its own soundtrack slice in one streamed pass (memory of one segment, not of the video), the
bounded hand-over from the decoding threads, absolute times in what is recorded, and a
resumed video decoding only the segments not stored yet."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.extract.ahead import DEPTH, ahead
from crosskd.extract.cache import ResultCache, segment_result
from crosskd.extract.captions import TimedCaption
from crosskd.extract.decode import AUDIO_RATE, DecodeSpec, Span, VideoFile, decode
from crosskd.extract.demo_experts import ColourStatistics
from crosskd.extract.expert import Expert, Result
from crosskd.extract.overlap import assign_captions, caption_segments
from crosskd.extract.run import Extraction
from crosskd.extract.segmentation import (MIN_SHOT_SECONDS, Segmentation, parse_segmentation,
                                          segment_id, shot_windows, windows)
from crosskd.extract.shots import shot_cuts
from crosskd.extract.synthetic_parts import part_scenes, write_parts_video
from crosskd.extract.synthetic_videos import BACKGROUNDS

PART_SECONDS = 3.0


@pytest.fixture(scope="module")
def parts_video(tmp_path_factory) -> tuple[Path, list]:
    """Four 3-second parts, each on another background than the one before, with sound."""
    parts = part_scenes(4, seed=2)
    path = tmp_path_factory.mktemp("parts") / "parts.mp4"
    return write_parts_video(path, parts, PART_SECONDS), parts


# cutting a video

@pytest.mark.parametrize(("end", "length", "expected"), [
    (30.0, 10.0, [(0, 10), (10, 20), (20, 30)]),
    (30.5, 10.0, [(0, 10), (10, 20), (20, 30.5)]),       # 0.5 s < 1 s: joins the window before
    (31.5, 10.0, [(0, 10), (10, 20), (20, 30), (30, 31.5)]),
    (2.4, 2.0, [(0, 2.4)]),                                # 0.4 s < 2 / 4: joins
    (2.6, 2.0, [(0, 2), (2, 2.6)]),
    (4.0, 10.0, [(0, 4)]),                                 # shorter than one window
    (0.9, 0.6, [(0, 0.6), (0.6, 0.9)]),                    # 0.3 s >= 0.6 / 4 stays
])
def test_windows_are_consecutive_and_a_sliver_joins_the_one_before(end, length, expected):
    assert windows(0.0, end, length) == [(float(a), float(b)) for a, b in expected]


@given(st.integers(1, 10**7), st.integers(500, 10**6), st.integers(0, 10**6))
def test_windows_cover_the_span_without_gap_overlap_or_sliver(end_ms, length_ms, start_ms):
    start, end, length = start_ms / 1000, (start_ms + end_ms) / 1000, length_ms / 1000
    cut = windows(start, end, length)
    assert cut[0][0] == start and cut[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(cut, cut[1:]))
    sliver = min(1.0, length / 4)
    assert all(b - a >= sliver - 1e-9 for a, b in cut[1:] + cut[:-1]) or len(cut) == 1
    assert all(b - a <= length + sliver + 1e-9 for a, b in cut)


def test_shots_between_cuts_long_ones_in_windows_close_cuts_dropped():
    assert shot_windows([3.0, 6.0, 6.5, 14.6], 15.0, 30.0) == [(0, 3), (3, 6), (6, 15)]
    assert shot_windows([], 70.0, 30.0) == [(0, 30), (30, 60), (60, 70)]   # no cut: one shot
    assert shot_windows([-1.0, 0.2, 80.0], 10.0, 30.0) == [(0, 10)]


def test_segment_ids_are_video_at_index():
    assert [segment_id("a.b", i) for i in (0, 7, 12345)] == ["a.b@0000", "a.b@0007",
                                                            "a.b@12345"]


@pytest.mark.parametrize(("text", "expected"), [
    ("10", Segmentation("seconds", seconds=10.0)), ("2.5", Segmentation("seconds", 2.5)),
    (" shots ", Segmentation("shots")), ("0.5", Segmentation("seconds", 0.5))])
def test_the_segment_flag_takes_seconds_or_shots(text, expected):
    assert parse_segmentation(text) == expected


@pytest.mark.parametrize(("text", "shown"), [
    ("0", "out of range"), ("0.4", "out of range"), ("86401", "out of range"),
    ("ten", "neither 'shots' nor a number"), ("nan", "neither"), ("1e3", "neither"),
    ("-5", "neither"), ("٣", "neither"), ("inf", "neither"), ("", "neither")])
def test_the_segment_flag_refuses_anything_else_in_one_line(text, shown):
    with pytest.raises(ValueError, match=shown) as err:
        parse_segmentation(text)
    assert "\n" not in str(err.value)


def test_shot_detection_finds_the_cuts_between_parts(parts_video):
    path, _ = parts_video
    assert shot_cuts(path, 27.0, MIN_SHOT_SECONDS) == [3.0, 6.0, 9.0]


# which segments a timed caption belongs to

@pytest.mark.parametrize(("caption", "expected"), [
    ((1.0, 2.0), [0]),              # inside one segment
    ((8.0, 13.0), [1]),             # 2 s before the cut is less than half of its 5 s
    ((7.0, 13.0), [0, 1]),          # 3 s on each side: half of itself on each
    ((9.5, 11.0), [1]),
    ((0.0, 30.0), [0, 1, 2]),       # a long caption holds every segment inside it
    ((29.0, 45.0), [2]),            # cut at the video's end first
    ((30.0, 31.0), []),             # after the end
])
def test_a_caption_belongs_to_the_segments_it_half_fills(caption, expected):
    assert caption_segments(*caption, [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]) == expected


@st.composite
def cut_video_and_caption(draw):
    """Segments tiling a video (bounds in ms, as extraction keeps them), and a caption."""
    end = draw(st.integers(1, 10**6))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, end - 1)), max_size=12)) - {end})
    bounds = [0, *cuts, end]
    start = draw(st.integers(0, end + 5000))
    stop = draw(st.integers(start + 1, start + 10**6))
    segments = [(a / 1000, b / 1000) for a, b in zip(bounds, bounds[1:])]
    return segments, start / 1000, stop / 1000


@settings(max_examples=200)
@given(cut_video_and_caption())
def test_every_caption_inside_the_video_gets_a_segment_it_overlaps(case):
    segments, start, end = case
    chosen = caption_segments(start, end, segments)
    if start < segments[-1][1]:
        assert chosen, (segments, start, end)
    else:
        assert not chosen
    for position in chosen:
        seg_start, seg_end = segments[position]
        assert min(end, seg_end) > max(start, seg_start), (segments[position], start, end)


def test_captions_are_assigned_in_order_and_late_ones_counted():
    captions = [TimedCaption(0.0, 1.0, "a"), TimedCaption(1.5, 2.5, "b"),
                TimedCaption(5.0, 6.0, "late"), TimedCaption(0.5, 1.2, "c")]
    assigned, late = assign_captions(captions, [(0.0, 2.0), (2.0, 4.0)])
    assert assigned == [["a", "b", "c"], ["b"]] and late == 1


# decoding segments

def _background(frame: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.median(frame.reshape(-1, 3), axis=0))


def _nearest(colour: tuple[int, ...]) -> str:
    return min(BACKGROUNDS, key=lambda name: sum((a - b) ** 2 for a, b in
                                                 zip(BACKGROUNDS[name], colour)))


def test_each_segment_has_its_own_grid_frames_and_sound(parts_video):
    path, parts = parts_video
    spec = DecodeSpec(rates=(2.0, 4.0), pixel_dim=32, max_frames=4)
    spans = [Span(i * PART_SECONDS, (i + 1) * PART_SECONDS, last=i == 3) for i in range(4)]
    with VideoFile(path, spec) as video:
        decoded = list(video.spans(spans))
    assert [d.start for d in decoded] == [0.0, 3.0, 6.0, 9.0]
    for segment, part in zip(decoded, parts):
        # max_frames per segment: 6 targets at 2/s, 12 at 4/s thinned to 4, in each segment
        assert len(segment.frames[2.0]) == 4 and len(segment.frames[4.0]) == 4
        assert np.allclose(segment.times[2.0], [0.25, 1.25, 1.75, 2.75])
        assert {_nearest(_background(f)) for f in segment.frames[2.0]} == {part.background}
        assert segment.duration == PART_SECONDS
    whole = decode(path, DecodeSpec(rates=(2.0,), pixel_dim=32, max_frames=64))
    assert [len(d.audio) for d in decoded[:3]] == [int(PART_SECONDS * AUDIO_RATE)] * 3
    # the slices are the whole soundtrack, the last running to the track's end
    assert np.array_equal(np.concatenate([d.audio for d in decoded]), whole.audio)


def test_the_audio_limit_holds_per_segment_not_per_video(parts_video):
    path, _ = parts_video
    spec = DecodeSpec(rates=(1.0,), pixel_dim=16, max_audio_seconds=1.0)
    spans = [Span(i * PART_SECONDS, (i + 1) * PART_SECONDS, last=i == 3) for i in range(4)]
    with VideoFile(path, spec) as video:
        heard = [d.audio for d in video.spans(spans)]
    whole = decode(path, DecodeSpec(rates=(1.0,), pixel_dim=16)).audio
    for number, audio in enumerate(heard):
        first = int(number * PART_SECONDS * AUDIO_RATE)
        assert np.array_equal(audio, whole[first:first + AUDIO_RATE])


def test_segments_stream_in_the_memory_of_one(tmp_path):
    """Half a minute cut in 1 s segments: the decoder holds about one segment's frames,
    not the video's (every target of every segment is its own frame here)."""
    parts = part_scenes(10, seed=4)
    path = write_parts_video(tmp_path / "long.mp4", parts, 3.0, size=(96, 64), fps=12)
    spec = DecodeSpec(rates=(12.0,), pixel_dim=64, max_frames=64, audio_rate=None)
    spans = [Span(float(i), float(i + 1), last=i == 29) for i in range(30)]
    tracemalloc.start()
    try:
        total = 0
        with VideoFile(path, spec) as video:
            for segment in video.spans(spans):
                total += segment.frames[12.0].nbytes
                del segment
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one = total / len(spans)
    assert total > 20 * one and peak < 6 * one, (total, peak, one)


# handing items over from the decoding threads

def test_the_hand_over_waits_for_the_models_and_stops_with_them():
    made = []

    def produce(put):
        for number in range(50):
            put(number)
            made.append(number)

    taken = ahead([("a", produce)], workers=1)
    _, items = next(taken)
    assert next(items) == 0
    time.sleep(0.3)
    assert len(made) <= DEPTH + 1  # bounded look-ahead while the models work
    taken.close()  # the models stop (an error, Ctrl-C): the thread is not left waiting
    assert not [t for t in threading.enumerate() if t.name.startswith("decode")]


def test_an_error_in_a_decoding_thread_reaches_the_models():
    def produce(put):
        put(1)
        raise KeyError("broken")

    ((_, items),) = ahead([("a", produce)], workers=1)
    assert next(items) == 1
    with pytest.raises(KeyError, match="broken"):
        next(items)


# what extraction records of segments

class _TimedReader(Expert):
    """Reads one line at 0.5-1.0 s of whatever it is given, and counts its calls."""

    name, input_kind, output_kind, modality = "timed", "frames", "fixed", "scene.timed.0"
    dim, rate, pixel_dim = 1, 2.0, 16
    calls = 0

    def compute(self, video):
        type(self).calls += 1
        return Result(np.ones(1, np.float32), text="x",
                      timed_text=[{"text": "x", "start": 0.5, "end": 1.0}])


def test_segment_times_are_the_videos_and_a_resumed_video_decodes_only_what_is_missing(
        parts_video, tmp_path):
    path, _ = parts_video
    experts = [_TimedReader(), ColourStatistics()]
    spec = DecodeSpec(rates=(2.0, 4.0), pixel_dim=32, audio_rate=None)
    cache = ResultCache(tmp_path / "cache", {"test": 1})
    job = Extraction({"v": path}, experts, cache, tmp_path / "out", spec,
                     segmentation=Segmentation("seconds", 5.0))
    assert job.run(["v"]) == 1
    table = cache.meta("v")["segments"]
    assert [(s["start"], s["end"]) for s in table] == [(0, 5), (5, 10), (10, 12)]
    second = cache.meta(segment_result("v", "v@0001"))
    assert second["timed_text"]["scene.timed.0"] == [{"text": "x", "start": 5.5, "end": 6.0}]
    assert 5 <= second["keyframe"]["time"] < 10
    assert second["keyframe"]["file"] == "keyframes/v@0001.jpg"
    assert (tmp_path / "out" / "keyframes" / "v@0001.jpg").is_file()
    # killed after two segments: the video's entry and its last segment are not stored
    cache.path("v").unlink()
    cache.path(segment_result("v", "v@0002")).unlink()
    _TimedReader.calls = 0
    assert job.run(["v"]) == 1
    assert _TimedReader.calls == 1 and cache.meta("v")["segments"] == table
