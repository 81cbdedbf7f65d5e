"""Semantic dedup at scale on synthetic embeddings: our search (inverted lists from faiss k-means, compared per
list by matrix products; `method: ivf`, or `auto` above `ann_above`) against exact all-pairs, at 10k, 100k,
300k and 1M vectors of 384 dimensions, with the curation defaults (threshold, and the number of lists and nprobe
chosen from n: similarity.ivf_lists). Times are wall seconds and CPU seconds (all threads) of the search; the
machine's load average is recorded before and after, since the cores are shared.

    python benchmarks/bench_dedup.py [--sizes 10000 100000 300000 1000000] [--nprobe auto] [--reuse]
    python benchmarks/bench_dedup.py --sizes 1000000 --band 0.59 --out benchmarks/results/dedup_band.json
    python benchmarks/bench_dedup.py --embed 6000     # the embedding pool: benchmarks/results/dedup_embed.json

`--band LOW` searches as the semantic-dedup step does: every pair at or above the threshold, and each vector's
nearest partners in the review band [LOW, threshold) (BAND_SEARCH_FACTOR x band_neighbours of them).

The vectors mimic a prompt corpus: topics (same-topic cosine about 0.5, like the hard negatives measured by
bench_threshold.py) and 1 % planted near-duplicates at cosine 0.80-0.97 around the threshold. Each run
(size x method) is a subprocess of its own, so its peak memory (ru_maxrss) is its own. Exact all-pairs at 1M
(about 5e14 flops) is not feasible here: its time is extrapolated from 100k by n^2, and recall at 1M is
measured against an exact search of a random sample of query rows. Writes benchmarks/results/dedup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from psychosafe.core.config import SemanticDedupConfig
from psychosafe.curation.dedup import BAND_SEARCH_FACTOR

HERE = Path(__file__).resolve().parent
DIM = 384
THRESHOLD = SemanticDedupConfig().threshold  # the curation default (bench_dedup_quality.py)
SAMPLE_QUERIES = 500
CHUNK = 100_000


def synthetic(n: int, seed: int = 0, *, with_planted: bool = False):
    """Unit vectors: one topic per 50, same-topic cosine ~0.5; the last 1 % are noisy copies of earlier rows.
    with_planted: also the planted pairs (source row, copy row)."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((max(1, n // 50), DIM), dtype=np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    out = np.empty((n, DIM), np.float32)
    n_dup = n // 100
    for start in range(0, n - n_dup, CHUNK):
        stop = min(start + CHUNK, n - n_dup)
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        v = 0.7 * topics[rng.integers(0, len(topics), stop - start)] + 0.714 * noise
        out[start:stop] = v / np.linalg.norm(v, axis=1, keepdims=True)
    source = rng.integers(0, n - n_dup, n_dup)
    noise = rng.standard_normal((n_dup, DIM), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    scale = rng.uniform(0.25, 0.75, (n_dup, 1)).astype(np.float32)  # cosine 1/sqrt(1+s^2): 0.97 .. 0.80
    v = out[source] + scale * noise
    out[n - n_dup:] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return (out, np.stack([source, np.arange(n - n_dup, n)], axis=1)) if with_planted else out


def planted_recall(n: int, found: set[tuple[int, int]]) -> dict:
    """Recall over the planted pairs whose cosine reaches the threshold: true pairs known without any search,
    so recall at 1M rests on thousands of pairs, not only on a sample."""
    vectors, planted = synthetic(n, with_planted=True)
    sims = np.sum(vectors[planted[:, 0]] * vectors[planted[:, 1]], axis=1)
    true = {(int(min(a, b)), int(max(a, b))) for (a, b), s in zip(planted, sims) if s >= THRESHOLD}
    return {"planted_pairs_at_threshold": len(true), "planted_recall": round(len(found & true) / max(1, len(true)), 5)}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(n: int, method: str, nprobe: int | str, out: Path, band: float | None = None) -> None:
    """One measurement in this process; pairs saved as .npy for the parent to compare."""
    from psychosafe.curation.dedup import resolve_duplicates
    from psychosafe.curation.similarity import Pairs, ivf_lists, similar_pairs

    vectors = synthetic(n)
    data_mb = peak_mb()
    result = {"n": n, "method": method, "nprobe": nprobe if method == "ivf" else None}
    if method == "ivf":
        result["lists"], result["probed"] = ivf_lists(n, nprobe)
    t, cpu = time.perf_counter(), time.process_time()
    if method == "exact_sample":  # exact search of sampled query rows against all n
        rows = np.sort(np.random.default_rng(1).choice(n, SAMPLE_QUERIES, replace=False))
        found = []
        for start in range(0, len(rows), 100):  # 100 rows x 1M similarities = 400 MB at a time
            chunk = rows[start:start + 100]
            sims = vectors[chunk] @ vectors.T
            r, c = np.nonzero(sims >= THRESHOLD)
            keep = chunk[r] != c
            found.append((np.minimum(chunk[r], c)[keep], np.maximum(chunk[r], c)[keep], sims[r, c][keep]))
        pairs = Pairs(*(np.concatenate(parts) for parts in zip(*found)))
        np.save(out / f"rows_{n}.npy", rows)
    else:
        pairs = similar_pairs(vectors, THRESHOLD, method=method, nprobe=nprobe, band=None if band is None else (
            band, BAND_SEARCH_FACTOR * SemanticDedupConfig().band_neighbours))
        if band is not None:  # the merges are what recall is about: the band's partners are only asked about
            result["band_pairs"] = int((pairs.similarity < THRESHOLD).sum())
            pairs = pairs.keep(pairs.similarity >= THRESHOLD)
    result["search_seconds"] = round(time.perf_counter() - t, 3)
    result["search_cpu_seconds"] = round(time.process_time() - cpu, 3)  # all threads: steadier on a shared machine
    t = time.perf_counter()
    if method != "exact_sample":
        dropped = resolve_duplicates(n, pairs, list(range(n)))
        result["resolve_seconds"] = round(time.perf_counter() - t, 3)
        result["dropped"] = len(dropped)
    result.update(pairs=len(pairs), peak_rss_mb=round(peak_mb()), data_rss_mb=round(data_mb))
    np.save(out / f"pairs_{n}_{method}.npy", np.stack([pairs.i, pairs.j]))
    (out / f"result_{n}_{method}.json").write_text(json.dumps(result))
    print(json.dumps(result))


def child(n: int, method: str, nprobe: int | str, out: Path, reuse: bool = False, band: float | None = None) -> dict:
    saved = out / f"result_{n}_{method}.json"
    if reuse and saved.is_file() and json.loads(saved.read_text()).get("nprobe") in (None, nprobe):
        result = json.loads(saved.read_text()) | {"reused": True}  # measured by an earlier run of this script
        print(json.dumps(result), flush=True)
        return result
    proc = subprocess.run([sys.executable, __file__, "--child", str(n), method, "--nprobe", str(nprobe),
                           "--scratch", str(out), *(["--band", str(band)] if band is not None else [])],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def pair_set(path: Path, rows: np.ndarray | None = None) -> set[tuple[int, int]]:
    i, j = np.load(path)
    if rows is not None:
        mask = np.isin(i, rows) | np.isin(j, rows)
        i, j = i[mask], j[mask]
    return set(zip(i.tolist(), j.tolist()))


def embed_pool(n_texts: int, processes: list[int], out: Path) -> None:
    """The embedding step's throughput with sentence-transformers' multi-process pool (`embedder.processes`) against
    one process, on the same texts (rewordings of the dedup set's prompts, each made unique), alternating twice.
    CPU seconds include the pool's workers. Writes benchmarks/results/dedup_embed.json."""
    from psychosafe.core.config import EmbedderConfig
    from psychosafe.curation.embed import CachedEmbedder

    pairs = [json.loads(line) for line in (HERE / "data" / "dedup_pairs.jsonl").read_text().splitlines() if line]
    base = sorted({t for r in pairs for t in (r["a"], r["b"])})
    texts = [f"{base[k % len(base)]} ({k // len(base)})" for k in range(n_texts)]
    load_before = os.getloadavg()
    runs = []
    for round_ in range(2):
        for count in processes:
            embedder = CachedEmbedder(EmbedderConfig(processes=count))
            assert embedder.model is not None  # loaded before the clock starts, as the embed step loads it once
            usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            started = time.perf_counter()
            vectors = embedder.embed(texts)[0]
            wall = time.perf_counter() - started
            after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, usage))
            runs.append({"round": round_, "processes": count, "texts": len(texts), "wall_seconds": round(wall, 2),
                         "cpu_seconds": round(cpu, 2), "texts_per_second": round(len(texts) / wall, 1),
                         "checksum": round(float(vectors.sum()), 3)})
            print(json.dumps(runs[-1]), flush=True)
    result = {"texts": n_texts, "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], "runs": runs}
    write = out.parent / "dedup_embed.json"
    write.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000, 1_000_000])
    parser.add_argument("--exact-up-to", type=int, default=100_000)
    parser.add_argument("--nprobe", type=lambda v: v if v == "auto" else int(v), default="auto",
                        help="lists probed per vector, or auto (the curation default: chosen from n)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "dedup.json")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/psychosafe-bench-dedup"))
    parser.add_argument("--child", nargs=2, metavar=("N", "METHOD"))
    parser.add_argument("--reuse", action="store_true", help="reuse runs already measured in --scratch (same nprobe)")
    parser.add_argument("--band", type=float, metavar="LOW",
                        help="search as the dedup step does, with each vector's nearest partners in [LOW, threshold)")
    parser.add_argument("--embed", type=int, metavar="TEXTS",
                        help="instead: the embedding step with 1 and 2 processes on this many texts")
    args = parser.parse_args()
    if args.embed:
        embed_pool(args.embed, [1, 2], args.out)
        return
    args.scratch.mkdir(parents=True, exist_ok=True)
    if args.child:
        run_one(int(args.child[0]), args.child[1], args.nprobe, args.scratch, args.band)
        return
    import faiss  # only for its version, recorded with the results

    load_before = os.getloadavg()
    runs = []
    for n in args.sizes:
        entry = {"n": n}
        entry["ivf"] = child(n, "ivf", args.nprobe, args.scratch, args.reuse, args.band)
        if n <= args.exact_up_to:
            entry["exact"] = child(n, "exact", args.nprobe, args.scratch, args.reuse)
        else:
            entry["exact_sample"] = child(n, "exact_sample", args.nprobe, args.scratch, args.reuse)
        found = pair_set(args.scratch / f"pairs_{n}_ivf.npy")
        if "exact" in entry:
            truth = pair_set(args.scratch / f"pairs_{n}_exact.npy")
            entry["recall"] = round(len(found & truth) / max(1, len(truth)), 5)
            entry["recall_basis"] = f"all {len(truth)} exact pairs"
            entry["false_pairs"] = len(found - truth)
            entry["speedup"] = round(entry["exact"]["search_seconds"] / entry["ivf"]["search_seconds"], 2)
        else:
            rows = np.load(args.scratch / f"rows_{n}.npy")
            truth = pair_set(args.scratch / f"pairs_{n}_exact_sample.npy")
            found_rows = pair_set(args.scratch / f"pairs_{n}_ivf.npy", rows)
            entry["recall"] = round(len(found_rows & truth) / max(1, len(truth)), 5)
            entry["recall_basis"] = f"{len(truth)} exact pairs of {SAMPLE_QUERIES} sampled query rows"
        entry.update(planted_recall(n, found))
        runs.append(entry)
    exact = {e["n"]: e["exact"] for e in runs if "exact" in e}
    if exact:  # all-pairs is n^2: extrapolate from the largest measured size
        n0 = max(exact)
        for e in runs:
            if "exact" not in e:
                e["exact_extrapolated_seconds"] = round(exact[n0]["search_seconds"] * (e["n"] / n0) ** 2, 1)
                e["exact_extrapolated_cpu_seconds"] = round(exact[n0]["search_cpu_seconds"] * (e["n"] / n0) ** 2, 1)
                e["speedup_vs_extrapolated_exact"] = round(e["exact_extrapolated_seconds"]
                                                           / e["ivf"]["search_seconds"], 1)
                e["cpu_ratio_vs_extrapolated_exact"] = round(e["exact_extrapolated_cpu_seconds"]
                                                             / e["ivf"]["search_cpu_seconds"], 1)
    ivf_times = [(e["n"], e["ivf"]["search_seconds"]) for e in runs]
    growth = [{"from": a[0], "to": b[0], "time_ratio": round(b[1] / a[1], 2), "n_ratio": b[0] / a[0],
               "exponent": round(float(np.log(b[1] / a[1]) / np.log(b[0] / a[0])), 2)}
              for a, b in zip(ivf_times, ivf_times[1:])]
    result = {"threshold": THRESHOLD, "band_from": args.band, "dim": DIM, "nprobe": args.nprobe,
              "faiss_version": faiss.__version__,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "runs": runs, "ivf_time_growth": growth}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"runs": [{k: e.get(k) for k in ("n", "recall", "recall_basis", "planted_recall",
                                                       "planted_pairs_at_threshold", "speedup",
                                                       "speedup_vs_extrapolated_exact",
                                                       "cpu_ratio_vs_extrapolated_exact")}
                               for e in runs], "growth": growth}, indent=1))


if __name__ == "__main__":
    main()
