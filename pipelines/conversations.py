"""Conversations, written turn by turn: a user simulator writes each user turn from the pattern and the persona, and
the assistant answers it in order, helpfully until the pattern's risk turn and with a PsychoSafe response from it on.

Plan: each conversation is a request (domain, label, pattern, category, intent, persona, register, locale, strategy,
number of user turns), fixed by the seed and its slot, so a larger target keeps the conversations a smaller one had.
Turn k is one persisted phase (`turn-<k>`) through pipelines/retries.py: SimulateUserTurn writes the user turn and
AnswerUserTurn answers it in the same distilabel pipeline, in view of the conversation so far (the conversations that
end at turn k get the generic-refusal baseline of their last turn beside the answer); only the conversations whose
turn could not be used are asked again, every finished batch is written into the run folder, a killed run resumes
where it stopped, Ray or local as configured. One phase per turn rather than two: each distilabel pipeline costs
seconds to start, which on a small machine outweighs a turn's generation. A conversation whose turn cannot be
written after the retries is set aside with the reason and the raw output; the others go on. Self-critique, revision
and the judge then take the finished conversations with the single prompts (pipelines/critique.py revises a
conversation's last answer, with the whole conversation in view).
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from psychosafe.core.backends import build_llm, model_id
from psychosafe.core.config import ConversationConfig, LLMConfig
from psychosafe.schemas import Generation, Record, Rejected, Source, default_taxonomy, record_id

from .parsing import GENERIC_REFUSAL
from .persist import output_tokens
from .responses import BASELINE_MAX_NEW_TOKENS
from .retries import run_with_retries
from .synthesis import SynthesisResult, _rank
from .tasks import (
    RECORD_COLUMNS,
    USER_TURN_COLUMNS,
    GenericRefusal,
    KeepsEarlierMetadata,
    PsychoSafeResponse,
    SimulateUserTurn,
)
from .templates import TEMPLATE_VERSION

STAGE = "conversations"
USER_STEP = "simulate_user"
CONVERSATION_DATASET = "psychosafe/conversations"


def plan_conversations(need: dict[tuple[str, str], int], config: ConversationConfig, *, personas: list[str],
                       locales: list[str], seed: int) -> list[dict]:
    """The conversations that cover `need` ((domain, label) -> how many): each domain/label cycles through the
    configured patterns of its label (a label with none gets no conversation), each group starting one pattern
    further than the group before it, so that a small run still covers the patterns; slot n of a group makes the
    same choices whatever the target."""
    taxonomy = default_taxonomy()
    personas = personas or [p.id for p in taxonomy.personas]
    registers = [r.id for r in taxonomy.registers]
    requests = []
    groups_before: Counter = Counter()  # groups of each label planned so far: where the next one starts
    for (domain, label), wanted in need.items():
        patterns = sorted((p for p in config.pattern_ids() if taxonomy.pattern(p).label == label),
                          key=lambda p: _rank(seed, label, p))
        start = groups_before[label]
        groups_before[label] += 1
        if wanted <= 0 or not patterns:
            continue
        d = taxonomy.domain(domain)
        categories = sorted(d.category_ids(), key=lambda c: _rank(seed, domain, label, c))
        for slot in range(wanted):
            key = _rank(seed, domain, label, "conversation", slot)
            pattern = taxonomy.pattern(patterns[(start + slot) % len(patterns)])
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


class AnswersWrittenTurn:
    """For a task after SimulateUserTurn in the same pipeline (its `prompt` is the row's `user_turn`, by
    input_mappings): a row whose user turn could not be used has nothing to answer, so it is given a stand-in and its
    answer is dropped; the turn is asked again (retries)."""

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        if not input.get("prompt"):
            return [{"role": "user", "content": NOTHING_TO_ANSWER}]
        return super().format_input(input)  # type: ignore[misc]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        if not (input or {}).get("prompt"):
            return {name: None for name in self.outputs if name != "model_name"}  # type: ignore[attr-defined]
        return super().format_output(output, input)  # type: ignore[misc]


class AnswerUserTurn(AnswersWrittenTurn, KeepsEarlierMetadata, PsychoSafeResponse):
    """The assistant's answer to the user turn just written, in view of the conversation so far."""


class RefuseUserTurn(AnswersWrittenTurn, GenericRefusal):
    """The generic-refusal baseline of a conversation's last user turn, written in the same pipeline."""


NOTHING_TO_ANSWER = "."
ANSWER_STEP, BASELINE_STEP = "answer", "baseline"


def _turn_rows(requests: list[dict], k: int, so_far: dict[str, list[dict]]) -> list[dict]:
    """The rows of turn k: what the user simulator reads (USER_TURN_COLUMNS) and what the answer reads (RECORD_COLUMNS,
    its prompt the user turn written in the pipeline), "" for a value a row lacks."""
    rows = []
    for q in requests:
        said = json.dumps(so_far[q["id"]], ensure_ascii=False)
        row = {c: str(q.get(c) or "") for c in USER_TURN_COLUMNS + RECORD_COLUMNS if c != "prompt"}
        rows.append(row | {"turn": str(k), "conversation": said, "earlier_turns": said if so_far[q["id"]] else "",
                           "last_error": ""})
    return rows


