"""What may be published: curation.usable's one policy (`blocking_reasons`) applied to every record, and the
message that stops a publish and says what to do."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from psychosafe.errors import PsychosafeError
from psychosafe.schemas import Record

from ..scores import JudgeTrust
from ..usable import blocking_reasons, describe


class PublishBlocked(PsychosafeError):
    """Records the guards refuse; the message says how many, why, and what to do."""


@dataclass
class BlockedRecord:
    id: str
    split: str
    reasons: list[str]


def find_blocked(splits: dict[str, list[Record]], *, require_review: bool,
                 trust: JudgeTrust | None = None) -> list[BlockedRecord]:
    """`trust`: the run's verdict on its judge; a record it holds back on an untrusted criterion waits for review."""
    return [BlockedRecord(r.id, name, describe(codes)) for name, rows in splits.items() for r in rows
            if (codes := blocking_reasons(r, require_review=require_review, trust=trust))]


def blocked_reasons(blocked: list[BlockedRecord]) -> Counter:
    """reason -> records it blocks (a record can have several)."""
    return Counter(reason for b in blocked for reason in b.reasons)


def refusal_message(blocked: list[BlockedRecord], source: Path) -> str:
    examples = ", ".join(f"{b.id} ({'; '.join(b.reasons)})" for b in blocked[:5])
    return (f"{source}: {len(blocked)} record(s) may not be published: "
            + ", ".join(f"{reason} {n}" for reason, n in blocked_reasons(blocked).most_common())
            + f". First: {examples}. Fix or review them (psychosafe review push/pull), set `require_review: false` "
              "in the publish config if human review is not wanted, pass --exclude-blocked to publish only the "
              "records that pass, or --force to publish them all (the card then says so).")
