"""Every call to the Argilla SDK (argilla 2.8 is in maintenance mode upstream, so it stays behind this one
class): the client, the review dataset, reading the queue back as plain `QueueRecord`s, logging records, and
the SDK's exceptions translated into messages that say what to do."""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Iterator

from psychosafe.core.progress import progress_bar
from psychosafe.errors import PsychosafeError
from psychosafe.schemas import Record

from .answers import Annotation, QueueRecord
from .config import ReviewConfig
from .settings import VECTOR, record_fields, record_metadata, record_suggestions, settings_signature


def _server_url(config: ReviewConfig) -> str:
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


def to_argilla_record(record: Record, split: str, vector: list[float]):
    """The Argilla record of one of ours: same id, the queue's fields and metadata, the judge's suggestions."""
    import argilla as rg

    return rg.Record(id=record.id, fields=record_fields(record), metadata=record_metadata(record, split),
                     vectors={VECTOR: vector},
                     suggestions=[rg.Suggestion(question_name=q, value=v, agent=a)
                                  for q, v, a in record_suggestions(record)])


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
        """Create or update these (record, split) rows, in batches."""
        dataset = self.dataset()
        with self.errors(), progress_bar("pushing to Argilla", len(rows), show=progress, transient=True) as bar:
            for start in range(0, len(rows), batch_size):
                batch = [to_argilla_record(record, split, vector) for (record, split), vector
                         in zip(rows[start:start + batch_size], vectors[start:start + batch_size])]
                with _quiet_sdk_progress():
                    dataset.records.log(batch, batch_size=len(batch))
                bar.advance(len(batch))


@contextlib.contextmanager
def _quiet_sdk_progress() -> Iterator[None]:
    """The SDK draws a tqdm bar per call to `log` and offers no switch; ours already shows the progress."""
    from unittest import mock

    import argilla.records._dataset_records as sdk_records

    with mock.patch.object(sdk_records, "tqdm", lambda iterable, **_: iterable):
        yield
