"""The demo's moments: a few long synthetic videos made of parts, each part a scene of the
short clips' vocabulary and as long as a clip, extracted into segments as long as the parts
beside the demo's dataset, indexed with the model trained on the short clips, and one query
answered with the moment it names.

The parts are drawn with other seeds than the short clips (`seed + 1`, `seed + 2`, ...), so
no long video repeats the clips in order; a combination may still recur by chance, as in any
collection of the same vocabulary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from crosskd.config import apply_overrides
from crosskd.extract import training_plan
from crosskd.extract.segmentation import SECONDS, Segmentation
from crosskd.extract.synthetic_parts import Part, collection_parts, write_parts_collection
from crosskd.search.index import Index
from crosskd.search.moments import Moment
from crosskd.search.query import Hit

log = logging.getLogger(__name__)

#: 4 videos of 8 parts: 32 moments of 2 s (the length of a short clip,
#: synthetic_videos.write_collection), so a segment shows what a clip shows.
LONG_VIDEOS, PARTS, PART_SECONDS = 4, 8, 2.0
#: the timed captions of each part (wordings of its scene; the first names every attribute)
CAPTIONS_PER_PART = 2
VIDEOS, DATA, INDEX, ANSWER = "moments-videos", "moments-data", "moments-index", "moment.json"
#: the part whose first caption is the demo's query: the middle of the last video
ASKED = (LONG_VIDEOS - 1) * PARTS + PARTS // 2


def moment_parts(seed: int) -> list[Part]:
    """The long videos' parts, drawn with seeds after the short clips' `seed`."""
    return collection_parts(LONG_VIDEOS, PARTS, PART_SECONDS, seed + 1)


def extract_moments(out: Path, seed: int) -> Path:
    """The long videos under out/moments-videos with their timed captions, extracted with
    the demo experts in segments of PART_SECONDS into out/moments-data."""
    from crosskd.extract.job import ExtractOptions, extract

    started = time.monotonic()
    captions = write_parts_collection(out / VIDEOS, LONG_VIDEOS, PARTS, PART_SECONDS, seed + 1,
                                      captions_per_part=CAPTIONS_PER_PART)
    with _split_sizes_unsaid():
        extract(ExtractOptions(videos=out / VIDEOS, captions=captions, out=out / DATA,
                               experts="demo", text_encoder="demo", seed=seed,
                               segmentation=Segmentation(SECONDS, PART_SECONDS)))
    log.info("demo: %d long videos of %d parts in %s, extracted in %g s segments (%.0f s)",
             LONG_VIDEOS, PARTS, out / VIDEOS, PART_SECONDS, time.monotonic() - started)
    return out / DATA


@contextlib.contextmanager
def _split_sizes_unsaid() -> Iterator[None]:
    """Extraction warns that 8-segment val and test splits say little; the demo only
    searches this dataset, never trains or evaluates on it, so the warning would mislead."""
    logger = logging.getLogger(training_plan.__name__)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def moments_config(config: dict[str, Any], data: Path) -> dict[str, Any]:
    """The trained model's config reading the segmented dataset `data`."""
    return apply_overrides(config, [("data_loader.args.data_dir", json.dumps(str(data)))])


@dataclass(frozen=True)
class Answer:
    """The demo's query, the part it was written for, the index's best hit, and how many of
    the parts' captions find their part first."""

    query: str
    asked: Moment
    hit: Hit
    right: bool
    found: int
    queries: int

    def as_json(self) -> dict[str, Any]:
        """What moment.json keeps (no paths, so one seed gives the same file anywhere)."""
        asked = self.asked
        return {"query": self.query, "hit": self.hit.as_json(), "right": self.right,
                "part": {"video_id": asked.video_id, "start": asked.start, "end": asked.end},
                "parts_found": {"found": self.found, "queries": self.queries}}

    def lines(self, out: Path) -> list[str]:
        """The demo's last lines: the query, its best moment, and the search to run next."""
        moment, index = self.hit.moment, out / INDEX
        verdict = ("the right part" if self.right else
                   f"not the right part, which is {self.asked.video_id} {self.asked.clock()}")
        return [f"moments: {index} ({LONG_VIDEOS} videos of {PARTS} parts, "
                f"{PART_SECONDS:g} s each, in {PART_SECONDS:g} s segments; "
                f"answer in {out / ANSWER})",
                f'query:   "{self.query}"',
                f"best:    {moment.video_id} {moment.clock()} (segment {self.hit.item_id}, "
                f"score {self.hit.score:+.3f}): {verdict}",
                f"parts:   {self.found} of {self.queries} part captions find their part "
                "first",
                f"next:    crosskd search {shlex.quote(str(index))} {shlex.quote(self.query)} "
                "--per-video"]


def answer_query(index: Index, parts: list[Part]) -> Answer:
    """The best hit for the first caption of the ASKED part, and each part caption's check."""
    asked = parts[ASKED]
    query = asked.scene.captions()[0]
    hit = index.search(query, k=1)[0]
    captions = [text for part in parts for text in _timed_captions(part)]
    best = index.search_many([index.query(text) for text in captions], k=1)
    found = sum(_named(parts, text, hits[0]) for text, hits in zip(captions, best))
    log.info("demo: %d of %d part captions find their part first", found, len(captions))
    return Answer(query, Moment(asked.video_id, asked.start, asked.end), hit,
                  _named(parts, query, hit), found, len(captions))


def _timed_captions(part: Part) -> list[str]:
    """The captions the part was given (write_parts_collection's first wordings)."""
    return part.scene.captions()[:CAPTIONS_PER_PART]


def _named(parts: list[Part], caption: str, hit: Hit) -> bool:
    """Whether the hit overlaps a part `caption` was given: a caption that leaves out the
    sound may name two parts, and a scene may recur in another video; each is right."""
    moment = hit.moment
    return any(part.video_id == moment.video_id and part.start < moment.end
               and moment.start < part.end and caption in _timed_captions(part)
               for part in parts)
