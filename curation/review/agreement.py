"""Agreement figures for human review, as pure functions over plain values (review, eval and anyone importing
someone else's ratings share them): Cohen's kappa for two raters (unweighted, or linear / quadratic weights for
ordered scales), Krippendorff's alpha for any number of raters (nominal, ordinal, interval), agreement per
annotator (with the majority of the others, with the judge), and the rules that turn several answers into one.

Every rating goes through `normalize_label` first: text is read case-insensitively ("Yes", " yes" and True are
one answer) and a missing rating (None, NaN, blank text) is dropped, pairwise for two raters, and counted, never
made a category of its own. The values are checked against scikit-learn and published reference values in
tests/test_review_agreement.py; the formulas are short, so they live here rather than in a dependency.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Hashable, Iterable, Literal, Mapping, Sequence

AggregationRule = Literal["majority", "unanimity"]
KappaWeights = Literal["linear", "quadratic"]
AlphaLevel = Literal["nominal", "ordinal", "interval"]

_YES, _NO = {"yes", "true"}, {"no", "false"}


def normalize_label(value) -> Hashable | None:
    """A rating as the metrics compare it: text stripped and case-folded; yes/true and no/false (any case) as
    True / False; a number written as text as that number, a whole float as an int ("4" and 4.0 from a CSV are
    the rating 4). None when the rating is missing: None, NaN, or blank text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        text = value.strip().casefold()
        if not text:
            return None
        if text in _YES:
            return True
        if text in _NO:
            return False
        try:  # a rating read from a CSV: "4" is the rating 4
            return normalize_label(float(text))
        except ValueError:
            return text
    return value


def paired(a: Sequence, b: Sequence) -> tuple[list, list, int]:
    """Two raters' ratings of the same items, normalised, with every pair where either is missing dropped.
    Returns (a, b, pairs dropped)."""
    if len(a) != len(b):
        raise ValueError(f"paired ratings: {len(a)} ratings against {len(b)}")
    x, y = [], []
    for u, v in zip(a, b):
        u, v = normalize_label(u), normalize_label(v)
        if u is not None and v is not None:
            x.append(u)
            y.append(v)
    return x, y, len(a) - len(x)


def cohen_kappa(a: Sequence, b: Sequence, *, categories: Sequence | None = None,
                weights: KappaWeights | None = None) -> float | None:
    """Cohen's kappa of two raters over the same items (missing pairs dropped); weighted by the distance between
    categories when `weights` is set, the categories then taken as ordered, in the order given. None when
    undefined: no pairs, or every rating in one category."""
    a, b, _ = paired(a, b)
    if not a:
        return None
    cats = [normalize_label(c) for c in categories] if categories is not None else sorted(set(a) | set(b), key=str)
    index = {c: i for i, c in enumerate(cats)}
    unknown = sorted({str(v) for v in a + b if v not in index})
    if unknown:
        raise ValueError(f"cohen_kappa: ratings {unknown} are not among the categories {[str(c) for c in cats]}")
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


def exact_agreement(a: Sequence, b: Sequence) -> float | None:
    """The share of pairs (missing ones dropped) where the two ratings are the same; None without pairs."""
    a, b, _ = paired(a, b)
    return sum(x == y for x, y in zip(a, b)) / len(a) if a else None


def krippendorff_alpha(units: Iterable[Iterable], *, level: AlphaLevel = "nominal") -> tuple[float | None, int]:
    """Krippendorff's alpha. `units`: for each item, the ratings it got (any number of raters; a missing rating
    is left out or given as None). Items with fewer than two ratings are not pairable and are skipped.
    `ordinal` and `interval` need ratings that sort (numbers). Returns (alpha, number of pairable items)."""
    pairable = [values for u in units if len(values := [v for v in map(normalize_label, u) if v is not None]) >= 2]
    if not pairable:
        return None, 0

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

    if level == "ordinal":
        order = sorted(totals)
        rank = {v: i for i, v in enumerate(order)}
        cumulative = [0.0]
        for v in order:
            cumulative.append(cumulative[-1] + totals[v])

        def delta(c, k) -> float:
            low, high = sorted((rank[c], rank[k]))
            # the marginal totals from c to k, minus half of the two ends (Krippendorff's ordinal metric)
            return (cumulative[high + 1] - cumulative[low] - (totals[c] + totals[k]) / 2) ** 2
    elif level == "interval":
        def delta(c, k) -> float:
            return (float(c) - float(k)) ** 2
    else:
        def delta(c, k) -> float:
            return 0.0 if c == k else 1.0

    observed = sum(w * delta(c, k) for (c, k), w in coincidence.items()) / n
    expected = sum(totals[c] * totals[k] * delta(c, k) for c in totals for k in totals) / (n * (n - 1))
    if expected == 0:
        return None, len(pairable)
    return 1.0 - observed / expected, len(pairable)


@dataclass(frozen=True)
class Agreement:
    metric: str
    value: float | None  # None when undefined (no pairs, or every rating in one category)
    n: int  # pairs (kappa) or pairable items (alpha) used
    missing: int = 0  # pairs (kappa) or ratings (alpha) dropped because a rating was missing
    exact: float | None = None  # kappa only: the share of pairs that agree exactly

    def as_dict(self) -> dict:
        return asdict(self)


def kappa_agreement(a: Sequence, b: Sequence, *, categories: Sequence | None = None,
                    weights: KappaWeights | None = None) -> Agreement:
    """Cohen's kappa as an `Agreement`: named by its weighting, with the pairs used and dropped."""
    x, y, dropped = paired(a, b)
    return Agreement("cohen_kappa" + (f"_{weights}" if weights else ""),
                     cohen_kappa(x, y, categories=categories, weights=weights), len(x), dropped, exact_agreement(x, y))


