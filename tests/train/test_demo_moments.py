"""The demo's moment step judges a hit by the captions of the part it overlaps: a part the
query was given (its own, or the same scene in another video) is right; the part next to it
is not."""

from __future__ import annotations

from dataclasses import replace

from crosskd.commands.demo_moments import ASKED, Answer, answer_query, moment_parts
from crosskd.extract.synthetic_parts import Part
from crosskd.search.moments import Moment
from crosskd.search.query import Hit


def _hit(part: Part) -> Hit:
    index = int(part.start // 2)
    return Hit(f"{part.video_id}@{index:04d}", 0.5, {}, moment=Moment(part.video_id,
                                                                       part.start, part.end))


class _Index:
    """Answers each caption with the segment of the part it names, unless told otherwise."""

    def __init__(self, parts: list[Part], answers: dict[str, Part]):
        self.own = {text: part for part in parts for text in part.scene.captions()[:2]}
        self.answers = answers

    def query(self, text: str) -> str:
        return text

    def search(self, text: str, k: int) -> list[Hit]:
        return [_hit(self.answers.get(text, self.own[text]))]

    def search_many(self, texts: list[str], k: int) -> list[list[Hit]]:
        return [self.search(text, k) for text in texts]


def _answer(parts: list[Part], answers: dict[str, Part] | None = None) -> Answer:
    return answer_query(_Index(parts, answers or {}), parts)


def test_every_part_found_is_right_and_counted(tmp_path):
    parts = moment_parts(seed=0)
    answer = _answer(parts)
    assert answer.right and (answer.found, answer.queries) == (64, 64)
    assert answer.query == parts[ASKED].scene.captions()[0]
    assert answer.as_json()["hit"]["segment_id"] == "long0003@0004"
    assert answer.lines(tmp_path)[2].endswith(": the right part")


def test_the_part_next_to_the_asked_one_is_wrong(tmp_path):
    parts = moment_parts(seed=0)
    asked, neighbour = parts[ASKED], parts[ASKED - 1]
    answer = _answer(parts, {text: neighbour for text in asked.scene.captions()})
    assert not answer.right and answer.found == 62  # both of its captions missed
    assert answer.lines(tmp_path)[2] == (
        "best:    long0003 00:06-00:08 (segment long0003@0003, score +0.500): "
        "not the right part, which is long0003 00:08-00:10")
    assert answer.as_json()["part"] == {"video_id": "long0003", "start": 8.0, "end": 10.0}


def test_the_same_scene_in_another_video_is_right():
    parts = moment_parts(seed=0)
    twin = replace(parts[1], scene=replace(parts[ASKED].scene, video_id="twin"))
    parts[1] = twin
    answer = _answer(parts, {parts[ASKED].scene.captions()[0]: twin})
    assert answer.right and answer.hit.moment == Moment("long0000", 2.0, 4.0)
