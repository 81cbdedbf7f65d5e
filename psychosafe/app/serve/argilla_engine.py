"""Argilla's OpenSearch engine, adapted to osmem (an in-memory OpenSearch emulator), and the launcher.

Runs inside the argilla-server virtualenv (never imported by psychosafe itself), started by
psychosafe.app.serve.argilla (`psychosafe serve argilla start`):

    .venv-argilla/bin/python psychosafe/app/serve/argilla_engine.py --host 127.0.0.1 --port 6900

osmem refuses two things the stock engine sends, so this engine replaces exactly those:
- painless-scripted `_update` (adding/removing a response, removing a suggestion): done here as
  read-modify-write guarded by the document's sequence number, retried on a version conflict
  (two annotators answering at once would otherwise lose one of the responses);
- the `knn` query (similar-record search): done here as a brute-force cosine search over the
  stored vectors, scored like OpenSearch's cosinesimil ((1 + cos) / 2).
Everything else is the stock engine. The module registers itself before the app is imported, which
is why the server must be started through this launcher.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional
from uuid import UUID

# Run as a script, this folder comes first on sys.path, and its modules (argilla.py, vllm.py) would shadow the
# packages of those names.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from argilla_server.search_engine.base import SearchEngine
from argilla_server.search_engine.commons import (
    es_bool_query,
    es_field_for_vector_settings,
    es_ids_query,
    es_index_name_for_dataset,
)
from argilla_server.search_engine.opensearch import OpenSearchEngine

ENGINE_NAME = "osmem"
MAX_UPDATE_ATTEMPTS = 20
SCAN_PAGE = 500


def _same_id(a: Any, b: Any) -> bool:
    return str(a) == str(b)


@SearchEngine.register(engine_name=ENGINE_NAME)
@dataclasses.dataclass
class OsmemSearchEngine(OpenSearchEngine):
    async def _modify_document(self, index: str, doc_id: str, change: Callable[[dict], None]) -> None:
        """Read the document, change its source, write it back only if nobody wrote in between."""
        from opensearchpy.exceptions import ConflictError

        for attempt in range(MAX_UPDATE_ATTEMPTS):
            current = await self.client.get(index=index, id=doc_id)
            source = current["_source"]
            change(source)
            try:
                await self.client.index(index=index, id=doc_id, body=source, refresh=True,
                                        if_seq_no=current["_seq_no"], if_primary_term=current["_primary_term"])
                return
            except ConflictError:
                await asyncio.sleep(0.01 * (attempt + 1))
        raise RuntimeError(f"document {doc_id} in {index}: still conflicting after {MAX_UPDATE_ATTEMPTS} attempts")

    async def update_record_response(self, response) -> None:
        record = response.record
        es_response = self._map_record_response_to_es(response)
        es_response = {k: (str(v) if isinstance(v, UUID) else v) for k, v in es_response.items()}
        es_response["status"] = getattr(es_response["status"], "value", es_response["status"])

        def change(source: dict) -> None:
            kept = [r for r in source.get("responses") or [] if not _same_id(r.get("id"), response.id)]
            source["responses"] = kept + [es_response]

        await self._modify_document(es_index_name_for_dataset(record.dataset), str(record.id), change)

    async def delete_record_response(self, response) -> None:
        record = response.record

        def change(source: dict) -> None:
            if source.get("responses") is not None:
                source["responses"] = [r for r in source["responses"] if not _same_id(r.get("id"), response.id)]

        await self._modify_document(es_index_name_for_dataset(record.dataset), str(record.id), change)

    async def delete_record_suggestion(self, suggestion) -> None:
        def change(source: dict) -> None:
            (source.get("suggestions") or {}).pop(suggestion.question.name, None)

        await self._modify_document(es_index_name_for_dataset(suggestion.record.dataset),
                                    str(suggestion.record_id), change)

    async def _request_similarity_search(self, index: str, vector_settings, value: List[float], k: int,
                                         excluded_id: Optional[UUID] = None,
                                         query_filters: Optional[List[dict]] = None) -> dict:
        field = es_field_for_vector_settings(vector_settings)
        query = es_bool_query(
            must=[{"exists": {"field": field}}],
            must_not=[es_ids_query([str(excluded_id)])] if excluded_id else None,
            should=query_filters or None,
            minimum_should_match=len(query_filters) if query_filters else None,
        )
        norm = math.sqrt(sum(x * x for x in value)) or 1.0
        scored: List[Dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.client.search(index=index, body={"query": query, "_source": [field]},
                                            from_=offset, size=SCAN_PAGE)
            hits = page["hits"]["hits"]
            for hit in hits:
                vector = hit.get("_source", {}).get("vectors", {}).get(field.split(".", 1)[1])
                if not vector:
                    continue
                other = math.sqrt(sum(x * x for x in vector)) or 1.0
                cosine = sum(a * b for a, b in zip(value, vector)) / (norm * other)
                scored.append({"_id": hit["_id"], "_score": (1.0 + cosine) / 2.0})
            offset += len(hits)
            if len(hits) < SCAN_PAGE:
                break
        scored.sort(key=lambda h: h["_score"], reverse=True)
        return {"hits": {"total": {"value": len(scored)}, "hits": scored[:k]}}


def main() -> None:
    if sys.argv[1:2] == ["cli"]:  # argilla-server's own CLI, with this engine registered (e.g. for reindex)
        from argilla_server.cli import app as cli

        cli(sys.argv[2:], prog_name="argilla_server")
        return
    parser = argparse.ArgumentParser(description="Run argilla-server with the osmem search engine.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6900)
    args = parser.parse_args()

    import uvicorn

    # Imported after the engine is registered: the app looks the engine up by name at start-up.
    from argilla_server import app

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
