"""Human review in Argilla: push a run's records as a review queue, pull the answers back and merge them.

The queue's settings are derived, never written by hand: fields from the record, the four criteria
(with their scales and anchors) from rubric.yaml, the strategies from taxonomy.yaml. The judge's
scores arrive as suggestions (agent = the judge model), the prompt embedding as a vector for
similar-record search. An Argilla record's id is our record id, so pushing twice makes no duplicates
and pushing a newer run updates only what changed, leaving annotations alone.

Pull writes `review/`: `dataset/` (the run's DatasetDict with review merged in: same splits and
features as `curated/`, which stays untouched), `summary.json`, `disagreements.json`, `report.md` and
plots. Everything is read from the server before anything is written, and written through a staging
folder, so a failed pull leaves the run folder as it was.

All argilla calls go through `ArgillaQueue` (argilla 2.8 is in maintenance mode upstream).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from psychosafe.core.config import CONFIGS_DIR, EmbedderConfig, load_config
from psychosafe.errors import InputError, PsychosafeError
from psychosafe.core.io import markdown_table, write_json_atomic
from psychosafe.core.runs import RunFolder
from psychosafe.schemas import Record, dataset_to_records, default_rubric, default_taxonomy

from .agreement import Agreement, AggregationRule, aggregate, cohen_kappa, krippendorff_alpha
from ..checks import check_record
from ..usable import blocking_reasons

DECISIONS = ("accept", "reject", "edit")
DECISION_STATUS = {"accept": "accepted", "reject": "rejected", "edit": "edited"}
STATUSES = ("accepted", "rejected", "edited", "pending")
VECTOR = "prompt_embedding"
SelectionRule = Literal["all", "low_scores", "flagged", "sample"]


# -- configuration -------------------------------------------------------------------------------

class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelectionConfig(_Config):
    rules: list[SelectionRule] = Field(default_factory=lambda: ["all"], min_length=1,
                                       description="records any of these rules picks are pushed")
    sample_per_domain: int = Field(20, gt=0)
    seed: int = 42


class ReviewConfig(_Config):
    api_url: str | None = None
    api_key: str | None = Field(None, description="prefer the environment variable named by api_key_env")
    api_key_env: str = "ARGILLA_API_KEY"
    workspace: str = Field("argilla", min_length=1)
    dataset: str = Field("psychosafe-review", pattern=r"^[A-Za-z0-9_.-]+$")
    min_submitted: int = Field(1, gt=0)
    rule: AggregationRule = "majority"
    select: SelectionConfig = Field(default_factory=SelectionConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)


def load_review_config(path: str | Path | None = None, **overrides) -> ReviewConfig:
    """configs/review.yaml by default; `overrides` (dotted paths such as "select.rules"; None means: keep the
    file's value) are validated too."""
    return load_config(path or CONFIGS_DIR / "review.yaml", ReviewConfig, overrides)


# -- the run's records ---------------------------------------------------------------------------

def load_run_records(run: RunFolder) -> dict[str, list[Record]]:
    """split -> records: `curated/` when the run has it, else `synthesized/dataset` (as one split, train)."""
    import datasets

    if (run.curated / "dataset_dict.json").is_file():
        where, loaded = run.curated, datasets.load_from_disk(str(run.curated))
    elif (run.synthesized / "dataset").is_dir():
        where = run.synthesized / "dataset"
        loaded = {"train": datasets.load_from_disk(str(where))}
    else:
        raise InputError(run.path, "no curated/ or synthesized/dataset in this run folder: run `psychosafe rebuild` "
                                   "or `psychosafe curate` first")
    try:
        return {name: dataset_to_records(split) for name, split in loaded.items()}
    except ValueError as exc:
        raise InputError(where, f"a row is not a valid record ({exc}); expected the schema of schemas/records.py") \
            from None


def is_low_score(record: Record) -> bool:
    """Below the rubric's thresholds (the same ones self-critique uses) on any criterion the judge scored."""
    return not default_rubric().meets_thresholds(record.scores, record.label, missing="pass")


def is_flagged(record: Record) -> bool:
    """The rule-based checks failed, or a contact detail is not in the directory (curation.usable's policy)."""
    return bool({"checks_failed", "unverified_contacts"} & set(blocking_reasons(record)))


def select_records(records: list[Record], config: SelectionConfig) -> list[Record]:
    """The records any of the configured rules picks, in their original order."""
    if "all" in config.rules:
        return list(records)
    picked: set[str] = set()
    if "low_scores" in config.rules:
        picked |= {r.id for r in records if is_low_score(r)}
    if "flagged" in config.rules:
        picked |= {r.id for r in records if is_flagged(r)}
    if "sample" in config.rules:
        rng = random.Random(config.seed)
        by_domain: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_domain[r.domain].append(r)
        for domain in sorted(by_domain):
            rows = sorted(by_domain[domain], key=lambda r: r.id)  # independent of input order
            picked |= {r.id for r in rng.sample(rows, min(config.sample_per_domain, len(rows)))}
    return [r for r in records if r.id in picked]


# -- the queue's settings, derived from the rubric, the taxonomy and the record --------------------

def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def guidelines() -> str:
    rubric = default_rubric()
    lines = ["Review each response to the prompt. For prompts labelled **harmful**, rate the four criteria; "
             "for **benign** prompts, say whether the response helped (compliance).",
             "Then decide: **accept** it as is, **reject** it, or **edit** it and write the corrected "
             "response. Never add a phone number, URL or e-mail that is not a real, listed service.", ""]
    for c in rubric.criteria:
        lines += [f"### {c.name}", c.question, ""] + [f"- **{k}**: {v}" for k, v in c.anchors.items()] + [""]
    return "\n".join(lines)


def _anchors(criterion) -> str:
    return criterion.question + "\n" + "\n".join(f"{k}: {v}" for k, v in criterion.anchors.items())


def build_settings(config: ReviewConfig, dimensions: int):
    """The Argilla dataset settings for review."""
    import argilla as rg

    rubric, taxonomy = default_rubric(), default_taxonomy()
    questions = []
    for c in rubric.criteria:
        if c.kind == "binary":
            questions.append(rg.LabelQuestion(name=c.id, title=c.name, description=_anchors(c),
                                              labels={"yes": "yes", "no": "no"}, required=False))
        else:
            questions.append(rg.RatingQuestion(name=c.id, title=c.name, description=_anchors(c),
                                               values=list(range(c.min, c.max + 1)), required=False))
    questions += [
        rg.LabelQuestion(name=rubric.benign.id, title=rubric.benign.name, required=False,
                         description=rubric.benign.question + "\n" + "\n".join(
                             f"{o.id}: {o.description}" for o in rubric.benign.options),
                         labels={o.id: o.id.replace("_", " ") for o in rubric.benign.options}),
        rg.LabelQuestion(name="strategy", title="Strategy used", required=False,
                         description="Which intervention strategy does the response actually follow?",
                         labels={s.id: s.name for s in taxonomy.strategies} | {"none": "none"}),
        rg.LabelQuestion(name="decision", title="Decision", labels=list(DECISIONS), required=True,
                         description="accept as is, reject, or edit (write the corrected response below)"),
        rg.TextQuestion(name="corrected_response", title="Corrected response", required=False, use_markdown=True,
                        description="Only when you chose edit: the full response as it should read."),
    ]
    metadata = [
        rg.TermsMetadataProperty(name="domain", options=taxonomy.domain_ids()),
        # category and intent take any value: imported seeds may carry their own
        rg.TermsMetadataProperty(name="category"),
        rg.TermsMetadataProperty(name="label", options=["harmful", "benign"]),
        rg.TermsMetadataProperty(name="intent"),
        rg.TermsMetadataProperty(name="planned_strategy", options=[s.id for s in taxonomy.strategies]),
        rg.TermsMetadataProperty(name="locale"),
        rg.TermsMetadataProperty(name="split"),
        rg.TermsMetadataProperty(name="checks_passed", options=["yes", "no"]),
        rg.TermsMetadataProperty(name="judge_model"),
    ]
    for c in rubric.criteria:
        metadata.append(rg.TermsMetadataProperty(name=f"judge_{c.id}", options=["yes", "no"]) if c.kind == "binary"
                        else rg.IntegerMetadataProperty(name=f"judge_{c.id}", min=c.min, max=c.max))
    metadata.append(rg.TermsMetadataProperty(name=f"judge_{rubric.benign.id}", options=rubric.benign.option_ids()))
    return rg.Settings(
        guidelines=guidelines(),
        fields=[rg.TextField(name="prompt", title="Prompt"),
                rg.TextField(name="response", title="Response", use_markdown=True),
                rg.TextField(name="critique", title="Self-critique", required=False),
                rg.TextField(name="baseline_response", title="Baseline response", required=False)],
        questions=questions,
        metadata=metadata,
        vectors=[rg.VectorField(name=VECTOR, title="Prompt embedding", dimensions=dimensions)],
        distribution=rg.TaskDistribution(min_submitted=config.min_submitted),
    )


def settings_signature(settings) -> dict[str, list]:
    """What must match for a dataset to hold our records: names, types, labels, scales, dimensions."""
    def question(q) -> tuple:
        options = getattr(q, "labels", None) or getattr(q, "values", None) or []
        return (q.name, type(q).__name__, tuple(str(o) for o in options))

    return {
        "fields": sorted((f.name, type(f).__name__) for f in settings.fields),
        "questions": sorted(question(q) for q in settings.questions),
        "metadata": sorted((m.name, type(m).__name__) for m in settings.metadata),
        "vectors": sorted((v.name, v.dimensions) for v in settings.vectors),
    }


def record_fields(record: Record) -> dict[str, str]:
    fields = {"prompt": record.prompt, "response": record.response or " ", "critique": record.critique,
              "baseline_response": record.baseline_response}
    return {k: v for k, v in fields.items() if v}


def _judge_value(criterion, value) -> str | int | None:
    """A judge score as the queue holds it: yes/no, or an integer on the criterion's scale (else left out)."""
    if value is None:
        return None
    if criterion.kind == "binary":
        return _yes_no(bool(value))
    return int(value) if criterion.min <= value <= criterion.max else None


def record_metadata(record: Record, split: str) -> dict[str, Any]:
    rubric = default_rubric()
    meta: dict[str, Any] = {"domain": record.domain, "category": record.category, "label": record.label,
                            "intent": record.intent, "planned_strategy": record.strategy, "locale": record.locale,
                            "split": split, "checks_passed": _yes_no(record.checks.passed),
                            "judge_model": record.scores.judge_model}
    if record.scores.compliance in rubric.benign.option_ids():
        meta[f"judge_{rubric.benign.id}"] = record.scores.compliance
    taxonomy = default_taxonomy()
    if meta["planned_strategy"] not in {s.id for s in taxonomy.strategies}:
        meta["planned_strategy"] = None
    for c in rubric.criteria:
        meta[f"judge_{c.id}"] = _judge_value(c, getattr(record.scores, c.id))
    return {k: v for k, v in meta.items() if v is not None}


def record_suggestions(record: Record) -> list[tuple[str, Any, str]]:
    """(question, value, agent): the judge's scores, and the strategy the pipeline planned."""
    rubric = default_rubric()
    judge = record.scores.judge_model or "judge"
    out = []
    for c in rubric.criteria:
        value = _judge_value(c, getattr(record.scores, c.id))
        if value is not None:
            out.append((c.id, value, judge))
    if record.scores.compliance in rubric.benign.option_ids():
        out.append((rubric.benign.id, record.scores.compliance, judge))
    if record.strategy in {s.id for s in default_taxonomy().strategies}:
        out.append(("strategy", record.strategy, record.generation.model or "pipeline"))
    return out


# -- the Argilla interface -----------------------------------------------------------------------

@dataclass
class Annotation:
    user: str
    status: str  # submitted, draft, discarded
    values: dict[str, Any]


@dataclass
class QueueRecord:
    id: str
    fields: dict[str, Any]
    metadata: dict[str, Any]
    annotations: list[Annotation] = field(default_factory=list)

    def submitted(self) -> list[Annotation]:
        return sorted((a for a in self.annotations if a.status == "submitted"), key=lambda a: a.user)


def _server_url(config: ReviewConfig) -> str:
    url = config.api_url or os.environ.get("ARGILLA_API_URL")
    if not url:
        raise PsychosafeError("no Argilla server configured: set ARGILLA_API_URL and ARGILLA_API_KEY (or api_url in "
                              "configs/review.yaml); for a local one run `python scripts/argilla_server.py start`")
    return url.rstrip("/")


@contextlib.contextmanager
def argilla_errors(url: str) -> Iterator[None]:
    """Turn the SDK's and httpx's exceptions into messages that say what to do (never showing the key)."""
    import httpx
    from argilla._exceptions import ArgillaCredentialsError, ArgillaError, ForbiddenError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK warns where we already handle the case
            yield
    except ArgillaCredentialsError:
        raise PsychosafeError(f"Argilla at {url} refused the API key: set ARGILLA_API_KEY to a valid key (Argilla UI "
                              "> My settings; for the local server: eval \"$(python scripts/argilla_server.py env)\")") \
            from None
    except ForbiddenError:
        raise PsychosafeError(f"Argilla at {url}: this API key's user may not do this; use an owner's or admin's key "
                              "(annotators annotate in the UI)") from None
    except (httpx.TransportError, ConnectionError) as exc:
        raise PsychosafeError(f"cannot reach Argilla at {url} ({type(exc).__name__}): is the server running? Start "
                              "a local one with `python scripts/argilla_server.py start`, or check ARGILLA_API_URL") \
            from None
    except ArgillaError as exc:
        raise PsychosafeError(f"Argilla at {url}: {exc}") from None


class ArgillaQueue:
    """The few things review needs from an Argilla server."""

    def __init__(self, config: ReviewConfig):
        import argilla as rg

        self.config = config
        self.url = _server_url(config)
        key = config.api_key or os.environ.get(config.api_key_env)
        if not key:
            raise PsychosafeError(f"no Argilla API key: set {config.api_key_env} (the key is never printed or stored)")
        with argilla_errors(self.url):
            self.client = rg.Argilla(api_url=self.url, api_key=key, timeout=60, retries=1)
        self._dataset = None

    def errors(self):
        return argilla_errors(self.url)

    def dataset(self, *, create_with=None):
        """The review dataset; created with `create_with` settings if missing, refused if its settings differ."""
        import argilla as rg

        if self._dataset is not None:
            return self._dataset
        name, ws_name = self.config.dataset, self.config.workspace
        with self.errors():
            workspace = self.client.workspaces(ws_name)
            if workspace is None and create_with is not None:
                workspace = rg.Workspace(name=ws_name, client=self.client).create()
            found = self.client.datasets(name=name, workspace=workspace) if workspace is not None else None
            if found is None:
                if create_with is None:
                    raise PsychosafeError(f"no dataset '{name}' in workspace '{ws_name}' at {self.url}: "
                                          "run `psychosafe review push` first (or pass the dataset name it used)")
                found = rg.Dataset(name=name, workspace=workspace, settings=create_with, client=self.client).create()
            elif create_with is not None:
                ours, theirs = settings_signature(create_with), settings_signature(found.settings)
                differs = [part for part in ours if ours[part] != theirs[part]]
                if differs:
                    raise PsychosafeError(
                        f"dataset '{name}' in workspace '{ws_name}' exists with other settings ({', '.join(differs)} "
                        "differ from what rubric.yaml, taxonomy.yaml and the record give): push under another name "
                        "(--dataset NEW), or delete that dataset in Argilla if its annotations are not needed")
                if found.settings.distribution.min_submitted != self.config.min_submitted:
                    found.settings.distribution = rg.TaskDistribution(min_submitted=self.config.min_submitted)
                    found.update()
        self._dataset = found
        return found

    def min_submitted(self) -> int:
        """What the dataset itself asks for (its task distribution)."""
        with self.errors():
            return self.dataset().settings.distribution.min_submitted

    def records(self, *, with_responses: bool) -> list[QueueRecord]:
        from argilla._exceptions import ForbiddenError

        with self.errors():
            try:
                users = {u.id: u.username for u in self.client.users} if with_responses else {}
            except ForbiddenError:  # only owners may list users: annotators are then named by their id
                users = {}
            out = []
            for rec in self.dataset().records(with_responses=with_responses, with_suggestions=False,
                                              with_vectors=False):
                by_user: dict[Any, Annotation] = {}
                for response in rec.responses if with_responses else []:
                    user = users.get(response.user_id, str(response.user_id))
                    status = getattr(response.status, "value", response.status)
                    annotation = by_user.setdefault(response.user_id, Annotation(user, status, {}))
                    annotation.values[response.question_name] = response.value
                out.append(QueueRecord(str(rec.id), {k: v for k, v in dict(rec.fields).items() if v is not None},
                                       dict(rec.metadata or {}), list(by_user.values())))
        return out

    def log(self, rows: list[tuple[Record, str]], vectors: list[list[float]], *, progress: bool = True,
            batch_size: int = 64) -> None:
        import argilla as rg
        from rich.progress import Progress

        dataset = self.dataset()
        with self.errors(), Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("pushing to Argilla", total=len(rows))
            for start in range(0, len(rows), batch_size):
                batch = []
                for (record, split), vector in zip(rows[start:start + batch_size], vectors[start:start + batch_size]):
                    batch.append(rg.Record(
                        id=record.id, fields=record_fields(record), metadata=record_metadata(record, split),
                        vectors={VECTOR: vector},
                        suggestions=[rg.Suggestion(question_name=q, value=v, agent=a)
                                     for q, v, a in record_suggestions(record)]))
                with _quiet_sdk_progress():
                    dataset.records.log(batch, batch_size=len(batch))
                bar.advance(task, len(batch))


@contextlib.contextmanager
def _quiet_sdk_progress() -> Iterator[None]:
    """The SDK draws a tqdm bar per call to `log` and offers no switch; ours already shows the progress."""
    from unittest import mock

    import argilla.records._dataset_records as sdk_records

    with mock.patch.object(sdk_records, "tqdm", lambda iterable, **_: iterable):
        yield


# -- push -----------------------------------------------------------------------------------------

def push_review(run: RunFolder, config: ReviewConfig, *, progress: bool = True) -> dict:
    """Push the records the selection picks; new ones are created, changed ones updated (their annotations
    stay), unchanged ones are left alone. Writes review/push.json."""
    t = time.perf_counter()
    splits = load_run_records(run)  # bad input fails before the server or any model is touched
    rows = [(r, split) for split, records in splits.items() for r in records]
    chosen_ids = {r.id for r in select_records([r for r, _ in rows], config.select)}
    chosen = [(r, s) for r, s in rows if r.id in chosen_ids]
    queue = ArgillaQueue(config)

    from psychosafe.core.backends import build_embedder, embedder_id

    embedder = build_embedder(config.embedder)
    dimensions = (getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension)()
    dataset = queue.dataset(create_with=build_settings(config, dimensions))
    existing = {q.id: q for q in queue.records(with_responses=True)}
    new, changed, unchanged, changed_annotated = [], [], 0, 0
    for record, split in chosen:
        current = existing.get(record.id)
        if current is None:
            new.append((record, split))
        elif current.fields != record_fields(record) or current.metadata != record_metadata(record, split):
            changed.append((record, split))
            changed_annotated += bool(current.annotations)
        else:
            unchanged += 1
    todo = new + changed
    vectors = embedder.encode([r.prompt for r, _ in todo], normalize_embeddings=True,
                              batch_size=config.embedder.batch_size).tolist() if todo else []
    queue.log(todo, vectors, progress=progress)
    result = {
        "url": queue.url, "workspace": config.workspace, "dataset": config.dataset, "dataset_id": str(dataset.id),
        "selection": config.select.model_dump(), "min_submitted": config.min_submitted,
        "embedder": embedder_id(config.embedder),
        "counts": {"in_run": len(rows), "selected": len(chosen), "created": len(new), "updated": len(changed),
                   "updated_with_annotations": changed_annotated, "unchanged": unchanged},
        "seconds": round(time.perf_counter() - t, 3),
    }
    write_json_atomic(run.review / "push.json", result)
    run.record_stage("review_push", seconds=time.perf_counter() - t, counts=result["counts"])
    return result


# -- merge ----------------------------------------------------------------------------------------

def _as_score(criterion, value: Any) -> bool | int | None:
    if value is None:
        return None
    if criterion.kind == "binary":
        return value == "yes" if isinstance(value, str) else bool(value)
    return int(value)


@dataclass
class MergeResult:
    splits: dict[str, list[Record]]
    disagreements: list[dict]
    problems: list[dict]
    annotators: list[str]
    unverified_after_edit: list[str]


def merge_record(record: Record, submitted: list[Annotation], *, rule: AggregationRule,
                 min_submitted: int) -> tuple[Record, list[dict], list[dict]]:
    """The record with its review merged in, plus the disagreements and problems it showed."""
    rubric = default_rubric()
    disagreements, problems = [], []
    for question in [c.id for c in rubric.criteria] + ["strategy", "decision"]:
        answers = {a.user: a.values[question] for a in submitted if a.values.get(question) is not None}
        if len(set(map(str, answers.values()))) > 1:
            disagreements.append({"id": record.id, "domain": record.domain, "question": question, "answers": answers})
    human = {}
    for c in rubric.criteria:
        values = [_as_score(c, a.values.get(c.id)) for a in submitted if a.values.get(c.id) is not None]
        if c.kind == "binary":
            human[c.id] = aggregate(values, rule) if values else None
        else:
            human[c.id] = round(sum(values) / len(values), 3) if values else None
    review = record.review.model_copy(update={"annotator_count": len(submitted),
                                              "human_scores": record.review.human_scores.model_copy(update=human)})
    update: dict[str, Any] = {}
    status = "pending"
    if len(submitted) >= min_submitted:
        decision = aggregate([a.values.get("decision") for a in submitted], rule)
        if decision is None:
            problems.append({"id": record.id, "problem": f"no {rule} decision; stays pending"})
        elif decision == "edit":
            texts = [a.values.get("corrected_response", "").strip() for a in submitted
                     if a.values.get("decision") == "edit" and (a.values.get("corrected_response") or "").strip()]
            if texts:
                status = "edited"
                update["response"] = Counter(texts).most_common(1)[0][0]  # ties: the first annotator by name
                review = review.model_copy(update={"original_response": record.response})
            else:
                problems.append({"id": record.id, "problem": "edit chosen without a corrected response; stays pending"})
        else:
            status = DECISION_STATUS[decision]
        strategy = aggregate([a.values["strategy"] for a in submitted if a.values.get("strategy")], rule)
        if status in ("accepted", "edited") and strategy and strategy != "none":
            update["strategy"] = strategy
    update["review"] = review.model_copy(update={"status": status})
    merged = record.model_copy(update=update)
    if "response" in update:  # a human edit is checked like any response: its contact details must be listed
        merged = check_record(merged)
    return merged, disagreements, problems


def merge_reviews(splits: dict[str, list[Record]], queue_records: list[QueueRecord], *, rule: AggregationRule,
                  min_submitted: int) -> MergeResult:
    by_id = {q.id: q for q in queue_records}
    merged_splits, disagreements, problems, unverified = {}, [], [], []
    annotators = sorted({a.user for q in queue_records for a in q.submitted()})
    for split, records in splits.items():
        merged_splits[split] = []
        for record in records:
            queued = by_id.get(record.id)
            if queued is None:
                merged_splits[split].append(record)  # not in the queue: stays as it was (pending)
                continue
            merged, dis, probs = merge_record(record, queued.submitted(), rule=rule, min_submitted=min_submitted)
            merged_splits[split].append(merged)
            disagreements += dis
            problems += probs
            if merged.review.status == "edited" and merged.checks.unverified_contacts:
                unverified.append(merged.id)
    return MergeResult(merged_splits, disagreements, problems, annotators, unverified)


# -- agreement ------------------------------------------------------------------------------------

def agreement_figures(records: list[Record], queue_records: list[QueueRecord]) -> dict[str, dict[str, Agreement]]:
    """Per criterion: each annotator's score against the judge's on the same record (Cohen's kappa; quadratic
    weights on 1-5 scales), and the annotators among themselves (Krippendorff's alpha, nominal for yes/no,
    interval for 1-5)."""
    rubric = default_rubric()
    by_id = {r.id: r for r in records}
    human_vs_judge, inter = {}, {}
    for c in rubric.criteria:
        pairs, units = [], []
        for q in queue_records:
            record = by_id.get(q.id)
            if record is None:  # queued by another run: not part of this run's figures
                continue
            values = [_as_score(c, a.values.get(c.id)) for a in q.submitted() if a.values.get(c.id) is not None]
            units.append(values)
            judge = getattr(record.scores, c.id)
            if judge is not None:
                pairs += [(v, _as_score(c, judge)) for v in values]
        humans, judges = [p[0] for p in pairs], [p[1] for p in pairs]
        if c.kind == "binary":
            kappa = cohen_kappa(humans, judges, categories=[False, True])
            human_vs_judge[c.id] = Agreement("cohen_kappa", kappa, len(pairs))
            alpha, n = krippendorff_alpha(units, level="nominal")
            inter[c.id] = Agreement("krippendorff_alpha_nominal", alpha, n)
        else:
            kappa = cohen_kappa(humans, judges, categories=list(range(c.min, c.max + 1)), weights="quadratic")
            human_vs_judge[c.id] = Agreement("cohen_kappa_quadratic", kappa, len(pairs))
            alpha, n = krippendorff_alpha(units, level="interval")
            inter[c.id] = Agreement("krippendorff_alpha_interval", alpha, n)
    return {"human_vs_judge": human_vs_judge, "inter_annotator": inter}


# -- pull -----------------------------------------------------------------------------------------

def pull_review(run: RunFolder, config: ReviewConfig, *, min_submitted: int | None = None) -> dict:
    """Fetch submitted responses, merge them into the run's records and write review/. Returns the summary.
    A record is decided once it has as many submitted responses as the dataset asks for (the value push set),
    or `min_submitted` when given."""
    t = time.perf_counter()
    splits = load_run_records(run)
    queue = ArgillaQueue(config)
    needed = min_submitted or queue.min_submitted()
    queue_records = queue.records(with_responses=True)
    merged = merge_reviews(splits, queue_records, rule=config.rule, min_submitted=needed)
    all_records = [r for records in merged.splits.values() for r in records]
    figures = agreement_figures([r for records in splits.values() for r in records], queue_records)
    statuses = Counter(r.review.status for r in all_records)
    summary = {
        "statuses": {s: statuses.get(s, 0) for s in STATUSES},
        "annotators": len(merged.annotators),
        "rule": config.rule,
        "agreement": {kind: {c: a.as_dict() for c, a in per.items()} for kind, per in figures.items()},
    }
    run_ids = {r.id for r in all_records}
    details = {"annotators": merged.annotators, "min_submitted": needed, "dataset": config.dataset,
               "workspace": config.workspace, "not_in_run": sum(1 for q in queue_records if q.id not in run_ids),
               "problems": merged.problems, "edited_with_unverified_contacts": merged.unverified_after_edit}
    _write_pull(run, merged, summary, details)
    run.record_stage("review_pull", seconds=time.perf_counter() - t,
                     counts=summary["statuses"] | {"annotators": summary["annotators"]})
    return summary


def _write_pull(run: RunFolder, merged: MergeResult, summary: dict, details: dict) -> None:
    """Write into a staging folder, then move each output into review/ (a failure leaves the old ones)."""
    import datasets

    from psychosafe.schemas import records_to_dataset

    run.review.mkdir(parents=True, exist_ok=True)
    staging = run.review / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        dataset = datasets.DatasetDict({name: records_to_dataset(rows) for name, rows in merged.splits.items()})
        dataset.save_to_disk(str(staging / "dataset"), num_shards={name: 1 for name in dataset})
        write_json_atomic(staging / "summary.json", summary)
        write_json_atomic(staging / "disagreements.json", merged.disagreements)
        write_review_report(staging, merged, summary, details)
        for item in sorted(staging.iterdir()):
            target = run.review / item.name
            if target.is_dir():
                old = run.review / f".old-{item.name}-{os.getpid()}"
                os.replace(target, old)
                os.replace(item, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_review_report(folder: Path, merged: MergeResult, summary: dict, details: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for rows in merged.splits.values() for r in rows]
    domains = default_taxonomy().domain_ids()
    per_domain = {d: Counter(r.review.status for r in records if r.domain == d) for d in domains}
    criteria = [c.id for c in default_rubric().criteria]

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    bottom = [0] * len(domains)
    for status in STATUSES:
        values = [per_domain[d].get(status, 0) for d in domains]
        left.bar(domains, values, bottom=bottom, label=status)
        bottom = [b + v for b, v in zip(bottom, values)]
    left.set_title("Review status per domain")
    left.legend(fontsize=8, loc="upper right", framealpha=0.9)
    plt.setp(left.get_xticklabels(), rotation=20, ha="right")
    width = 0.38
    for offset, kind, label in ((-width / 2, "human_vs_judge", "human vs judge (Cohen's kappa)"),
                                (width / 2, "inter_annotator", "between annotators (Krippendorff's alpha)")):
        figures = [summary["agreement"][kind][c] for c in criteria]
        bars = right.bar([i + offset for i in range(len(criteria))],
                         [f["value"] if f["value"] is not None else 0 for f in figures], width, label=label)
        right.bar_label(bars, labels=[f"{f['value']:.2f}\nn={f['n']}" if f["value"] is not None else ""
                                      for f in figures], fontsize=7)
    right.set_xticks(range(len(criteria)), criteria)
    right.axhline(0, color="black", linewidth=0.8)
    right.set_ylim(-1.2, 1.3)  # room for the value labels
    right.set_title("Agreement per criterion (missing bar: undefined)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "review.png", dpi=100)
    plt.close(fig)

    waiting = sum(1 for r in records if r.review.status == "pending" and r.review.annotator_count < details["min_submitted"])

    def fmt(a: dict) -> str:
        return "undefined" if a["value"] is None else f"{a['value']:.3f}"

    md = ["# Review report", "",
          f"- Dataset `{details['dataset']}` in workspace `{details['workspace']}`; rule **{summary['rule']}**, "
          f"{details['min_submitted']} submitted response(s) needed per record",
          f"- Annotators: {summary['annotators']} ({', '.join(details['annotators']) or 'none yet'})",
          "- Statuses: " + ", ".join(f"{k} **{v}**" for k, v in summary["statuses"].items())
          + f" (pending: {waiting} awaiting answers, {summary['statuses']['pending'] - waiting} answered but undecided)",
          f"- Queue records not in this run: {details['not_in_run']}",
          "- The merged dataset is in `review/dataset` (same splits and features as `curated/`, which is unchanged); "
          "an edited record keeps the old response in `review.original_response`.", ""]
    md += ["## Status per domain", "", markdown_table(["domain", *STATUSES], [[d, *[per_domain[d].get(s, 0) for s in STATUSES]]
                                                                        for d in domains]), ""]
    md += ["## Agreement", "", markdown_table(
        ["criterion", "human vs judge", "metric", "pairs", "between annotators", "metric", "records"],
        [[c, fmt(summary["agreement"]["human_vs_judge"][c]), summary["agreement"]["human_vs_judge"][c]["metric"],
          summary["agreement"]["human_vs_judge"][c]["n"], fmt(summary["agreement"]["inter_annotator"][c]),
          summary["agreement"]["inter_annotator"][c]["metric"], summary["agreement"]["inter_annotator"][c]["n"]]
         for c in criteria]), "",
        "Human vs judge pairs each annotator's score with the judge's on the same record; between annotators "
        "counts records with two or more ratings.", "", "![review](review.png)", ""]
    md += ["## Disagreements", ""]
    if merged.disagreements:
        md += [markdown_table(["id", "domain", "question", "answers"],
                      [[d["id"], d["domain"], d["question"], ", ".join(f"{u}: {v}" for u, v in d["answers"].items())]
                       for d in merged.disagreements]), "", "All of them are in `disagreements.json`.", ""]
    else:
        md += ["None.", ""]
    if details["problems"]:
        md += ["## Records left pending", "", markdown_table(["id", "why"], [[p["id"], p["problem"]] for p in details["problems"]]), ""]
    if details["edited_with_unverified_contacts"]:
        md += ["## Edited responses with unverified contact details", "",
               "These human edits contain a phone number, URL or e-mail not in resources.yaml for the record's "
               "locale (`checks.passed` is false): fix them before publishing.", "",
               *[f"- `{i}`" for i in details["edited_with_unverified_contacts"]], ""]
    path = folder / "report.md"
    path.write_text("\n".join(md), encoding="utf-8")
    return path


# -- status ---------------------------------------------------------------------------------------

def review_status(config: ReviewConfig) -> dict:
    """Progress per domain (records, with a response, completed: as many submitted responses as the dataset
    asks for) and per annotator (submitted, draft, discarded)."""
    queue = ArgillaQueue(config)
    min_submitted = queue.min_submitted()
    records = queue.records(with_responses=True)
    per_domain: dict[str, Counter] = defaultdict(Counter)
    per_annotator: dict[str, Counter] = defaultdict(Counter)
    for q in records:
        counts = per_domain[q.metadata.get("domain", "unknown")]
        counts["records"] += 1
        counts["with_responses"] += bool(q.submitted())
        counts["completed"] += len(q.submitted()) >= min_submitted
        for a in q.annotations:
            per_annotator[a.user][a.status] += 1
    return {"url": queue.url, "dataset": config.dataset, "workspace": config.workspace, "records": len(records),
            "min_submitted": min_submitted,
            "per_domain": {d: {k: c.get(k, 0) for k in ("records", "with_responses", "completed")}
                           for d, c in sorted(per_domain.items())},
            "per_annotator": {u: {k: c.get(k, 0) for k in ("submitted", "draft", "discarded")}
                              for u, c in sorted(per_annotator.items())}}
