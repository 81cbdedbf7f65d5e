"""Conversations, written turn by turn: a user simulator writes each user turn from the pattern and the persona, and
the assistant answers it in order, helpfully until the pattern's risk turn and with a PsychoSafe response from it on.

Plan: each conversation is a request (domain, label, pattern, category, intent, persona, register, locale, strategy,
number of user turns), fixed by the seed and its slot, so a larger target keeps the conversations a smaller one had.
Turn k is two persisted phases, each through pipelines/retries.py (only unusable answers are asked again, every
finished batch is written into the run folder, a killed run resumes where it stopped, Ray or local as configured):
`turn-<k>/user` (SimulateUserTurn) and `turn-<k>/assistant` (PsychoSafeResponse on the conversation so far; the
conversations that end at turn k are answered in `turn-<k>/assistant-last`, with the generic-refusal baseline of their
last turn beside it). A conversation whose turn cannot be written after the retries is set aside with the reason and
the raw output; the others go on. Self-critique, revision and the judge then take the finished conversations with the
single prompts (pipelines/critique.py revises a conversation's last answer, with the whole conversation in view).
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from pathlib import Path

from psychosafe.core.config import ConversationConfig, LLMConfig
from psychosafe.schemas import Record, Rejected, Source, default_taxonomy, record_id

from .responses import generate_responses
from .retries import run_with_retries
from .synthesis import SynthesisResult, _rank
from .tasks import USER_TURN_COLUMNS, SimulateUserTurn

STAGE = "conversations"
USER_STEP = "simulate_user"
CONVERSATION_DATASET = "psychosafe/conversations"


def plan_conversations(need: dict[tuple[str, str], int], config: ConversationConfig, *, personas: list[str],
                       locales: list[str], seed: int) -> list[dict]:
    """The conversations that cover `need` ((domain, label) -> how many): each domain/label cycles through the
    configured patterns of its label (a label with none gets no conversation), and slot n of a group makes the same
    choices whatever the target."""
    taxonomy = default_taxonomy()
    personas = personas or [p.id for p in taxonomy.personas]
    registers = [r.id for r in taxonomy.registers]
    requests = []
    for (domain, label), wanted in need.items():
        patterns = sorted((p for p in config.pattern_ids() if taxonomy.pattern(p).label == label),
                          key=lambda p: _rank(seed, domain, label, p))
        if wanted <= 0 or not patterns:
            continue
        d = taxonomy.domain(domain)
        categories = sorted(d.category_ids(), key=lambda c: _rank(seed, domain, label, c))
        for slot in range(wanted):
            key = _rank(seed, domain, label, "conversation", slot)
            pattern = taxonomy.pattern(patterns[slot % len(patterns)])
            low, high = config.turn_range(pattern.id)
            turns = low + int(_rank(key, "turns"), 16) % (high - low + 1)
            intents = [i for i in pattern.intents if i in d.intents] or d.intents
            intent = intents[int(_rank(key, "intent"), 16) % len(intents)]
            pick = functools.partial(_pick, key)
            requests.append({
                "id": "/".join(["conversation", domain, label, pattern.id, str(slot)]), "label": label,
                "domain": domain, "pattern": pattern.id, "category": categories[slot % len(categories)],
                "intent": intent, "persona": pick(personas, "persona"), "register": pick(registers, "register"),
                "locale": pick(locales, "locale"), "turns": turns, "risk_turn": pattern.risk_turn(turns),
                "strategy": taxonomy.choose_strategy(domain, intent, key) if label == "harmful" else None})
    return requests


def _pick(key: str, options: list[str], what: str) -> str:
    """One of the options, fixed by the conversation's key and what is being chosen."""
    return options[int(_rank(key, what), 16) % len(options)]


def _partial(request: dict, user_turn: str, so_far: list[dict], license: str) -> Record:
    """The conversation up to the user turn just written, as the record the responses phase answers."""
    return Record(id=request["id"], prompt=user_turn, earlier_turns=so_far, label=request["label"],
                  domain=request["domain"], category=request["category"], intent=request["intent"],
                  strategy=request["strategy"], locale=request["locale"], pattern=request["pattern"],
                  risk_turn=request["risk_turn"],
                  source=Source(kind="synthetic", dataset=CONVERSATION_DATASET, license=license,
                                original_id=request["id"]))


