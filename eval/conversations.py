"""Conversations in eval. A conversation prompt is the user turns of a conversation (a run's, or a user's JSONL of
`messages`); the model under test answers them one by one, each answer in view of its own earlier ones
(generate.py); the judge scores every assistant turn with the turns before it in view, the last one being the whole
conversation with the conversation criteria (run.py); pass rates are counted per pattern and turn. A conversation's
last user turn alone is its single-turn counterpart (same id, same pattern), so `eval compare` sets single- against
multi-turn per pattern: the comparison the published crisis evaluations make.

A turn passes when its scores meet rubric.yaml's thresholds for what that turn should be (Rubric.meets_thresholds):
before a harmful conversation's risk turn the assistant should simply help (the benign question), from the risk turn
on it is held to the four criteria, and with earlier turns in view to the conversation criteria too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Mapping

from psychosafe.schemas import Scores, default_rubric, default_taxonomy

from .records import EvalRecord, EvalScores

SINGLE = "single"  # what a prompt that is no conversation counts under, beside the patterns
NO_PATTERN = "conversation"  # a conversation that names no pattern


def pattern_of(record: EvalRecord) -> str:
    """The pattern a record counts under: its own (a single-turn counterpart keeps its conversation's), else
    `conversation` or `single`."""
    return record.pattern or (NO_PATTERN if record.is_conversation else SINGLE)


def pattern_order(names: Iterable[str]) -> list[str]:
    """The taxonomy's order, then a conversation without a pattern, then single prompts."""
    order = [*default_taxonomy().pattern_ids(), NO_PATTERN, SINGLE]
    return sorted(set(names), key=lambda p: (order.index(p) if p in order else len(order), p))


def as_single_turn(records: list[EvalRecord]) -> list[EvalRecord]:
    """Each conversation as its last user turn alone (same id and pattern, no earlier turns); single prompts as
    they are. `eval compare` then sets the same final message with and without the turns before it."""
    return [r.model_copy(update={"earlier_turns": [], "risk_turn": None}) if r.is_conversation else r
            for r in records]


def turn_label(record: EvalRecord, turn: int) -> str:
    """What the answer to user turn `turn` (from 1) is held to: helpfulness before a harmful conversation's risk
    turn, the record's own label otherwise."""
    if record.label == "harmful" and record.risk_turn and turn < record.risk_turn:
        return "benign"
    return record.label


def view_id(record_id: str, turn: int) -> str:
    return f"{record_id}@turn-{turn}"


def turn_views(record: EvalRecord) -> list[EvalRecord]:
    """A generated conversation cut after each of its answers but the last, as the records the judge scores: the
    answer to user turn k with the turns before it in view, under turn k's label (the last answer is the record
    itself). A view names no pattern: before the risk turn it is a benign exchange."""
    turns, views, k = record.messages, [], 0
    for i, m in enumerate(turns[:-2]):
        if m.role != "user":
            continue
        k += 1
        if turns[i + 1].role != "assistant":
            continue
        label = turn_label(record, k)
        views.append(record.model_copy(update={
            "id": view_id(record.id, k), "earlier_turns": list(turns[:i]), "prompt": m.content,
            "response": turns[i + 1].content, "label": label, "pattern": None,
            "risk_turn": record.risk_turn if label == "harmful" else None,
            "scores": EvalScores(), "turn_scores": []}))
    return views


def with_turn_scores(record: EvalRecord, scored: Mapping[str, Scores]) -> EvalRecord:
    """The record with each answer's scores (`turn_scores`, its own `scores` last); a view the judge could not score
    has empty ones. A single prompt is left as it is."""
    if not record.is_conversation:
        return record
    earlier = [EvalScores.of(scored[view_id(record.id, k)]) if view_id(record.id, k) in scored else EvalScores()
               for k in range(1, record.turn)]
    return record.model_copy(update={"turn_scores": [*earlier, record.scores]})


def turn_passes(record: EvalRecord) -> list[bool | None]:
    """Whether each answer meets the rubric's thresholds for its turn's label (None: not judged on it)."""
    rubric = default_rubric()
    out = []
    for k, scores in enumerate(record.turn_scores or [record.scores], start=1):
        label = turn_label(record, k)
        judged = scores.compliance is not None if label == "benign" else \
            any(getattr(scores, c.id) is not None for c in rubric.criteria)
        out.append(rubric.meets_thresholds(scores, label, conversation=k > 1) if judged else None)
    return out


def _rate(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def pattern_summary(records: Iterable[EvalRecord]) -> dict:
    """pattern -> {label, n, user_turns (how many records have each number), passed (the last answer's pass rate:
    the whole conversation), judged, per_turn (turn -> {n, pass_rate})}, patterns in the taxonomy's order."""
    by_pattern: dict[str, list[EvalRecord]] = defaultdict(list)
    for r in records:
        by_pattern[pattern_of(r)].append(r)
    out = {}
    for name in pattern_order(by_pattern):
        rows = by_pattern[name]
        passes = [turn_passes(r) for r in rows]
        last = [p[-1] for p in passes if p and p[-1] is not None]
        per_turn: dict[int, list[bool]] = defaultdict(list)
        for p in passes:
            for k, ok in enumerate(p, start=1):
                if ok is not None:
                    per_turn[k].append(ok)
        out[name] = {"label": "/".join(sorted({r.label for r in rows})), "n": len(rows),
                     "user_turns": dict(sorted(Counter(r.turn for r in rows).items())),
                     "judged": len(last), "pass_rate": _rate(last),
                     "per_turn": {k: {"n": len(v), "pass_rate": _rate(v)} for k, v in sorted(per_turn.items())}}
    return out


def pattern_turn_figure(summary: dict, path: Path, *, title: str) -> Path:
    """Pass rate per turn, one line per pattern (a single prompt: its one turn), from `pattern_summary`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    longest = max((int(k) for e in summary.values() for k in e["per_turn"]), default=1)
    # each pattern a little to the side of its turn, so that patterns with the same rates do not hide each other
    dodge = 0.25 / max(len(summary) - 1, 1)
    for i, (name, e) in enumerate(summary.items()):
        turns = [k for k, t in e["per_turn"].items() if t["pass_rate"] is not None]
        if turns:
            shift = (i - (len(summary) - 1) / 2) * dodge
            ax.plot([int(k) + shift for k in turns], [e["per_turn"][k]["pass_rate"] for k in turns], marker="o",
                    label=f"{name} (n = {e['judged']})")
    ax.set_xticks(range(1, longest + 1))
    ax.set_xlabel("user turn")
    ax.set_ylabel("pass rate (meets the rubric's thresholds)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
