"""Pairs of unit vectors whose cosine similarity reaches a threshold: exact all-pairs, or inverted lists (`ivf`).

Exact all-pairs is a blocked matrix product over the upper triangle (memory bounded by BLOCK_BYTES); its
cost grows with n^2. The inverted-list search (`ivf`: lists from faiss k-means, as in an IVF index) compares
each vector only with the members of its `nprobe` nearest lists; near-duplicates sit close together, so they
share a list or sit in a neighbouring one and are found with a measured recall (benchmarks/bench_dedup.py).
Both numbers follow n (`ivf_lists`): about sqrt(8 n) lists, and nprobe 8 up to 100k vectors, growing as sqrt(n)
above (26 at 1M), because with more lists a near-duplicate more often sits a few lists away: a fixed nprobe 8
found 0.964 of the planted pairs at 1M. Its cost grows as n^1.5. It compares each list with all the vectors
probing it in one matrix product, which measured 2.4x less CPU than faiss's own IndexIVFFlat.range_search at equal
results (100k vectors). Every similarity it reports is exact, so it never reports a pair below the threshold;
it can only miss one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from psychosafe.core.progress import progress_bar

BLOCK_BYTES = 256 * 2**20  # similarity block held at once by the exact search
IVF_QUERY_BATCH = 8192  # vectors compared with one list at a time
VECTORS_PER_LIST = 256  # build_ivf_index: about this many vectors per inverted list
LISTS_PER_SQRT_N = 8  # pairs_ivf: sqrt(8 n) lists, where assigning vectors and comparing them cost the same at nprobe 8
NPROBE_BASE, NPROBE_BASE_N, NPROBE_MAX = 8, 100_000, 64  # auto nprobe: 8 up to 100k vectors, then 8 sqrt(n / 100k)
TRAIN_PER_LIST = 30
TRAIN_ITERATIONS = 10


@dataclass
class Pairs:
    """Index pairs i < j with their cosine similarity, sorted by (i, j)."""

    i: np.ndarray
    j: np.ndarray
    similarity: np.ndarray

    def __len__(self) -> int:
        return len(self.i)

    @classmethod
    def empty(cls) -> "Pairs":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    def keep(self, mask: np.ndarray) -> "Pairs":
        return Pairs(self.i[mask], self.j[mask], self.similarity[mask])


def _sorted_pairs(i: np.ndarray, j: np.ndarray, s: np.ndarray) -> Pairs:
    lo, hi = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
    keep = lo != hi
    lo, hi, s = lo[keep], hi[keep], s[keep].astype(np.float32)
    order = np.lexsort((hi, lo))
    lo, hi, s = lo[order], hi[order], s[order]
    if len(lo):  # the index may report a pair from both ends
        first = np.ones(len(lo), bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        lo, hi, s = lo[first], hi[first], s[first]
    return Pairs(lo, hi, s)


def pairs_exact(vectors: np.ndarray, threshold: float, *, band: tuple[float, int] | None = None,
                progress: bool = False) -> Pairs:
    """Every pair at or above `threshold`; with `band` (low, k), also each vector's k most similar partners in
    [low, threshold)."""
    n = len(vectors)
    block = max(1, min(n, BLOCK_BYTES // (4 * max(n, 1))))
    found_i, found_j, found_s = [], [], []
    with progress_bar("similar prompts (exact)", n, show=progress, transient=True) as bar:
        for start in range(0, n, block):
            stop = min(n, start + block)
            # whole rows when a band is asked for (a row's nearest partners may come before it), else the upper
            # triangle only: columns from `start`
            first = 0 if band else start
            sims = vectors[start:stop] @ vectors[first:].T
            rows, cols = np.nonzero(sims >= threshold)
            keep = cols + first > rows + start
            found_i.append(rows[keep] + start)
            found_j.append(cols[keep] + first)
            found_s.append(sims[rows[keep], cols[keep]])
            if band:
                sims[np.arange(stop - start), np.arange(start, stop)] = -1.0  # not a vector's own partner
                i, j, s = _top_in_band(sims, np.arange(start, stop), np.arange(n), threshold, *band)
                found_i.append(i)
                found_j.append(j)
                found_s.append(s)
            bar.advance(stop - start)
    if not found_i:
        return Pairs.empty()
    return _sorted_pairs(np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s))


def _top_in_band(sims: np.ndarray, rows: np.ndarray, cols: np.ndarray, threshold: float, low: float,
                 k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's (at most) k most similar columns with a similarity in [low, threshold): (row, column, sim)."""
    mask = (sims >= low) & (sims < threshold)
    some = np.flatnonzero(mask.any(axis=1))  # only rows with a partner in the band are ranked
    rows, sims, mask = rows[some], sims[some], mask[some]
    inside = np.where(mask, sims, -np.inf)
    k = min(k, inside.shape[1])
    top = np.argpartition(-inside, k - 1, axis=1)[:, :k] if k < inside.shape[1] else \
        np.tile(np.arange(inside.shape[1]), (len(inside), 1))
    values = np.take_along_axis(inside, top, axis=1)
    r, c = np.nonzero(np.isfinite(values))
    return rows[r], cols[top[r, c]], values[r, c]


