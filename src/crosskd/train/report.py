"""Result tables: one run's test metrics, and the mean (std) over seeds like the paper's tables."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

COLUMNS = (("R@1", "R1"), ("R@5", "R5"), ("R@10", "R10"), ("R@50", "R50"), ("MdR", "MedR"),
           ("MnR", "MeanR"), ("GeoM", "geometric_mean_R1-R5-R10"))
DIRECTIONS = ("t2v", "v2t")
#: the heading of a segmented split's video-level results
VIDEO_LEVEL = "video level (each video ranked by its best segment)"

Metrics = dict[str, Any]
#: seeds' results are summarised with the population standard deviation.
STD_DDOF = 0


def summarize_seeds(runs: Mapping[int, Metrics]) -> dict[str, Any]:
    """`{"runs": {seed: metrics}, "mean": ..., "std": ..., "std_ddof": 0}`: the population
    standard deviation (ddof=0) over seeds."""
    mean, std = _mean_and_std(list(runs.values()))
    return {"runs": {str(seed): metrics for seed, metrics in runs.items()},
            "mean": mean, "std": std, "std_ddof": STD_DDOF}


def _mean_and_std(results: list[Metrics]) -> tuple[Metrics, Metrics]:
    """Each metric's mean and std over `results`, with the first one's protocol (and the
    same of their video-level metrics, where a segmented split has them)."""
    first = results[0]
    mean: Metrics = {"protocol": first["protocol"]}
    std: Metrics = {"protocol": first["protocol"]}
    for direction in DIRECTIONS:
        keys = first[direction].keys()
        table = np.array([[result[direction][key] for key in keys] for result in results])
        mean[direction] = dict(zip(keys, table.mean(axis=0).tolist()))
        std[direction] = dict(zip(keys, table.std(axis=0, ddof=STD_DDOF).tolist()))
    if "video_level" in first:
        mean["video_level"], std["video_level"] = _mean_and_std(
            [result["video_level"] for result in results])
    return mean, std


def describe_protocol(protocol: Mapping[str, Any]) -> str:
    """One line naming the evaluation protocol, stated beside every reported number."""
    segments = (f" cut into {protocol['num_segments']} segments"
                if "num_segments" in protocol else "")
    return (f"{protocol['dataset']} {protocol['split']} split, "
            f"{protocol['captions_per_video']} caption(s) per video, "
            f"{protocol['num_queries']} queries, {protocol['num_videos']} videos{segments}")


def _cell(mean: float, std: float | None) -> str:
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ({std:.1f})"


def format_table(rows: Mapping[str, Metrics], direction: str = "t2v",
                 stds: Mapping[str, Metrics] | None = None) -> str:
    """A Markdown table, one row per named result; `stds` adds "(std)" to every cell."""
    header = f"| {direction} | " + " | ".join(name for name, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, metrics in rows.items():
        std = stds[name][direction] if stds else None
        cells = [_cell(metrics[direction][key], std[key] if std else None) for _, key in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_result(name: str, result: Metrics) -> str:
    """Both directions of one result (a single run or a seeds summary) plus its protocol."""
    if "runs" in result:
        label = (f"{name} (mean (std, ddof={result.get('std_ddof', STD_DDOF)}) over "
                 f"{len(result['runs'])} seeds)")
        rows, stds = {label: result["mean"]}, {label: result["std"]}
    else:
        rows, stds = {name: result}, None
    text = _tables(rows, stds)
    if "video_level" in next(iter(rows.values())):
        rows = {label: metrics["video_level"] for label, metrics in rows.items()}
        stds = {label: metrics["video_level"] for label, metrics in stds.items()} if stds else None
        text += f"\n\n{VIDEO_LEVEL}:\n\n{_tables(rows, stds)}"
    return text


def _tables(rows: Mapping[str, Metrics], stds: Mapping[str, Metrics] | None) -> str:
    """Both directions' tables and the protocol of the (first) row."""
    tables = [format_table(rows, direction, stds) for direction in DIRECTIONS]
    protocol = next(iter(rows.values()))["protocol"]
    return "\n\n".join(tables) + f"\n\nprotocol: {describe_protocol(protocol)}"
