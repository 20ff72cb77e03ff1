"""Result tables: one run's test metrics, and the mean (std) over seeds like the paper's tables."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

COLUMNS = (("R@1", "R1"), ("R@5", "R5"), ("R@10", "R10"), ("R@50", "R50"), ("MdR", "MedR"),
           ("MnR", "MeanR"), ("GeoM", "geometric_mean_R1-R5-R10"))
DIRECTIONS = ("t2v", "v2t")

Metrics = dict[str, Any]
#: seeds' results are summarised with the population standard deviation.
STD_DDOF = 0


def summarize_seeds(runs: Mapping[int, Metrics]) -> dict[str, Any]:
    """`{"runs": {seed: metrics}, "mean": ..., "std": ..., "std_ddof": 0}`: the population
    standard deviation (ddof=0) over seeds."""
    first = next(iter(runs.values()))
    summary: dict[str, Any] = {"runs": {str(seed): metrics for seed, metrics in runs.items()},
                               "mean": {"protocol": first["protocol"]},
                               "std": {"protocol": first["protocol"]}, "std_ddof": STD_DDOF}
    for direction in DIRECTIONS:
        keys = first[direction].keys()
        table = np.array([[run[direction][key] for key in keys] for run in runs.values()])
        summary["mean"][direction] = dict(zip(keys, table.mean(axis=0).tolist()))
        summary["std"][direction] = dict(zip(keys, table.std(axis=0, ddof=STD_DDOF).tolist()))
    return summary


def describe_protocol(protocol: Mapping[str, Any]) -> str:
    """One line naming the evaluation protocol, stated beside every reported number."""
    return (f"{protocol['dataset']} {protocol['split']} split, "
            f"{protocol['captions_per_video']} caption(s) per video, "
            f"{protocol['num_queries']} queries, {protocol['num_videos']} videos")


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
        protocol = result["mean"]["protocol"]
    else:
        rows, stds, protocol = {name: result}, None, result["protocol"]
    tables = [format_table(rows, direction, stds) for direction in DIRECTIONS]
    return "\n\n".join(tables) + f"\n\nprotocol: {describe_protocol(protocol)}"
