"""The record: one pydantic model is the source of truth; `datasets.Features` are derived from it."""

from __future__ import annotations

import hashlib
import re
import types
import unicodedata
from typing import Any, ClassVar, Literal, Sequence, TypeVar, Union, get_args, get_origin

import datasets
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .conversations import ConversationError, Message, check_order, read_turns, split_turns
from .taxonomy import default_taxonomy

Label = Literal["harmful", "benign"]
ReviewStatus = Literal["pending", "accepted", "rejected", "edited"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


UNKNOWN_LICENSE = "unknown"  # an imported record whose corpus states no license: recorded so, and the card says so


class Source(_Part):
    """Where a record comes from. An imported corpus keeps each record's own provenance: `dataset` is the source the
    corpus names for the row (the published PsychoSafe corpus's `framework_name`: SALAD-Bench, SORRY-Bench, ...),
    `corpus` the file or preset it was imported from."""

    kind: Literal["seed", "synthetic", "imported"] = "seed"
    dataset: str | None = None
    license: str | None = None
    original_id: str | None = None
    corpus: str | None = None
    author: str | None = None
    category: str | None = Field(None, description="the source's own category label, as written (e.g. its risk "
                                                   "category), beside the taxonomy's `category`")


class Generation(_Part):
    model: str | None = None
    backend: str | None = None
    template_version: str | None = None
    seed: int | None = None
    revision_rounds: int = 0


class Scores(_Part):
    """Judge scores; the criterion fields are the ids in rubric.yaml (checked when the rubric loads)."""

    refusal: bool | None = None
    grounding: int | None = None
    references: bool | None = None
    relevance: int | None = None
    compliance: str | None = None
    # rubric.yaml's conversation criteria: scored for a conversation only
    risk_noticed: bool | None = None
    consistency: bool | None = None
    continuity: int | None = None
    judge_model: str | None = None


ContactOutcome = Literal["verified", "other_locale", "malformed", "unknown"]


class ContactCheck(_Part):
    """One contact detail of a response against the directory (curation/contacts.py)."""

    contact: str = Field(description="as written in the response")
    kind: str = Field(description="phone, url or email")
    outcome: ContactOutcome = Field(description=(
        "verified: listed for the record's locale (or international); other_locale: a listed service of another "
        "country; malformed: a listed service written wrongly (split, a digit missing or extra, a broken address); "
        "unknown: in no directory entry"))
    resource: str | None = Field(None, description="the directory id of the service it is (or should be)")
    locales: list[str] = Field(default_factory=list, description="where the directory lists it (other_locale)")
    expected: str | None = Field(None, description="malformed: the form the directory lists")
    emergency: bool = Field(False, description="an emergency number (911, 999, 112, 000, ...)")
    off_domain: bool = Field(False, description="a listed service whose domains do not include the record's")


class Overlap(_Part):
    """A prompt found in an evaluation set (curation/contamination.py)."""

    benchmark: str
    match: Literal["exact", "semantic"]
    similarity: float
    benchmark_id: str | None = None


class LabelAudit(_Part):
    """The judge's reading of the prompt itself (rubric.yaml `prompt_audit`), and whether it contradicts the label."""

    harmful: bool | None = None
    domain: str | None = Field(None, description="a taxonomy domain id, or 'none'")
    reason: str | None = None
    suspect: str | None = Field(None, description="benign_labelled_harmful, harmful_labelled_benign, "
                                                  "domain_mismatch; None: the judge agrees with the labels")
    judge_model: str | None = None


class Checks(_Part):
    """Rule-based results over the response (and the audits of the prompt)."""

    is_refusal: bool | None = None
    refusal_markers: list[str] = Field(default_factory=list)
    verified_resources: list[str] = Field(default_factory=list)
    unverified_contacts: list[str] = Field(default_factory=list, description=(
        "contact details that block the record: unknown, malformed, and another locale's where configured"))
    contacts: list[ContactCheck] = Field(default_factory=list)
    passed: bool | None = None
    template_of: str | None = Field(None, description="template collapse: id of the record kept for a group of "
                                                      "near-identical responses to different prompts")
    duplicate_of: str | None = Field(None, description="the audit: the record this one's prompt duplicates")
    contamination: list[Overlap] = Field(default_factory=list)
    label_audit: LabelAudit = Field(default_factory=LabelAudit)


class HumanScores(_Part):
    """The annotators' answers merged: the harmful criteria (a yes/no by the review rule, a rating as the mean), and
    for a benign prompt the compliance class (by the review rule); a conversation's criteria too."""

    refusal: bool | None = None
    grounding: float | None = None
    references: bool | None = None
    relevance: float | None = None
    compliance: str | None = None
    risk_noticed: bool | None = None
    consistency: bool | None = None
    continuity: float | None = None


class Review(_Part):
    status: ReviewStatus = "pending"
    annotator_count: int = 0
    human_scores: HumanScores = Field(default_factory=HumanScores)
    original_response: str | None = None


class Record(_Part):
    id: str
    prompt: str = Field(min_length=1)
    response: str = ""
    baseline_response: str | None = None
    label: Label
    domain: str
    category: str | None = None
    intent: str | None = None
    strategy: str | None = None
    locale: str = "en-US"
    resources: list[str] = Field(default_factory=list)
    source: Source = Field(default_factory=Source)
    generation: Generation = Field(default_factory=Generation)
    critique: str | None = None
    scores: Scores = Field(default_factory=Scores)
    checks: Checks = Field(default_factory=Checks)
    review: Review = Field(default_factory=Review)
    # A conversation: `prompt` and `response` are its last user and assistant turns, and the turns before them are
    # kept here. Rows and dumps carry the whole list as `messages`, built from these three, so a stage that
    # updates `response` (model_copy skips validators) cannot leave the conversation out of step.
    earlier_turns: list[Message] = Field(default_factory=list, exclude=True,
                                         description="the turns before `prompt` (a single-turn record has none)")
    pattern: str | None = Field(None, description="the conversation pattern (taxonomy.yaml `patterns`); none for a "
                                                  "single prompt")
    risk_turn: int | None = Field(None, ge=1, description="the user turn, counted from 1, where the risk first shows")
    # an eval prompt holds a conversation's user turns before the model under test answers them (eval/records.py)
    unanswered_user_turns: ClassVar[bool] = False

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, value: str) -> str:
        known = default_taxonomy().domain_ids()
        if value not in known:
            raise ValueError(f"unknown domain '{value}'; expected one of {known}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _split_messages(cls, data: Any) -> Any:
        """A row's `messages` become the earlier turns. A row without a `prompt` (a conversation as a list of turns)
        takes its prompt and response from their last turns; a row with one keeps its own prompt and response, the
        authority for the last two turns (a stage that clears the response clears it)."""
        if not isinstance(data, dict) or "messages" not in data:
            return data
        data = dict(data)
        value = data.pop("messages")
        if value is None or (isinstance(value, (list, tuple)) and not value):
            return data
        try:
            turns = read_turns(value)
            earlier, prompt, response = split_turns(turns) if turns else ([], "", "")
        except ConversationError as exc:
            raise PydanticCustomError("conversation", str(exc)) from None
        if not data.get("prompt"):
            data["prompt"], data["response"] = prompt, data.get("response") or response
        data["earlier_turns"] = earlier
        return data

    @model_validator(mode="after")
    def _conversation_in_order(self) -> "Record":
        taxonomy = default_taxonomy()
        allowed = False
        if self.pattern is not None:
            if self.pattern not in taxonomy.pattern_ids():
                raise PydanticCustomError("conversation", f"pattern: unknown pattern '{self.pattern}'; expected one "
                                                          f"of {taxonomy.pattern_ids()}")
            pattern = taxonomy.pattern(self.pattern)
            if pattern.label != self.label:
                raise PydanticCustomError("conversation", f"pattern: '{self.pattern}' is a {pattern.label} pattern, "
                                                          f"but the label is {self.label}")
            allowed = pattern.consecutive_user_turns
        try:
            check_order(self.messages, pattern=self.pattern,
                        consecutive_user_turns=allowed or self.unanswered_user_turns)
        except ConversationError as exc:
            raise PydanticCustomError("conversation", str(exc)) from None
        return self  # a risk turn past `prompt` is a conversation still being written (synthesis)

    @computed_field(description="the conversation: the earlier turns, then `prompt` and `response` (when there is "
                                "one) as the last user and assistant turns")
    @property
    def messages(self) -> list[Message]:
        last = [Message(role="user", content=self.prompt)]
        if self.response:
            last.append(Message(role="assistant", content=self.response))
        return [*self.earlier_turns, *last]

    @property
    def is_conversation(self) -> bool:
        return bool(self.earlier_turns)

    @property
    def user_turns(self) -> list[str]:
        """What the user said, turn by turn; `prompt` last."""
        return [t.content for t in self.earlier_turns if t.role == "user"] + [self.prompt]

    @property
    def assistant_turns(self) -> list[str]:
        """What the assistant said, turn by turn; `response` last (none yet: not there)."""
        return [t.content for t in self.earlier_turns if t.role == "assistant"] + ([self.response] if self.response
                                                                                    else [])

    @property
    def turn(self) -> int:
        """The user turn `prompt` is, counted from 1."""
        return len(self.user_turns)


class Rejected(_Part):
    """A record set aside by a stage, with why. Nothing is dropped without one of these.

    `code` is what a program reads (counts, filters, the report's table); `reason` is what a person reads, with the
    specifics (the score, the duplicate, the contact). `record` is the record as it was when it was set aside;
    `row` holds an input row that never became a record (a bad seed line), as the text it was read as."""

    stage: str
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="machine-readable reason, e.g. near_duplicate")
    reason: str
    id: str | None = None
    domain: str | None = None
    duplicate_of: str | None = None
    similarity: float | None = Field(None, description="a merged duplicate: the cosine of the pair")
    decided_by: str | None = Field(None, description="a merged duplicate: threshold or judge, the stage that "
                                                     "decided the merge")
    raw_output: str | None = None
    record: SerializeAsAny[Record] | None = None
    row: str | None = None

    @classmethod
    def of(cls, record: Record, stage: str, code: str, reason: str, **extra) -> "Rejected":
        """Set `record` aside: its id, domain and the whole record travel with the reason."""
        return cls(stage=stage, code=code, reason=reason, id=record.id, domain=record.domain, record=record, **extra)


