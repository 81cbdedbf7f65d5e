"""Agreement figures for human review: Cohen's kappa (plain or weighted) for two raters, Krippendorff's
alpha for any number of raters with missing ratings, and the rules that turn several answers into one.

Implemented here (a few lines each) rather than pulled from scikit-learn or the `krippendorff` package:
the formulas are short, the values are checked by hand in the tests, and neither package is a dependency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Hashable, Literal, Sequence

AggregationRule = Literal["majority", "unanimity"]


@dataclass(frozen=True)
class Agreement:
    metric: str
    value: float | None  # None when undefined (no pairs, or every rating in one category)
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable], *, categories: Sequence[Hashable] | None = None,
                weights: Literal["linear", "quadratic"] | None = None) -> float | None:
    """Cohen's kappa of two raters over the same items; weighted by category distance when `weights` is set
    (categories are then taken as ordered, in the order given)."""
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} ratings against {len(b)}")
    if not a:
        return None
    cats = list(categories) if categories is not None else sorted(set(a) | set(b), key=str)
    index = {c: i for i, c in enumerate(cats)}
    k, n = len(cats), len(a)
    if k < 2:
        return None

    def disagreement(i: int, j: int) -> float:
        if weights is None:
            return 0.0 if i == j else 1.0
        d = abs(i - j) / (k - 1)
        return d if weights == "linear" else d * d

    observed = sum(disagreement(index[x], index[y]) for x, y in zip(a, b)) / n
    pa, pb = Counter(index[x] for x in a), Counter(index[y] for y in b)
    expected = sum(pa[i] * pb[j] * disagreement(i, j) for i in range(k) for j in range(k)) / (n * n)
    if expected == 0:
        return None
    return 1.0 - observed / expected


def krippendorff_alpha(units: Sequence[Sequence[Hashable | float]], *,
                       level: Literal["nominal", "interval"] = "nominal") -> tuple[float | None, int]:
    """Krippendorff's alpha. `units`: for each item, the ratings it got (any number of raters; missing
    ratings are simply absent). Items with fewer than two ratings are not pairable and are skipped.
    Returns (alpha, number of pairable items)."""
    pairable = [list(u) for u in units if len(u) >= 2]
    if not pairable:
        return None, 0

    def delta(c, k) -> float:
        if level == "nominal":
            return 0.0 if c == k else 1.0
        return (float(c) - float(k)) ** 2

    coincidence: Counter = Counter()
    for values in pairable:
        m = len(values)
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    coincidence[(c, k)] += 1.0 / (m - 1)
    totals: Counter = Counter()
    for (c, _), weight in coincidence.items():
        totals[c] += weight
    n = sum(totals.values())
    observed = sum(w * delta(c, k) for (c, k), w in coincidence.items()) / n
    expected = sum(totals[c] * totals[k] * delta(c, k) for c in totals for k in totals) / (n * (n - 1))
    if expected == 0:
        return None, len(pairable)
    return 1.0 - observed / expected, len(pairable)


def aggregate(values: Sequence[Hashable], rule: AggregationRule) -> Hashable | None:
    """One answer from several: `majority` needs more than half the answers to agree, `unanimity` all of
    them. None when the rule is not met (a tie, a split vote, or no answers)."""
    if not values:
        return None
    value, count = Counter(values).most_common(1)[0]
    if rule == "unanimity":
        return value if count == len(values) else None
    return value if count * 2 > len(values) else None
