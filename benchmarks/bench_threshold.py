"""Choose the semantic-dedup threshold from a measurement: cosine similarity of paraphrase pairs (the same
request in other words: should collapse) against hard negatives (same topic, different request, often the
benign twin: must stay apart), with the configured embedder (all-MiniLM-L6-v2 by default).

    python benchmarks/bench_threshold.py [--pairs benchmarks/data/threshold_pairs.jsonl]

Writes benchmarks/results/threshold.json and threshold.png. The chosen threshold maximises balanced accuracy
(paraphrase recall + hard-negative rejection) / 2; among equally good thresholds it takes the middle of the
range, which leaves the widest margin on both sides.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def measure(pairs: list[dict], vectors_a: np.ndarray, vectors_b: np.ndarray) -> dict:
    sims = np.sum(vectors_a * vectors_b, axis=1)
    kinds = np.array([p["kind"] for p in pairs])
    para, neg = sims[kinds == "paraphrase"], sims[kinds == "hard_negative"]
    grid = np.round(np.arange(0.50, 1.0, 0.005), 3)
    recall = np.array([(para >= t).mean() for t in grid])
    rejection = np.array([(neg < t).mean() for t in grid])
    balanced = (recall + rejection) / 2
    best = np.flatnonzero(balanced == balanced.max())
    chosen = float(grid[best[len(best) // 2]])
    return {
        "paraphrase": _summary(para), "hard_negative": _summary(neg),
        "chosen_threshold": chosen,
        "at_chosen": {"paraphrase_recall": float((para >= chosen).mean()),
                      "hard_negative_rejection": float((neg < chosen).mean())},
        "best_range": [float(grid[best[0]]), float(grid[best[-1]])],
        "grid": {"threshold": grid.tolist(), "paraphrase_recall": recall.tolist(),
                 "hard_negative_rejection": rejection.tolist()},
        "pairs": [{**p, "cosine": round(float(s), 4)} for p, s in zip(pairs, sims)],
    }


def _summary(values: np.ndarray) -> dict:
    return {"n": int(len(values)), "min": float(values.min()), "p05": float(np.percentile(values, 5)),
            "median": float(np.median(values)), "p95": float(np.percentile(values, 95)), "max": float(values.max())}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sims = {k: [p["cosine"] for p in result["pairs"] if p["kind"] == k] for k in ("paraphrase", "hard_negative")}
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(sims["hard_negative"], bins=30, range=(0.2, 1.0), alpha=0.7, label="same topic, different request")
    ax.hist(sims["paraphrase"], bins=30, range=(0.2, 1.0), alpha=0.7, label="paraphrase")
    ax.axvline(result["chosen_threshold"], color="tab:red", linestyle="--",
               label=f"threshold {result['chosen_threshold']}")
    ax.set_xlabel("cosine similarity (all-MiniLM-L6-v2)")
    ax.set_ylabel("pairs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    from psychosafe.core.backends import embedder_id
    from psychosafe.core.config import EmbedderConfig
    from psychosafe.curation import CachedEmbedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=HERE / "data" / "threshold_pairs.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    pairs = [json.loads(line) for line in args.pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    config = EmbedderConfig()
    embedder = CachedEmbedder(config)
    a, _ = embedder.embed([p["a"] for p in pairs])
    b, _ = embedder.embed([p["b"] for p in pairs])
    result = {"embedder": embedder_id(config), "pairs_file": str(args.pairs.relative_to(HERE.parent)),
              "machine": f"{platform.machine()}, {platform.python_version()}", **measure(pairs, a, b)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "threshold.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(result, args.out / "threshold.png")
    print(json.dumps({k: result[k] for k in ("paraphrase", "hard_negative", "chosen_threshold", "at_chosen",
                                             "best_range")}, indent=1))


if __name__ == "__main__":
    main()