def alpha_agreement(units: Iterable[Iterable], *, level: AlphaLevel = "nominal") -> Agreement:
    """Krippendorff's alpha as an `Agreement`, with the missing ratings counted."""
    units = [list(u) for u in units]
    missing = sum(normalize_label(v) is None for u in units for v in u)
    alpha, n = krippendorff_alpha(units, level=level)
    return Agreement(f"krippendorff_alpha_{level}", alpha, n, missing)


def aggregate(values: Sequence[Hashable], rule: AggregationRule) -> Hashable | None:
    """One answer from several: `majority` needs more than half the answers to agree, `unanimity` all of
    them. None when the rule is not met (a tie, a split vote, or no answers)."""
    if not values:
        return None
    value, count = Counter(values).most_common(1)[0]
    if rule == "unanimity":
        return value if count == len(values) else None
    return value if count * 2 > len(values) else None


@dataclass(frozen=True)
class AnnotatorAgreement:
    annotator: str
    items: int  # items this annotator rated (missing answers not counted)
    with_majority: Agreement  # against the majority answer of the other annotators, where they have one
    with_judge: Agreement

    def as_dict(self) -> dict:
        return asdict(self)


def per_annotator(ratings: Mapping[Hashable, Mapping[str, object]], judge: Mapping[Hashable, object], *,
                  categories: Sequence | None = None, weights: KappaWeights | None = None,
                  ) -> dict[str, AnnotatorAgreement]:
    """Each annotator's agreement with the others and with the judge. `ratings`: item -> annotator -> rating;
    `judge`: item -> the judge's rating. Against the majority: for each item the annotator rated, the answer more
    than half of the *other* annotators gave (an item where they have none, a tie or no other rating, counts as
    missing). Cohen's kappa, weighted as given, with exact agreement beside it."""
    annotators = sorted({user for by_user in ratings.values() for user in by_user})
    out = {}
    for user in annotators:
        mine, majority, judged = [], [], []
        for item, by_user in ratings.items():
            own = normalize_label(by_user.get(user))
            if own is None:
                continue
            others = [v for other, raw in by_user.items() if other != user and (v := normalize_label(raw)) is not None]
            mine.append(own)
            majority.append(aggregate(others, "majority"))
            judged.append(judge.get(item))
        out[user] = AnnotatorAgreement(user, len(mine),
                                       kappa_agreement(mine, majority, categories=categories, weights=weights),
                                       kappa_agreement(mine, judged, categories=categories, weights=weights))
    return out


# -- correlation, and the judge-human table (Pearson, Spearman, kappa, exact agreement per criterion) ------------

def _numbers(values: Sequence, metric: str) -> list[float]:
    """Normalised ratings as numbers for a correlation: yes / no as 1 / 0."""
    out = []
    for v in values:
        if not isinstance(v, (int, float)):  # bool is an int: yes 1, no 0
            raise ValueError(f"{metric}: ratings must be numbers or yes/no, got {v!r}")
        out.append(float(v))
    return out


def pearson(a: Sequence, b: Sequence) -> float | None:
    """Pearson's r of two raters' ratings (normalised, missing pairs dropped, yes / no as 1 / 0). None when
    undefined: fewer than two pairs, or one rater gave every item the same rating."""
    x, y, _ = paired(a, b)
    x, y = _numbers(x, "pearson"), _numbers(y, "pearson")
    if len(x) < 2:
        return None
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((u - mx) * (v - my) for u, v in zip(x, y))
    sxx, syy = sum((u - mx) ** 2 for u in x), sum((v - my) ** 2 for v in y)
    if sxx == 0 or syy == 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, tied values sharing the mean of the ranks they span (Spearman's convention)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: Sequence, b: Sequence) -> float | None:
    """Spearman's rho: Pearson's r of the average ranks (missing pairs dropped first). None when undefined."""
    x, y, _ = paired(a, b)
    return pearson(average_ranks(_numbers(x, "spearman")), average_ranks(_numbers(y, "spearman")))


@dataclass(frozen=True)
class RatingAgreement:
    """Two raters (a judge and a person, say) on one criterion: the figures of the PsychoSafe paper's judge-human
    table, with the kappa's weighting named and the pairs used and dropped."""

    n: int  # pairs where both rated
    missing: int  # pairs dropped because either rating was missing
    kappa: float | None
    kappa_weights: str  # "unweighted", "linear" or "quadratic"
    pearson: float | None  # None for class labels, or when undefined
    spearman: float | None
    exact: float | None  # the share of pairs with the same rating

    def as_dict(self) -> dict:
        return asdict(self)


def rating_agreement(a: Sequence, b: Sequence, *, categories: Sequence | None = None,
                     weights: KappaWeights | None = None) -> RatingAgreement:
    """Cohen's kappa (weighted as given, over `categories` in their order), Pearson, Spearman and exact agreement
    of two raters over the same items; labels normalised, missing pairs dropped and counted. Pearson and Spearman
    only for numbers and yes/no (as 1/0)."""
    x, y, dropped = paired(a, b)
    numeric = all(isinstance(v, (int, float)) for v in x + y)
    return RatingAgreement(
        n=len(x), missing=dropped, kappa=cohen_kappa(x, y, categories=categories, weights=weights),
        kappa_weights=weights or "unweighted", pearson=pearson(x, y) if numeric else None,
        spearman=spearman(x, y) if numeric else None, exact=exact_agreement(x, y))
