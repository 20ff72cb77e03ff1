"""A self-contained HTML page about a model's test split: where each query's video ranks.

For every caption of an index: the rank of its own video under the model's score, its top
retrieved videos with their captions and the text their experts read or heard (OCR, speech);
the worst queries; the recall-at-K curve; the mean mixture weight of each expert (of a
segmented index, each item is shown as its video and time range). Every text
is escaped; the page's style is the search page's own stylesheet, inlined, so the file opens
anywhere without a server.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

import numpy as np

from crosskd.search.index import Index
from crosskd.search.storage import read_rows

TOP = 5
WORST = 20
#: caption x video scores computed at once: a chunk of them, its sort and its comparisons
#: take about 20 bytes each (~80 MB), however large the split
CHUNK_SCORES = 1 << 22


def video_matrix(index: Index) -> np.ndarray:
    """`[videos, E * D]` stored video embeddings (already x availability), padded as the model
    pads them, so that a caption's weighted embedding times a row is its score's numerator."""
    return index.stored_embeddings().reshape(len(index), -1)


def caption_scores(index: Index, videos: np.ndarray, start: int, stop: int) -> np.ndarray:
    """`[stop - start, videos]` model scores of stored captions start..stop against every
    video (`videos` from `video_matrix`)."""
    embeddings = read_rows(index.captions.embeddings, start, stop)
    weights = np.asarray(index.captions.weights[start:stop])
    numerators = (embeddings * weights[..., None]).reshape(len(weights), -1) @ videos.T
    return numerators / (weights @ index.availability.T)


def query_ranks(scores: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """1 + the number of videos scored above each caption's own video (a tie counts in the
    caption's favour; t2v_metrics averages tied positions instead)."""
    own = scores[np.arange(len(scores)), owners]
    return 1 + (scores > own[:, None]).sum(axis=1)


