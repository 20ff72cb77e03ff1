"""QB-Norm in search: building the normalisers, the per-query cost, metrics through search.

    python3 benchmarks/search_qbnorm.py --videos 10000 --banks 1000 10000
    python3 benchmarks/search_qbnorm.py --videos 100000 --banks 1000 10000
    python3 benchmarks/search_qbnorm.py --demo crosskd-demo --skip-synthetic

Synthetic part (benchmarks/search.py's MSRVTT-shaped collection: 7 experts x 768, 4
availability patterns): for each bank size, the bank's queries scored against every video
with the model's formula 240 at a time (what `crosskd index --qbnorm` does after embedding
the bank captions; the text model's own cost is not included) and folded into the
normalisers; then, on an index holding them, single-query p50/p99 with QB-Norm and without
(`--no-qbnorm`), the share of queries it normalised, and the approximate backends'
recall@10 of the exact normalised top 10. Demo part: each run of a `crosskd demo` folder
(run first into a temporary folder without --demo) indexed on its test split with the
training captions as the bank; every caption of the split is a query through
`Index.rank`, its own video's rank gives R@1/5/10, MdR and MnR without and with QB-Norm,
beside what `crosskd test --qbnorm` reports for the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from crosskd.checkpoint.reader import stored_config
from crosskd.cli import main as crosskd_main
from crosskd.config import parse_experiment
from crosskd.models.similarity import mixture_inner_products
from crosskd.process import ProcessContext
from crosskd.qbnorm import DEFAULT_BETA, BankAccumulator, QueryBank
from crosskd.search import Index, Query
from crosskd.search.backends import build_backend
from crosskd.search.bank import BankChoice
from crosskd.search.build import build_index, with_split
from crosskd.train.evaluate import evaluate_checkpoint
from _machine import cpu_description
from search import EXPERTS, WIDTH, K, Collection, latencies, peak_rss_gib

BANK_CHUNK = 240  # captions scored at once, as crosskd.search.bank does


def fold_bank(queries: list[Query], videos: torch.Tensor, availability: torch.Tensor,
              beta: float) -> tuple[QueryBank, float, float]:
    """The bank of `queries` folded against every video; (bank, seconds scoring, seconds
    folding)."""
    accumulator = BankAccumulator(len(videos), beta)
    scoring = folding = 0.0
    for start in range(0, len(queries), BANK_CHUNK):
        chunk = queries[start:start + BANK_CHUNK]
        texts = torch.from_numpy(np.stack([q.embeddings for q in chunk]))
        weights = torch.from_numpy(np.stack([q.weights for q in chunk]))
        began = time.perf_counter()
        scores = mixture_inner_products(texts, weights, videos, availability).numpy()
        scored = time.perf_counter()
        accumulator.add(scores)
        scoring, folding = scoring + scored - began, folding + time.perf_counter() - scored
    return accumulator.result(), scoring, folding


def with_backend(index: Index, kind: str, project_to: int | None) -> Index:
    """The same stored vectors and bank under another backend (with each pattern's column)."""
    groups = [dataclasses.replace(g, backend=build_backend(kind, g.vectors,
                                                           column=g.backend.column,
                                                           project_to=project_to))
              for g in index.groups]
    return dataclasses.replace(index, groups=groups, backend=kind)


def synthetic(args: argparse.Namespace) -> None:
    """Build cost per bank size, then per-query cost with and without QB-Norm."""
    collection = Collection(args.videos)
    videos = torch.from_numpy(collection.embeddings(0, args.videos))
    availability = torch.from_numpy(collection.availability)
    drawn = collection.queries(max(args.banks) + args.queries)
    queries = drawn[-args.queries:]  # searched with; no bank holds them
    bank = None
    for size in args.banks:
        bank, scoring, folding = fold_bank(drawn[:size], videos, availability, args.beta)
        print(json.dumps({"bank": size, "videos": args.videos, "scoring_s": round(scoring, 2),
                          "folding_s": round(folding, 2),
                          "per_million_pairs_ms": round(1e9 * (scoring + folding)
                                                        / (size * args.videos), 3),
                          "active_videos": int(bank.active.sum()),
                          "peak_rss_gib": round(peak_rss_gib(), 2)}), flush=True)
    ids = [f"v{i}" for i in range(args.videos)]
    exact = Index.from_embeddings(ids, [f"e{i}" for i in range(EXPERTS)], [WIDTH] * EXPERTS,
                                  videos, availability, querybank=bank)
    del videos
    truth = exact.rank(queries, K)
    print(json.dumps({"normalised_queries": sum(r.normalised for r in truth),
                      "queries": len(queries), "bank": bank.size}), flush=True)
    for kind in args.backends:
        started = time.perf_counter()
        index = exact if kind == "exact" else with_backend(exact, kind, args.project_to)
        row = {"backend": kind, "build_s": round(time.perf_counter() - started, 2)}
        for name, flag in (("raw", False), ("qbnorm", True)):
            timing = latencies(lambda q, on=flag: index.rank([q], K, on), queries)
            row.update({f"{name}_{key}": round(value, 2) for key, value in timing.items()})
        found = [len({h.item_id for h in got.hits} & {h.item_id for h in want.hits}) / K
                 for got, want in zip(index.rank(queries, K), truth)]
        row["recall_at_10_of_exact_qbnorm"] = round(float(np.mean(found)), 3)
        print(json.dumps(row), flush=True)


def search_metrics(index: Index, qbnorm: bool) -> dict[str, float]:
    """t2v figures from each stored caption's own-video rank in the index's answer."""
    ranks = []
    for n in range(len(index.captions)):
        owner = int(index.captions.owner[n])
        query = index.caption(index.video_ids[owner], int(index.captions.slot[n]))
        hits = index.rank([query], len(index), qbnorm)[0].hits
        ranks.append(next(r for r, h in enumerate(hits) if h.item_id == index.video_ids[owner]))
    ranks = np.array(ranks)
    return {"R1": 100 * float((ranks < 1).mean()), "R5": 100 * float((ranks < 5).mean()),
            "R10": 100 * float((ranks < 10).mean()), "MedR": float(np.median(ranks) + 1),
            "MeanR": float(ranks.mean() + 1), "queries": len(ranks)}


def demo(args: argparse.Namespace, work: Path) -> None:
    """Metrics through search without and with QB-Norm, beside `test --qbnorm`'s."""
    folder = args.demo
    if folder is None:
        folder = work / "demo"
        assert crosskd_main(["demo", "--out", str(folder)]) == 0
    for run in sorted((folder / "runs").glob("*/*_seed*")):
        config = stored_config(run)
        started = time.perf_counter()
        index = build_index(with_split(config, None), run, cache_dir=folder / "cache",
                            media_roots=[folder / "videos"], qbnorm=BankChoice(args.beta))
        built = time.perf_counter() - started
        tested = evaluate_checkpoint(parse_experiment(config).evaluation(), run,
                                     ProcessContext(), folder / "cache", qbnorm_beta=args.beta)
        keys = ("R1", "R5", "R10", "MedR", "MeanR")
        print(json.dumps({"run": run.parent.name, "index_build_s": round(built, 2),
                          "bank": index.querybank.size, "videos": len(index),
                          "search": search_metrics(index, False),
                          "search_qbnorm": search_metrics(index, True),
                          "test": {k: tested["qbnorm"]["t2v_before"][k] for k in keys},
                          "test_qbnorm": {k: tested["t2v"][k] for k in keys}}), flush=True)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--banks", type=int, nargs="+", default=[1_000, 10_000],
                        help="bank sizes to fold (the last one is searched with)")
    parser.add_argument("--backends", nargs="+", default=["exact", "ivf", "hnsw"])
    parser.add_argument("--project-to", type=int, default=256,
                        help="the approximate indexes' projection (docs/PERFORMANCE.md)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--beta", type=float, default=DEFAULT_BETA)
    parser.add_argument("--demo", type=Path, help="a `crosskd demo --out` folder (default: "
                        "run the demo into a temporary folder)")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}", flush=True)
    torch.set_num_threads(2)
    if not args.skip_synthetic:
        synthetic(args)
    if not args.skip_demo:
        with tempfile.TemporaryDirectory(prefix="crosskd-search-qbnorm-") as work:
            demo(args, Path(work))


if __name__ == "__main__":
    run()