def ivf_lists(n: int, nprobe: int | str = "auto") -> tuple[int, int]:
    """(number of lists, lists probed per vector) of the inverted-list search over n vectors. nprobe "auto": 8 up
    to 100k, then 8 * sqrt(n / 100k) (26 at 1M), which kept the recall of planted near-duplicates at 0.995 or
    more at 300k and 1M in bench_dedup.py, where a fixed 8 fell to 0.964 at 1M."""
    nlist = int(max(1, min(n // 8, round(np.sqrt(n * LISTS_PER_SQRT_N)))))
    if nprobe == "auto":
        nprobe = int(np.clip(np.ceil(NPROBE_BASE * np.sqrt(n / NPROBE_BASE_N)), NPROBE_BASE, NPROBE_MAX))
    elif not isinstance(nprobe, int) or nprobe < 1:
        raise ValueError(f"nprobe must be a positive number of lists or 'auto', got {nprobe!r}")
    return nlist, min(nprobe, nlist)


def build_ivf_index(vectors: np.ndarray, *, nprobe: int | str = "auto", seed: int = 0):
    """A faiss IndexIVFFlat over the vectors (nearest neighbours for the report; pair search is `pairs_ivf`)."""
    import faiss  # optional: the `curation` extra; only the ivf search needs it

    n, dim = vectors.shape
    nlist = max(1, min(n // VECTORS_PER_LIST, 65536))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    # k-means on a sample, few iterations: the lists only need to be coarse, and training cost grows with nlist^2
    sample = vectors[np.sort(rng.choice(n, size=min(n, nlist * TRAIN_PER_LIST), replace=False))]
    index.cp.seed = seed
    index.cp.niter = TRAIN_ITERATIONS
    index.cp.min_points_per_centroid = 1  # a small sample is deliberate: no warning for it
    index.train(np.ascontiguousarray(sample))
    index.add(np.ascontiguousarray(vectors))
    index.nprobe = min(ivf_lists(n, nprobe)[1], nlist)
    return index


def pairs_ivf(vectors: np.ndarray, threshold: float, *, band: tuple[float, int] | None = None,
              nprobe: int | str = "auto", seed: int = 0, progress: bool = False) -> Pairs:
    """Inverted lists as in an IVF index: k-means lists (faiss), each vector stored in its nearest list and compared
    with the members of its `nprobe` nearest lists (`ivf_lists`). The comparison is a matrix product per list (all
    the vectors probing it against its members), which runs at BLAS speed, unlike a per-query list scan. With
    `band` (low, k), also each vector's k most similar partners in [low, threshold) among the lists it probes,
    kept as a running top k per vector (n x k), so memory does not grow with how crowded the band is."""
    import faiss  # optional: the `curation` extra; only the ivf search needs it

    n, dim = vectors.shape
    nlist, nprobe = ivf_lists(n, nprobe)
    rng = np.random.default_rng(seed)
    sample = vectors[np.sort(rng.choice(n, size=min(n, nlist * TRAIN_PER_LIST), replace=False))]
    kmeans = faiss.Kmeans(dim, nlist, niter=TRAIN_ITERATIONS, seed=seed, spherical=True, min_points_per_centroid=1)
    kmeans.train(np.ascontiguousarray(sample))
    _, probes = kmeans.index.search(vectors, nprobe)  # nearest lists first: probes[:, 0] is where a vector is stored
    members = _group_by(probes[:, 0], nlist)
    askers = _group_by(probes.ravel(), nlist, repeat=nprobe)
    del probes
    found_i, found_j, found_s = [], [], []
    if band:
        best_s = np.full((n, band[1]), -np.inf, np.float32)  # each vector's band partners so far, most similar first
        best_j = np.full((n, band[1]), -1, np.int64)
    with progress_bar("similar prompts (inverted lists)", nlist, show=progress, transient=True) as bar:
        for lst in range(nlist):
            m, q = members[lst], askers[lst]
            for start in range(0, len(q) if len(m) else 0, IVF_QUERY_BATCH):
                qq = q[start:start + IVF_QUERY_BATCH]
                sims = vectors[qq] @ vectors[m].T
                r, c = np.nonzero(sims >= threshold)
                found_i.append(qq[r])
                found_j.append(m[c])
                found_s.append(sims[r, c])
                if band:  # a vector meets itself here at cosine 1, above any threshold below 1: never in the band
                    i, j, s = _top_in_band(sims, np.arange(len(qq)), m, threshold, *band)
                    _merge_top(best_s, best_j, qq, i, j, s)
            bar.advance()
    if band:
        r, c = np.nonzero(best_j >= 0)
        found_i.append(r)
        found_j.append(best_j[r, c])
        found_s.append(best_s[r, c])
    if not found_i:
        return Pairs.empty()
    return _sorted_pairs(np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s))


def _merge_top(best_s: np.ndarray, best_j: np.ndarray, rows: np.ndarray, at: np.ndarray, cols: np.ndarray,
               sims: np.ndarray) -> None:
    """Fold candidates (rows[at], cols, sims) into the running top k of each row (a row may meet a partner twice,
    through two lists: it is kept once)."""
    if not len(at):
        return
    k = best_s.shape[1]
    touched = np.unique(at)
    table_s = np.full((len(touched), k + k), -np.inf, np.float32)
    table_j = np.full((len(touched), k + k), -1, np.int64)
    table_s[:, :k], table_j[:, :k] = best_s[rows[touched]], best_j[rows[touched]]
    slot = np.searchsorted(touched, at)
    order = np.lexsort((-sims, slot))
    slot, cols, sims = slot[order], cols[order], sims[order]
    rank = np.arange(len(slot)) - np.searchsorted(slot, slot)  # position among its row's candidates
    keep = rank < k
    table_s[slot[keep], k + rank[keep]], table_j[slot[keep], k + rank[keep]] = sims[keep], cols[keep]
    # a partner already held: drop the new copy
    seen = (table_j[:, k:, None] == table_j[:, None, :k]).any(axis=2) & (table_j[:, k:] >= 0)
    table_s[:, k:][seen] = -np.inf
    top = np.argsort(-table_s, axis=1, kind="stable")[:, :k]
    best_s[rows[touched]] = np.take_along_axis(table_s, top, axis=1)
    best_j[rows[touched]] = np.where(np.isfinite(best_s[rows[touched]]), np.take_along_axis(table_j, top, axis=1), -1)


def _group_by(labels: np.ndarray, n_groups: int, repeat: int = 1) -> list[np.ndarray]:
    """Row indices per label (labels of a flattened (rows, repeat) array map back to rows)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_groups + 1))
    rows = order // repeat
    return [rows[bounds[g]:bounds[g + 1]] for g in range(n_groups)]


METHODS = ("auto", "exact", "ivf")


def choose_method(n: int, method: Literal["auto", "exact", "ivf"], ann_above: int) -> str:
    """The search to use for `n` vectors: `exact` or `ivf` (auto: ivf above `ann_above`)."""
    if method not in METHODS:
        raise ValueError(f"unknown search method {method!r}; expected one of {list(METHODS)}")
    return ("ivf" if n > ann_above else "exact") if method == "auto" else method


def similar_pairs(vectors: np.ndarray, threshold: float, *, method: Literal["auto", "exact", "ivf"] = "auto",
                  ann_above: int = 20000, nprobe: int | str = "auto", band: tuple[float, int] | None = None,
                  progress: bool = False) -> Pairs:
    """Every pair i < j of unit vectors with cosine >= threshold (within the lists' recall for ivf). `band`
    (low, k): also each vector's k most similar partners in [low, threshold), and no more, however many there are
    (in a large corpus on five topics a low band holds thousands of partners per prompt)."""
    if len(vectors) < 2:
        return Pairs.empty()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if band is not None and band[0] >= threshold:
        band = None
    if choose_method(len(vectors), method, ann_above) == "ivf":
        return pairs_ivf(vectors, threshold, band=band, nprobe=nprobe, progress=progress)
    return pairs_exact(vectors, threshold, band=band, progress=progress)


def nearest_similarity(vectors: np.ndarray, *, method: str = "exact", nprobe: int | str = "auto") -> np.ndarray:
    """Each vector's cosine similarity to its nearest other vector (for the report's distribution). `method`: the
    search choose_method picked, exact or ivf."""
    if method not in ("exact", "ivf"):
        raise ValueError(f"expected the chosen search method, 'exact' or 'ivf' (see choose_method), got {method!r}")
    n = len(vectors)
    if n < 2:
        return np.zeros(0, np.float32)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if method == "ivf":
        index = build_ivf_index(vectors, nprobe=nprobe)
        sims, ids = index.search(vectors, 2)
        own = ids[:, 0] == np.arange(n)
        return np.where(own, sims[:, 1], sims[:, 0]).astype(np.float32)
    best = np.full(n, -1.0, np.float32)
    block = max(1, min(n, BLOCK_BYTES // (4 * n)))
    for start in range(0, n, block):
        sims = vectors[start:start + block] @ vectors.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -1.0
        best[start:start + block] = sims.max(axis=1)
    return best


def connected_groups(n: int, pairs: Pairs) -> np.ndarray:
    """Group label per item: items joined by a chain of pairs share a label (the smallest index)."""
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(pairs.i.tolist(), pairs.j.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(x) for x in range(n)], dtype=np.int64)
