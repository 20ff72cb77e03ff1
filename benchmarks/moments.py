"""Moments against whole videos: does a segmented index find the right part of a long video?

    python3 benchmarks/moments.py --work /tmp/bench-moments
    python3 benchmarks/moments.py --work /tmp/bench-moments --videos 80 --parts 8 --seconds 6

Writes --videos synthetic long videos of --parts parts, each --seconds long
(crosskd.extract.synthetic_parts: a part is one synthetic scene on another background than
the part before; 64x48 at 12 frames/s), with two timed captions naming each part. The
collection is extracted three times with the weight-free demo experts and text encoder:
`--segment` at the part length, `--segment` at half of it, and whole videos (given the timed
captions, a whole-video extraction keeps their text as the video's captions). Each dataset's
generated config.json is trained as written (its training plan; the draw of splits is by
video and the same in all three), and each trained model indexes its own dataset (every
video, as `crosskd index` does by default). The whole-video dataset is also indexed with the
part-length model (the same experts and text encoder, so it reads those features): the same
model, whole videos against moments.

Queries: every timed caption of the test split's videos (never trained on), as free text,
against every video of the collection. For each index: the share of queries whose best hit
is from the right video, the share whose best hit overlaps the right part (a whole-video hit
spans its video, so it overlaps whenever the video is right), the share whose best hit
overlaps any part the caption names (the synthetic draw repeats some scenes, so a caption
may name parts of other videos too), the mean IoU of the best hit's time span with the part
(0 for a wrong video) and the mean length of the best hit. Beside
them: extraction seconds per minute of video (wall and CPU of the whole `crosskd extract`
process, startup and writing included), training and indexing time, and the index folder's
bytes per hour of video: its item vectors alone, everything without its media (vectors,
captions, text model, tables) and with them (the copied source videos and each item's
keyframe). Videos already written under --work are reused; everything else is made afresh.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosskd.extract.synthetic_parts import write_parts_collection
from crosskd.search import Index
from _machine import cpu_description, load_average
from _msrvtt_bench import ProcessResult, run_process

#: an index's folders of copied videos and keyframes, and of item vectors
MEDIA, GROUPS = "media", "groups"


#: (label, dataset, model): each index, the cut of the items it holds and of the model's
#: training; the last is the whole videos read by the part-length model
INDEXES = [("part-length segments", "part", "part"), ("half-length segments", "half", "half"),
           ("whole videos", "whole", "whole"),
           ("whole videos, part-length model", "whole", "part")]


@dataclass(frozen=True)
class Part:
    """A timed caption and the part of its video it names (a query when its video is in the
    test split)."""

    video: str
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Cut:
    """One extraction of the collection: its label and `--segment` value (None: whole)."""

    label: str
    segment: str | None


def crosskd(work: Path, *args: str) -> ProcessResult:
    """Run one crosskd command (printed as a user would type it) in a child process."""
    print(f"$ crosskd {shlex.join(args)}", flush=True)
    return run_process([sys.executable, "-m", "crosskd", *args], cwd=work)


def videos_and_captions(work: Path, videos: int, parts: int, seconds: float) -> Path:
    """The collection's videos and timed captions, written once per shape."""
    folder = work / f"videos-{videos}x{parts}x{seconds:g}s"
    captions = folder / "captions.jsonl"
    if not captions.is_file():
        write_parts_collection(folder, videos, parts, seconds)
    return captions


def extract(work: Path, captions: Path, cut: Cut) -> tuple[Path, ProcessResult]:
    """`crosskd extract` of the collection into a fresh dataset folder."""
    out = work / f"data-{cut.label}"
    shutil.rmtree(out, ignore_errors=True)
    segment = ["--segment", cut.segment] if cut.segment else []
    result = crosskd(work, "extract", captions.parent.name, "--captions",
                     str(captions.relative_to(work)), "--out", out.name, "--experts", "demo",
                     "--text-encoder", "demo", *segment)
    return out, result