# -- ids ---------------------------------------------------------------------------------------

def normalize_prompt(text: str) -> str:
    """Case, width, whitespace and edge punctuation do not make a different prompt."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" .!?\"'")


def normalize_turns(user_turns: Sequence[str]) -> str:
    """What a conversation's user said, normalised turn by turn (`normalize_prompt`): the same text for the same
    conversation, and a single prompt's own normalised text. Ids and exact dedup compare this."""
    return "\x1e".join(normalize_prompt(t) for t in user_turns)


def record_id(prompt: str, domain: str, earlier_user_turns: Sequence[str] = ()) -> str:
    """Stable across runs: the same prompt in the same domain always gets the same id. A conversation is named by
    all its user turns (`Record.user_turns`: the earlier ones, then the prompt)."""
    said = normalize_turns([*earlier_user_turns, prompt])
    return hashlib.sha256(f"{domain}\x1f{said}".encode()).hexdigest()[:16]


# -- features ----------------------------------------------------------------------------------

_SCALARS = {str: "string", int: "int64", float: "float64", bool: "bool"}


def _feature(annotation: Any):
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in get_args(annotation) if a is not type(None)]
        return _feature(inner)
    if origin is Literal:
        return datasets.Value("string")
    if origin is list:
        return datasets.List(_feature(get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # what a dump holds: the fields it writes, then the computed ones (Record.messages)
        stored = {name: _feature(f.annotation) for name, f in annotation.model_fields.items() if not f.exclude}
        return stored | {name: _feature(c.return_type) for name, c in annotation.model_computed_fields.items()}
    if annotation in _SCALARS:
        return datasets.Value(_SCALARS[annotation])
    raise TypeError(f"no datasets feature for {annotation!r}")


def features_of(model: type[BaseModel]) -> datasets.Features:
    return datasets.Features(_feature(model))


RECORD_FEATURES = features_of(Record)
RECORD_FIELDS = list(RECORD_FEATURES)  # the columns of a record row


# -- records <-> rows: the one conversion every reader and writer uses ---------------------------

def _without_nulls(value):
    """Parquet and datasets give every struct field, unset ones as None: let the model's defaults apply."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


R = TypeVar("R", bound=BaseModel)


def row_to_record(row: dict, model: type[R] = Record) -> R:
    """A row (a dataset row, a JSON line, a parquet row) as a record of `model`: columns that are not fields are
    ignored, missing or null ones take the default; `messages` is split into the earlier turns (and the prompt and
    response where the row has none). Raises ValueError naming each bad field (and a conversation's bad turn)."""
    columns = set(model.model_fields) | set(model.model_computed_fields)
    data = _without_nulls({k: v for k, v in row.items() if k in columns})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
                                   for e in exc.errors())) from None


def record_to_row(record: BaseModel) -> dict:
    return record.model_dump()


def records_to_dataset(records: list[R], features: datasets.Features = RECORD_FEATURES) -> datasets.Dataset:
    """A `datasets.Dataset` with the features derived from the record model (an empty one keeps them)."""
    if not records:  # from_list cannot build an empty dataset with features
        import pyarrow as pa

        return datasets.Dataset(pa.Table.from_pylist([], schema=features.arrow_schema))
    return datasets.Dataset.from_list([record_to_row(r) for r in records], features=features)


def dataset_to_records(ds: datasets.Dataset, model: type[R] = Record) -> list[R]:
    # to_list() converts the whole table at once: about 10x faster than iterating rows at the paper's scale
    return [row_to_record(row, model) for row in ds.to_list()]
