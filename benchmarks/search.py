"""Search at collection scale: build time and memory, latency, throughput and recall.

    python3 benchmarks/search.py --videos 10000
    python3 benchmarks/search.py --videos 100000
    python3 benchmarks/search.py --videos 1000000 --dtype int8 --backends ivf hnsw --project-to 256

Synthetic embeddings with MSRVTT's shape (7 experts x 768, unit norm per expert), clustered
as real collections are (2,000 topics in a 64-d latent space, a per-expert projection and as
much isotropic noise as signal); audio is missing for 10 % of the videos and speech for 40 %
(4 availability patterns). Queries are embeddings of the same kind with random mixture
weights (the text model's own cost, a few ms per caption, is not included). For each
backend: build time, the index's bytes, single-query p50/p99 over --queries queries,
queries/s from --clients threads, recall@10 against exact search over the same stored
vectors; beside them, brute-force torch scoring with the model's formula over the float32
[V, 7, 768] tensor (only where it fits in memory). Peak RSS is the process's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from crosskd.models.similarity import mixture_inner_products
from crosskd.search import Index, Query
from crosskd.search.backends import build_backend
from _machine import cpu_description

EXPERTS, WIDTH, LATENT, TOPICS = 7, 768, 64, 2000
MISSING = {5: 0.10, 6: 0.40}  # expert position -> share of videos without it (audio, speech)
K = 10


class Collection:
    """Deterministic synthetic embeddings, generated a chunk at a time."""

    def __init__(self, videos: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.videos, self.seed = videos, seed
        self.centres = rng.standard_normal((TOPICS, LATENT)).astype(np.float32)
        self.projections = (rng.standard_normal((EXPERTS, LATENT, WIDTH))
                            / np.sqrt(LATENT)).astype(np.float32)
        self.topic = rng.integers(0, TOPICS, videos)
        self.availability = np.ones((videos, EXPERTS), np.float32)
        for expert, share in MISSING.items():
            self.availability[rng.random(videos) < share, expert] = 0

    def _embed(self, latent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.einsum("nl,eld->ned", latent, self.projections)
        out += rng.standard_normal(out.shape, dtype=np.float32)
        out /= np.linalg.norm(out, axis=2, keepdims=True)
        return out

    def embeddings(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, start))
        latent = self.centres[self.topic[start:stop]] + 0.5 * rng.standard_normal(
            (stop - start, LATENT), dtype=np.float32)
        return self._embed(latent, rng)

    def queries(self, count: int) -> list[Query]:
        rng = np.random.default_rng((self.seed, 2**31))  # apart from every chunk's stream
        topics = self.topic[rng.integers(0, self.videos, count)]
        latent = self.centres[topics] + 0.5 * rng.standard_normal((count, LATENT),
                                                                  dtype=np.float32)
        texts = self._embed(latent, rng)
        weights = torch.softmax(torch.from_numpy(rng.standard_normal((count, EXPERTS),
                                                                     dtype=np.float32)), 1)
        return [Query(t, w.numpy()) for t, w in zip(texts, weights)]


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def index_bytes(index: Index) -> int:
    total = 0
    for group in index.groups:
        total += group.vectors.codes.nbytes
        total += 0 if group.vectors.scales is None else group.vectors.scales.nbytes
        faiss_index = getattr(group.backend, "index", None)
        if faiss_index is not None:
            import faiss
            total += len(faiss.serialize_index(faiss_index))
            projection = group.backend.projection
            total += 0 if projection is None else projection.matrix.nbytes
    return total


def latencies(search, queries: list[Query]) -> dict[str, float]:
    search(queries[0])  # warm up
    times = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def throughput(search, queries: list[Query], clients: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(search, queries))
    return len(queries) / (time.perf_counter() - start)


def with_backend(index: Index, kind: str, **options) -> tuple[Index, float]:
    """The same stored vectors under another backend, and its build time."""
    start = time.perf_counter()
    groups = [dataclasses.replace(g, backend=build_backend(kind, g.vectors, **options))
              for g in index.groups]
    built = time.perf_counter() - start
    return dataclasses.replace(index, groups=groups, backend=kind), built


def measure(index: Index, queries: list[Query], truth: list[set[str]] | None,
            clients: int) -> dict[str, float]:
    search = lambda q: index.search(q, K)  # noqa: E731
    row = latencies(search, queries)
    row["queries_per_s"] = throughput(search, queries, clients)
    if truth is not None:
        found = [len({h.item_id for h in index.search(q, K)} & t) / K
                 for q, t in zip(queries, truth)]
        row["recall_at_10"] = float(np.mean(found))
    return row


def brute_force(collection: Collection, queries: list[Query], clients: int
                ) -> dict[str, float]:
    """The model's formula over the whole float32 tensor, top 10 by torch.topk."""
    videos = torch.from_numpy(collection.embeddings(0, collection.videos))
    availability = torch.from_numpy(collection.availability)

    def search(query: Query):
        scores = mixture_inner_products(torch.from_numpy(query.embeddings[None]),
                                        torch.from_numpy(query.weights[None]), videos,
                                        availability)
        return torch.topk(scores[0], K)

    row = latencies(search, queries[:50])
    row["queries_per_s"] = throughput(search, queries[:50], clients)
    return row


def main() -> None:
    print(f"CPU: {cpu_description()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "int8"))
    parser.add_argument("--backends", nargs="+", default=["exact", "ivf", "hnsw"])
    parser.add_argument("--project-to", type=int, default=None,
                        help="project the approximate indexes' vectors to this many dims")
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--brute-force", action="store_true",
                        help="also time torch over the float32 tensor (V x 7 x 768 x 4 bytes)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    torch.set_num_threads(2)
    collection = Collection(args.videos)
    queries = collection.queries(args.queries)
    ids = [f"v{i}" for i in range(args.videos)]
    start = time.perf_counter()
    stored = Index.from_chunks(ids, [f"e{i}" for i in range(EXPERTS)], [WIDTH] * EXPERTS,
                               collection.availability, collection.embeddings, chunk=8192,
                               dtype=args.dtype)
    report = {"videos": args.videos, "dtype": args.dtype, "patterns": len(stored.groups),
              "options": {"candidates": args.candidates, "project_to": args.project_to,
                          "nprobe": args.nprobe, "ef_search": args.ef_search},
              "store_build_s": time.perf_counter() - start, "store_bytes": index_bytes(stored),
              "backends": {}}
    print(json.dumps({k: v for k, v in report.items() if k != "backends"}), flush=True)
    truth_start = time.perf_counter()
    truth = [{h.item_id for h in hits} for hits in stored.search_many(queries, K)]
    report["exact_truth_s"] = time.perf_counter() - truth_start
    for kind in args.backends:
        if kind == "exact":
            index, built = stored, 0.0
        else:
            own = {"ivf": {"nprobe": args.nprobe}, "hnsw": {"ef_search": args.ef_search}}[kind]
            index, built = with_backend(stored, kind, candidates=args.candidates,
                                        project_to=args.project_to, **own)
        row = {"build_s": built, "bytes": index_bytes(index)}
        row.update(measure(index, queries, truth, args.clients))
        row["peak_rss_gib"] = peak_rss_gib()
        report["backends"][kind] = row
        print(json.dumps({kind: row}), flush=True)
    if args.brute_force:
        row = brute_force(collection, queries, args.clients)
        row["peak_rss_gib"] = peak_rss_gib()
        report["backends"]["torch brute force (float32)"] = row
        print(json.dumps({"torch brute force": row}), flush=True)
    report["peak_rss_gib"] = peak_rss_gib()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