def train(work: Path, data: Path, cut: Cut) -> tuple[Path, dict, ProcessResult]:
    """`crosskd train` of the dataset's generated config; its run folder and test metrics."""
    runs, metrics = work / f"runs-{cut.label}", work / f"test-{cut.label}.json"
    shutil.rmtree(runs, ignore_errors=True)
    result = crosskd(work, "train", "--config", f"{data.name}/config.json", "--device", "cpu",
                     "--set", f"trainer.save_dir={json.dumps(runs.name)}",
                     "--cache_dir", "cache", "--out", metrics.name)
    (run_dir,) = (runs / "config").iterdir()
    return run_dir, json.loads(metrics.read_text(encoding="utf-8")), result


def index(work: Path, run_dir: Path, data: Path, name: str, videos: Path
          ) -> tuple[Path, ProcessResult]:
    """`crosskd index` of every video of `data` with the run's model, media included."""
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    result = crosskd(work, "index", "--checkpoint", str(run_dir.relative_to(work)), "--data",
                     data.name, "--out", out.name, "--media-root", videos.name,
                     "--cache_dir", "cache")
    return out, result


def all_parts(captions: Path) -> list[Part]:
    """Every timed caption of the collection, with the part it names."""
    rows = [json.loads(line) for line in captions.read_text(encoding="utf-8").splitlines()]
    return [Part(row["video"], row["caption"], row["start"], row["end"]) for row in rows]


def record_of(data: Path) -> dict:
    """A dataset's extraction record (its videos' splits and durations)."""
    return json.loads((data / "extraction.json").read_text(encoding="utf-8"))


def test_videos(record: dict) -> frozenset[str]:
    """The test split's videos of a dataset."""
    return frozenset(video for video, entry in record["videos"].items()
                     if entry["split"] == "test")


def named_parts(parts: list[Part]) -> dict[str, list[Part]]:
    """Every part of the collection that each caption text names (several where two parts
    show the same scene: the synthetic draw repeats some)."""
    named: dict[str, list[Part]] = {}
    for part in parts:
        named.setdefault(part.text, []).append(part)
    return named


def ambiguous(queries: list[Part], named: dict[str, list[Part]]) -> int:
    """Queries whose text also names a part of another video (more than one right answer)."""
    return sum(any(other.video != query.video for other in named[query.text])
               for query in queries)


def best_hits(folder: Path, queries: list[Part], durations: dict[str, float]
              ) -> list[tuple[str, float, float]]:
    """Each query's best hit: its video and time span (a whole video's is all of it)."""
    loaded = Index.load(folder)
    hits = loaded.search_many([loaded.query(query.text) for query in queries], k=1)
    return [(hit.video_id, *((hit.moment.start, hit.moment.end) if hit.moment
                             else (0.0, durations[hit.video_id])))
            for (hit,) in hits]


def overlap(part: Part, video: str, start: float, end: float) -> float:
    """Seconds a hit in `video` from `start` to `end` shares with the part."""
    return max(0.0, min(end, part.end) - max(start, part.start)) if video == part.video else 0.0


def scores(queries: list[Part], hits: list[tuple[str, float, float]],
           named: dict[str, list[Part]]) -> dict[str, float]:
    """Right video, overlap with the query's part (and with any part its text names), IoU
    with its part and hit length, over the queries."""
    right, overlaps, named_overlaps, iou, length = [], [], [], [], []
    for query, (video, start, end) in zip(queries, hits):
        shared = overlap(query, video, start, end)
        right.append(video == query.video)
        overlaps.append(shared > 0)
        named_overlaps.append(any(overlap(other, video, start, end) > 0
                                  for other in named[query.text]))
        iou.append(shared / (max(end, query.end) - min(start, query.start)) if shared else 0.0)
        length.append(end - start)
    return {"right_video": float(100 * np.mean(right)),
            "overlaps_part": float(100 * np.mean(overlaps)),
            "overlaps_named": float(100 * np.mean(named_overlaps)),
            "iou": float(np.mean(iou)), "hit_seconds": float(np.mean(length))}


def folder_bytes(folder: Path) -> dict[str, int]:
    """An index folder's bytes: its item vectors (`groups/`), everything but its media
    folder, and everything (copied or hard-linked media counted at their size)."""
    sizes = {path.relative_to(folder).parts: path.stat().st_size
             for path in folder.rglob("*") if path.is_file()}
    media = sum(size for parts, size in sizes.items() if parts[0] == MEDIA)
    total = sum(sizes.values())
    return {"vectors": sum(size for parts, size in sizes.items() if parts[0] == GROUPS),
            "without_media": total - media, "with_media": total}