def turn_error(row: dict) -> str | None:
    """Why a finished turn cannot be used (the user simulator's reason first), or None."""
    if row.get("user_turn_error") or not row.get("user_turn"):
        return f"the user turn: {row.get('user_turn_error') or 'empty output'}"
    return None if (row.get("response") or "").strip() else "the answer: empty response"


def synthesize_conversations(requests: list[dict], generator: LLMConfig, writer: LLMConfig, out_dir: Path, *,
                             retries: int, license: str, taken: set[str] = frozenset(), user_candidates: int = 1,
                             progress: bool = True) -> SynthesisResult:
    """Write every planned conversation turn by turn: `writer` writes the user turns (`user_candidates` sampled at
    once, the first usable taken), `generator` answers them.
    Returns the finished conversations (ids from their user turns; one not `taken` or repeated) and those set aside
    (stage "conversations"), each with the turn that failed and why."""
    start = time.perf_counter()
    by_id = {q["id"]: q for q in requests}
    so_far: dict[str, list[dict]] = {q["id"]: [] for q in requests}
    latest: dict[str, Record] = {}
    result, dropped = SynthesisResult(), set()
    per_turn, tokens = [], 0
    for k in range(1, max((q["turns"] for q in requests), default=0) + 1):
        active = [q for q in requests if q["turns"] >= k and q["id"] not in dropped]
        if not active:
            break
        last_turn = {q["id"] for q in active if q["turns"] == k}

        def connect(load, llm, cfg, last_turn=last_turn):
            # the user step carries this attempt's settings (retries.retry_config); the answer keeps the
            # generator's, with the attempt's seed offset so that a retried answer is not the same one again
            answer_cfg = generator.model_copy(update={"seed": (generator.seed or 0) + (cfg.seed or 0)
                                                      - (writer.seed or 0)})
            candidates = user_candidates if cfg.temperature > 0 else 1  # greedy decoding would write the same twice
            step = load >> SimulateUserTurn(name=USER_STEP, llm=llm, input_batch_size=cfg.batch_size,
                                            num_generations=candidates)
            step = step >> AnswerUserTurn(name=ANSWER_STEP, llm=build_llm(answer_cfg), input_batch_size=cfg.batch_size,
                                          input_mappings={"prompt": "user_turn"})
            if not last_turn:
                return step
            short = build_llm(answer_cfg.model_copy(update={"max_new_tokens": min(answer_cfg.max_new_tokens,
                                                                                  BASELINE_MAX_NEW_TOKENS)}))
            return step >> RefuseUserTurn(name=BASELINE_STEP, llm=short, input_batch_size=cfg.batch_size,
                                          input_mappings={"prompt": "user_turn"})

        turn = run_with_retries(_turn_rows(active, k, so_far), connect, writer, out_dir / f"turn-{k}", step=USER_STEP,
                                error=turn_error, retries=retries, name=f"psychosafe-conversation-turn-{k}",
                                label=f"conversations: turn {k}", progress=progress)
        tokens += turn.output_tokens + sum(output_tokens(row, step) for row in turn.done.values()
                                           for step in (ANSWER_STEP, BASELINE_STEP))
        for rid, (reason, raw) in turn.failed.items():
            q = by_id[rid]
            result.rejected.append(Rejected(stage=STAGE, code="unusable_output", id=rid, domain=q["domain"],
                                            reason=f"turn {k} unusable after {retries + 1} tries: {reason}",
                                            raw_output=raw,
                                            row=json.dumps(q, ensure_ascii=False)))
            dropped.add(rid)
        fallbacks = 0
        for q in active:
            row = turn.done.get(q["id"])
            if row is None:
                continue
            record = _partial(q, row["user_turn"], so_far[q["id"]], license).model_copy(update={
                "response": row["response"].strip(), "generation": Generation(
                    model=model_id(generator), backend=generator.backend, template_version=TEMPLATE_VERSION,
                    seed=generator.seed)})
            if q["id"] in last_turn:
                fallbacks += not row.get("baseline_response")
                record = record.model_copy(update={"baseline_response": row.get("baseline_response")
                                                   or GENERIC_REFUSAL})
            so_far[q["id"]] += [{"role": "user", "content": record.prompt},
                                {"role": "assistant", "content": record.response}]
            latest[q["id"]] = record
        per_turn.append({"turn": k, "conversations": len(active), "answered": len(turn.done),
                         "baseline_fallbacks": fallbacks, "attempts": turn.attempts})
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
                     "output_tokens": tokens, "turns": per_turn}
    result.seconds = time.perf_counter() - start
    return result
