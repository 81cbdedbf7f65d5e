"""Every call to the Argilla SDK (argilla 2.8 is in maintenance mode upstream, so it stays behind this one
class): the client, the review queues (a dataset per label), reading them back as plain `QueueRecord`s, logging
records, the checks that a key may manage the queues and that a queue is still the one pushed, and the SDK's
exceptions translated into messages that say what to do."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from typing import Any, Iterator

from psychosafe.core.progress import progress_bar
from psychosafe.errors import PsychosafeError
from psychosafe.schemas import Record

from .answers import Annotation, QueueRecord
from .config import ReviewConfig
from .findings import Finding
from .settings import LABELS, VECTOR, record_fields, record_metadata, record_suggestions, settings_signature


def queue_url(config: ReviewConfig) -> str:
    url = config.api_url or os.environ.get("ARGILLA_API_URL")
    if not url:
        raise PsychosafeError("no Argilla server configured: set ARGILLA_API_URL and ARGILLA_API_KEY (or api_url in "
                              "configs/review.yaml); for a local one run `psychosafe serve argilla start`")
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
                              "> My settings; for the local server: eval \"$(psychosafe serve argilla env)\")") \
            from None
    except ForbiddenError:
        raise PsychosafeError(f"Argilla at {url}: this API key's user may not do this; use an owner's or admin's key "
                              "(annotators annotate in the UI)") from None
    except (httpx.TransportError, ConnectionError) as exc:
        raise PsychosafeError(f"cannot reach Argilla at {url} ({type(exc).__name__}): is the server running? Start "
                              "a local one with `psychosafe serve argilla start`, or check ARGILLA_API_URL") \
            from None
    except ArgillaError as exc:
        raise PsychosafeError(f"Argilla at {url}: {exc}") from None


def to_argilla_record(record: Record, split: str, vector: list[float], findings: list[Finding]):
    """The Argilla record of one of ours: same id, the queue's fields and metadata, the judge's suggestions."""
    import argilla as rg

    return rg.Record(id=record.id, fields=record_fields(record, findings),
                     metadata=record_metadata(record, split, findings), vectors={VECTOR: vector},
                     suggestions=[rg.Suggestion(question_name=q, value=v, agent=a)
                                  for q, v, a in record_suggestions(record)])


def _comparable(signature: dict) -> dict:
    """A settings signature as it reads back from JSON (push.json), so that the two compare equal."""
    return json.loads(json.dumps(signature))


class ArgillaQueue:
    """The few things review needs from an Argilla server: one dataset per label (settings.LABELS)."""

    def __init__(self, config: ReviewConfig):
        import argilla as rg

        self.config = config
        self.url = queue_url(config)
        key = config.api_key or os.environ.get(config.api_key_env)
        if not key:
            raise PsychosafeError(f"no Argilla API key: set {config.api_key_env} (the key is never printed or stored)")
        with argilla_errors(self.url):
            self.client = rg.Argilla(api_url=self.url, api_key=key, timeout=60, retries=1)
        self._datasets: dict[str, Any] = {}

    def errors(self):
        return argilla_errors(self.url)

    def require_manager(self) -> None:
        """Push, pull and status read or change every annotator's work: an annotator's key would see only its own
        answers (a pull would merge a part of them), so it is refused up front."""
        with self.errors():
            me = self.client.me
            role = str(getattr(me.role, "value", me.role))
        if role not in ("owner", "admin"):
            raise PsychosafeError(f"Argilla at {self.url}: this API key belongs to '{me.username}', {role}; review "
                                  "push, pull and status need an owner's or admin's key (annotators answer in the UI)")

    def dataset(self, label: str, *, create_with=None):
        """A label's queue; created with `create_with` settings if missing, refused if its settings differ. None
        when it does not exist and `create_with` is not given."""
        import argilla as rg

        if label in self._datasets:
            return self._datasets[label]
        name, ws_name = self.config.queue_name(label), self.config.workspace
        with self.errors():
            workspace = self.client.workspaces(ws_name)
            if workspace is None and create_with is not None:
                workspace = rg.Workspace(name=ws_name, client=self.client).create()
            found = self.client.datasets(name=name, workspace=workspace) if workspace is not None else None
            if found is None:
                if create_with is None:
                    return None
                found = rg.Dataset(name=name, workspace=workspace, settings=create_with, client=self.client).create()
            elif create_with is not None:
                differs = self._settings_differ(found, create_with)
                if differs:
                    raise PsychosafeError(
                        f"dataset '{name}' in workspace '{ws_name}' exists with other settings ({', '.join(differs)} "
                        "differ from what rubric.yaml, taxonomy.yaml and the record give): push under another name "
                        "(--dataset NEW), or delete that dataset in Argilla if its annotations are not needed")
                if found.settings.distribution.min_submitted != self.config.min_submitted:
                    found.settings.distribution = rg.TaskDistribution(min_submitted=self.config.min_submitted)
                    found.update()
        self._datasets[label] = found
        return found

    @staticmethod
    def _settings_differ(found, expected) -> list[str]:
        ours, theirs = settings_signature(expected), settings_signature(found.settings)
        return [part for part in ours if ours[part] != theirs[part]]

    def queues(self) -> dict[str, Any]:
        """label -> dataset, for the labels whose queue exists; an error when none does."""
        found = {label: d for label in LABELS if (d := self.dataset(label)) is not None}
        if not found:
            names = " or ".join(f"'{self.config.queue_name(label)}'" for label in LABELS)
            raise PsychosafeError(f"no dataset {names} in workspace '{self.config.workspace}' at {self.url}: run "
                                  "`psychosafe review push` first (or pass the --dataset name it used)")
        return found

    def fingerprint(self, label: str) -> dict:
        """What identifies a queue as the one a push filled: its server id and its settings."""
        dataset = self.dataset(label)
        with self.errors():
            return {"name": self.config.queue_name(label), "id": str(dataset.id),
                    "settings": _comparable(settings_signature(dataset.settings))}

    def check_unchanged(self, pushed: dict[str, dict], build) -> None:
        """Refuse queues that changed on the server since the push: `pushed` is push.json's label -> fingerprint
        (may be empty: a run pushed elsewhere); `build(label, dimensions)` gives the settings this version expects.
        A queue deleted, recreated or given other questions would merge answers to questions nobody asked."""
        present = self.queues()
        for label, before in pushed.items():
            name = before.get("name", self.config.queue_name(label))
            if label not in present:
                raise PsychosafeError(f"dataset '{name}' is gone from workspace '{self.config.workspace}' at "
                                      f"{self.url} since the push (review/push.json): push the run again")
            now = self.fingerprint(label)
            if now["id"] != before.get("id"):
                raise PsychosafeError(f"dataset '{name}' at {self.url} was deleted and created again since the push "
                                      "(its id differs from review/push.json): its answers are not the ones this run "
                                      "was pushed for; push the run again, then pull once annotators have answered")
            if before.get("settings") and now["settings"] != before["settings"]:
                changed = [part for part in now["settings"] if now["settings"][part] != before["settings"].get(part)]
                raise PsychosafeError(f"dataset '{name}' at {self.url} changed since the push ({', '.join(changed)} "
                                      "differ from review/push.json): answers to changed questions cannot be merged; "
                                      "restore its settings in Argilla, or push under a new --dataset name")
        for label, dataset in present.items():
            with self.errors():  # the vectors are compared apart from the rest (any size the embedder gave)
                vectors = {v.name: v.dimensions for v in dataset.settings.vectors}
            dimensions = vectors.get(VECTOR, 1)
            differs = [part for part in self._settings_differ(dataset, build(label, dimensions)) if part != "vectors"]
            if differs:
                raise PsychosafeError(f"dataset '{self.config.queue_name(label)}' at {self.url} has other settings "
                                      f"than review expects ({', '.join(differs)} differ): it was not filled by "
                                      "`psychosafe review push`, or was changed on the server")

    def min_submitted(self) -> int:
        """What the queues themselves ask for (their task distribution; push gives every queue the same)."""
        with self.errors():
            return max(d.settings.distribution.min_submitted for d in self.queues().values())

    def records(self, *, with_responses: bool) -> list[QueueRecord]:
        """Every queue's records, each with its label and (when asked) each annotator's answers."""
        from argilla._exceptions import ForbiddenError

        with self.errors():
            try:
                users = {u.id: u.username for u in self.client.users} if with_responses else {}
            except ForbiddenError:  # only owners may list users: annotators are then named by their id
                users = {}
            out = []
            for label, dataset in self.queues().items():
                for rec in dataset.records(with_responses=with_responses, with_suggestions=False,
                                           with_vectors=False):
                    by_user: dict[Any, Annotation] = {}
                    for response in rec.responses if with_responses else []:
                        user = users.get(response.user_id, str(response.user_id))
                        status = getattr(response.status, "value", response.status)
                        annotation = by_user.setdefault(response.user_id, Annotation(user, status, {}))
                        annotation.values[response.question_name] = response.value
                    out.append(QueueRecord(str(rec.id), {k: _plain(v) for k, v in dict(rec.fields).items()
                                                         if v is not None},
                                           dict(rec.metadata or {}), list(by_user.values()), label=label))
        return out

    def log(self, label: str, rows: list[tuple[Record, str, list[Finding]]], vectors: list[list[float]], *,
            progress: bool = True, batch_size: int = 64) -> None:
        """Create or update these (record, split, findings) rows in the label's queue, in batches."""
        dataset = self.dataset(label)
        with self.errors(), progress_bar(f"pushing to {self.config.queue_name(label)}", len(rows), show=progress,
                                         transient=True) as bar:
            for start in range(0, len(rows), batch_size):
                batch = [to_argilla_record(record, split, vector, findings) for (record, split, findings), vector
                         in zip(rows[start:start + batch_size], vectors[start:start + batch_size])]
                with _quiet_sdk_progress():
                    dataset.records.log(batch, batch_size=len(batch))
                bar.advance(len(batch))


def _plain(value: Any) -> Any:
    """A field's value as record_fields writes it: a chat field's messages (the SDK's models) as plain dicts."""
    if isinstance(value, list):
        return [m.model_dump() if hasattr(m, "model_dump") else dict(m) for m in value]
    return value


@contextlib.contextmanager
def _quiet_sdk_progress() -> Iterator[None]:
    """The SDK draws a tqdm bar per call to `log` and offers no switch; ours already shows the progress."""
    from unittest import mock

    import argilla.records._dataset_records as sdk_records

    with mock.patch.object(sdk_records, "tqdm", lambda iterable, **_: iterable):
        yield