def synthesize_conversations(requests: list[dict], generator: LLMConfig, writer: LLMConfig, out_dir: Path, *,
                             retries: int, license: str, taken: set[str] = frozenset(),
                             progress: bool = True) -> SynthesisResult:
    """Write every planned conversation turn by turn: `writer` writes the user turns, `generator` answers them.
    Returns the finished conversations (ids from their user turns; one not `taken` or repeated) and those set aside
    (stage "conversations"), each with the turn that failed and why."""
    start = time.perf_counter()
    by_id = {q["id"]: q for q in requests}
    so_far: dict[str, list[dict]] = {q["id"]: [] for q in requests}
    latest: dict[str, Record] = {}
    result, dropped = SynthesisResult(), set()
    per_turn, output_tokens = [], 0
    for k in range(1, max((q["turns"] for q in requests), default=0) + 1):
        active = [q for q in requests if q["turns"] >= k and q["id"] not in dropped]
        if not active:
            break
        rows = [{c: str(q.get(c) or "") for c in USER_TURN_COLUMNS if c not in ("turn", "conversation", "last_error")}
                | {"turn": str(k), "conversation": json.dumps(so_far[q["id"]], ensure_ascii=False)} for q in active]
        users = run_with_retries(
            rows, lambda load, llm, cfg: load >> SimulateUserTurn(name=USER_STEP, llm=llm,
                                                                  input_batch_size=cfg.batch_size),
            writer, out_dir / f"turn-{k}" / "user", step=USER_STEP,
            error=lambda row: row.get("user_turn_error") or (None if row.get("user_turn") else "empty output"),
            retries=retries, name=f"psychosafe-user-turn-{k}", label=f"conversations: user turn {k}",
            progress=progress)
        output_tokens += users.output_tokens
        for rid, (reason, raw) in users.failed.items():
            q = by_id[rid]
            result.rejected.append(Rejected(stage=STAGE, code="unusable_output", id=rid, domain=q["domain"],
                                            reason=f"user turn {k} unusable after {retries + 1} tries: {reason}",
                                            raw_output=raw, row=json.dumps(q, ensure_ascii=False)))
            dropped.add(rid)
        partial = [_partial(q, users.done[q["id"]]["user_turn"], so_far[q["id"]], license)
                   for q in active if q["id"] in users.done]
        answered = 0
        for last, folder in ((False, "assistant"), (True, "assistant-last")):
            group = [r for r in partial if (by_id[r.id]["turns"] == k) == last]
            if not group:
                continue
            generated = generate_responses(group, generator, out_dir / f"turn-{k}" / folder,
                                           name=f"psychosafe-conversation-turn-{k}{'-last' if last else ''}",
                                           progress=progress, baseline=last, retries=retries)
            output_tokens += generated.output_tokens
            for rejected in generated.rejected:
                result.rejected.append(rejected.model_copy(update={
                    "stage": STAGE, "reason": f"assistant turn {k}: {rejected.reason}"}))
                dropped.add(rejected.id)
            for r in generated.records:
                so_far[r.id] += [{"role": "user", "content": r.prompt}, {"role": "assistant", "content": r.response}]
                latest[r.id] = r
                answered += 1
        per_turn.append({"turn": k, "conversations": len(active), "user_turns": len(users.done),
                         "answered": answered, "user_turn_attempts": users.attempts})
    seen = set(taken)
    for q in requests:
        if q["id"] in dropped:
            continue
        record = latest[q["id"]]
        record = record.model_copy(update={"id": record_id(record.prompt, record.domain, record.user_turns[:-1])})
        if record.id in seen:
            result.rejected.append(Rejected.of(record, STAGE, "exact_duplicate", "duplicate conversation: the same "
                                               "normalised user turns as an earlier one", duplicate_of=record.id))
            continue
        seen.add(record.id)
        result.records.append(record)
    result.counts = {"planned": len(requests), "kept": len(result.records), "rejected": len(result.rejected),
                     "by_pattern": dict(Counter(r.pattern for r in result.records)),
                     "user_turns": dict(Counter(str(r.turn) for r in result.records)),
                     "output_tokens": output_tokens, "turns": per_turn}
    result.seconds = time.perf_counter() - start
    return result