def summary(index: Index, chunk: int | None = None) -> dict[str, Any]:
    """Ranks, top videos (and their scores), recall curve and mean weights (what the page
    shows), computed `chunk` captions at a time (default: about CHUNK_SCORES scores): the
    memory of a report is bounded whatever the number of captions."""
    count = len(index.captions)
    chunk = chunk or max(1, CHUNK_SCORES // max(1, len(index)))
    videos = video_matrix(index)
    owners = np.asarray(index.captions.owner)
    ranks = np.zeros(count, np.int64)
    top = np.zeros((count, min(TOP, len(index))), np.int64)
    top_scores = np.zeros(top.shape, np.float32)
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        scores = caption_scores(index, videos, start, stop)
        ranks[start:stop] = query_ranks(scores, owners[start:stop])
        best = np.argsort(-scores, axis=1, kind="stable")[:, :TOP]
        top[start:stop], top_scores[start:stop] = best, np.take_along_axis(scores, best, 1)
    ks = np.arange(1, min(len(index), 100) + 1)
    return {"ranks": ranks, "top": top, "top_scores": top_scores,
            "recall": [(int(k), float((ranks <= k).mean() * 100)) for k in ks],
            "weights": dict(zip(index.modalities,
                                np.asarray(index.captions.weights).mean(axis=0).tolist()))}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _caption_text(index: Index, n: int) -> str:
    return index.captions.text_of(index.video_ids, n) or \
        f"{index.video_ids[int(index.captions.owner[n])]}:{int(index.captions.slot[n])}"


def _recall_svg(points: list[tuple[int, float]]) -> str:
    width, height, pad = 480, 220, 30
    last = max(k for k, _ in points)
    xy = [(pad + (width - 2 * pad) * (k - 1) / max(1, last - 1),
           height - pad - (height - 2 * pad) * r / 100) for k, r in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="recall at K"><polyline fill="none" stroke="#3a7bd5" '
            f'stroke-width="2" points="{path}"/>'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
            f'stroke="#888"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
            f'stroke="#888"/><text x="{pad}" y="{height - 8}" font-size="11">K = 1</text>'
            f'<text x="{width - pad - 40}" y="{height - 8}" font-size="11">K = {last}</text>'
            f'<text x="2" y="{pad}" font-size="11">100%</text></svg>')


def _bars(values: dict[str, float]) -> str:
    scale = max([abs(v) for v in values.values()] + [1e-9])
    rows = "".join(
        f'<div class="bar-row" title="{_e(name)}: {value:.4f}"><span class="name">{_e(name)}'
        f'</span><div class="bar{" negative" if value < 0 else ""}" '
        f'style="width:{100 * abs(value) / scale:.1f}%"></div></div>'
        for name, value in values.items())
    return f'<div class="bars">{rows}</div>'


def _read_list(read: dict[str, str]) -> str:
    """What a video's experts read or heard (kind -> text), escaped; nothing when none."""
    items = "".join(f"<dt>{_e(kind)}</dt><dd>{_e(text)}</dd>" for kind, text in read.items())
    return f'<dl class="read">{items}</dl>' if items else ""


def _item(index: Index, position: int) -> str:
    """An item as the page names it: a video's id, or a segment's video and time range."""
    if index.moments is None:
        return index.video_ids[position]
    moment = index.moments.moment(position)
    return f"{moment.video_id} {moment.clock()}"


def _top_video(index: Index, position: int, score: float, own: bool) -> str:
    """One retrieved video of a query card: id, score, first caption, read or heard text."""
    video_id = index.video_ids[position]
    return (f'<li{" class=own" if own else ""}>{_e(_item(index, position))} ({score:.3f}): '
            f'{_e((index.captions.texts.get(video_id) or [""])[0])}'
            f'{_read_list(index.captions.read.get(video_id, {}))}</li>')


def _query_card(index: Index, facts: dict[str, Any], n: int) -> str:
    owner = int(index.captions.owner[n])
    rank = int(facts["ranks"][n])
    items = "".join(_top_video(index, int(v), float(score), int(v) == owner)
                    for v, score in zip(facts["top"][n], facts["top_scores"][n]))
    return (f'<article class="card"><h2><span>{_e(_caption_text(index, n))}</span>'
            f'<span class="score">rank {rank}</span></h2><p>video '
            f'{_e(_item(index, owner))}</p><ol class="captions">{items}</ol></article>')


def render(index: Index, title: str) -> str:
    """The report page of an index's captions (all of them, worst first after the summary)."""
    facts = summary(index)
    ranks = facts["ranks"]
    order = np.argsort(-ranks, kind="stable")
    style = (resources.files("crosskd.search") / "static" / "app.css").read_text("utf-8")
    recall = {k: r for k, r in facts["recall"]}
    figures = ", ".join(f"R@{k} {recall[k]:.1f}" for k in (1, 5, 10, 50) if k in recall)
    rows = "".join(
        f"<tr><td>{_e(_caption_text(index, n))}</td><td>{_e(_item(index, int(index.captions.owner[n])))}"
        f"</td><td>{int(ranks[n])}</td></tr>" for n in range(len(ranks)))
    worst = "".join(_query_card(index, facts, int(n)) for n in order[:WORST])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>{style}
.own {{ font-weight: bold; }} table {{ border-collapse: collapse; font-size: .85rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .2rem .5rem; text-align: left; }}
section {{ margin: 1.5rem 0; }}</style></head>
<body><header><h1>{_e(title)}</h1>
<p id="summary">{len(ranks)} queries over {_e(index.collection().summary())}; text to video
{_e(figures)};
median rank {float(np.median(ranks)):.0f}, mean rank {float(ranks.mean()):.1f}</p></header>
<section><h2>Recall at K</h2>{_recall_svg(facts["recall"])}</section>
<section><h2>Mean mixture weight per expert</h2>{_bars(facts["weights"])}</section>
<section><h2>Worst {min(WORST, len(ranks))} queries, their top {TOP} videos</h2>
<div id="results">{worst}</div></section>
<section><h2>Every query's rank of its own video</h2>
<table><tr><th>caption</th><th>video</th><th>rank</th></tr>{rows}</table></section>
</body></html>
"""