def extract_all(work: Path, captions: Path, cuts: list[Cut], minutes: float
                ) -> tuple[dict[str, Path], list[str]]:
    """Each cut's dataset, and a line of its extraction time per minute of video."""
    datasets, lines = {}, []
    for cut in cuts:
        datasets[cut.label], extracted = extract(work, captions, cut)
        lines.append(f"extract, {cut.label}: {extracted.seconds / minutes:.2f} s wall, "
                     f"{extracted.cpu_seconds / minutes:.2f} s CPU per minute of video")
        print(lines[-1], flush=True)
    if len({test_videos(record_of(data)) for data in datasets.values()}) != 1:
        raise SystemExit("the datasets' test splits differ; the comparison needs the same")
    return datasets, lines


def train_all(work: Path, datasets: dict[str, Path], cuts: list[Cut]
              ) -> tuple[dict[str, Path], list[str]]:
    """Each cut's trained run, and a line of its time and test R@1 (items and videos)."""
    runs, lines = {}, []
    for cut in cuts:
        runs[cut.label], metrics, trained = train(work, datasets[cut.label], cut)
        videos = metrics.get("video_level", metrics)["t2v"]["R1"]
        lines.append(f"train, {cut.label}: {trained.seconds:.0f} s wall, "
                     f"{trained.cpu_seconds:.0f} s CPU; test t2v R@1 {metrics['t2v']['R1']:.1f} "
                     f"over its items, {videos:.1f} over its videos")
        print(lines[-1], flush=True)
    return runs, lines


def index_rows(work: Path, datasets: dict[str, Path], runs: dict[str, Path], videos: Path,
               queries: list[Part], named: dict[str, list[Part]], minutes: float) -> list[str]:
    """Build each index, answer the queries from it and measure it: one table row each."""
    durations = {video: entry["duration"]
                 for video, entry in record_of(datasets["whole"])["videos"].items()}
    rows = []
    for label, data, model in INDEXES:
        folder, built = index(work, runs[model], datasets[data], f"index-{data}-by-{model}",
                              videos)
        found = scores(queries, best_hits(folder, queries, durations), named)
        per_hour = {key: size / 1e6 * 60 / minutes for key, size in folder_bytes(folder).items()}
        rows.append(f"| {label} | {found['right_video']:.1f} | {found['overlaps_part']:.1f} | "
                    f"{found['overlaps_named']:.1f} | {found['iou']:.3f} | "
                    f"{found['hit_seconds']:.1f} | {per_hour['vectors']:.3f} | "
                    f"{per_hour['without_media']:.2f} | {per_hour['with_media']:.1f} | "
                    f"{built.seconds:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    print(f"CPU: {cpu_description()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True,
                        help="folder for the videos, datasets, runs and indexes")
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--parts", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each part")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at the start {load_average():.2f}\n$ cd {work}", flush=True)
    captions = videos_and_captions(work, args.videos, args.parts, args.seconds)
    minutes = args.videos * args.parts * args.seconds / 60
    cuts = [Cut("part", f"{args.seconds:g}"), Cut("half", f"{args.seconds / 2:g}"),
            Cut("whole", None)]
    datasets, extracted = extract_all(work, captions, cuts, minutes)
    runs, trained = train_all(work, datasets, cuts)
    parts = all_parts(captions)
    test = test_videos(record_of(datasets["whole"]))
    queries = [part for part in parts if part.video in test]
    named = named_parts(parts)
    rows = index_rows(work, datasets, runs, captions.parent, queries, named, minutes)
    print(f"\n{args.videos} videos of {args.parts} parts x {args.seconds:g} s "
          f"({minutes:.1f} min of video); {len(queries)} queries (the timed captions of "
          f"{len(test)} test videos), {ambiguous(queries, named)} of them also naming a part "
          f"of another video; load average at the end {load_average():.2f}\n")
    print("\n".join(extracted + trained))
    print("\n| index (items, model) | best hit: right video % | overlaps the right part % | "
          "overlaps a part the caption names % | mean IoU with the right part | mean hit s | "
          "MB per hour of video: vectors | without media | with media | index build s |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
