"""A STUB of the Hugging Face Hub's HTTP API, for tests only: the Hub cannot be reached from here.

It implements just what huggingface_hub calls to publish a dataset over the LFS transfer (Xet is switched
off in the client): create a repo, read its info (at a revision), validate a card's YAML, preupload, the LFS batch API
and its upload
URL, commit (NDJSON), list a tree, create a branch, create a tag. It keeps repositories in memory (a
branch is a path -> bytes map; commits and tags are kept) and records every request, so a test can
assert what was sent. It checks the bearer token and the LFS hashes, as the Hub does."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import yaml


@dataclass
class StubRequest:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else {}

    def ndjson(self) -> list[dict]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class StubRepo:
    repo_id: str
    repo_type: str
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    heads: dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})
    commits: list[dict] = field(default_factory=list)
    tags: dict[str, dict] = field(default_factory=dict)


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _is_lfs(path: str) -> bool:
    return path.endswith((".parquet", ".arrow", ".bin", ".safetensors"))


class HubStub:
    """`with HubStub(token="hf_test") as hub: HfApi(endpoint=hub.url, token="hf_test")`."""

    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, StubRepo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[StubRequest] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = StubRequest(self.command, unquote(url.path), parse_qs(url.query), dict(self.headers), body)
                with stub._lock:
                    stub.requests.append(req)
                    status, payload, headers = stub.route(req)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HubStub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- helpers for tests ---------------------------------------------------------------------
    def calls(self, method: str, pattern: str) -> list[StubRequest]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    # -- routing -------------------------------------------------------------------------------
    def route(self, req: StubRequest) -> tuple[int, object, dict]:
        if req.method == "PUT" and req.path.startswith("/_stub_lfs/"):  # the upload URL the batch API hands out
            return self._lfs_put(req)
        expected = f"Bearer {self.token}"
        if req.headers.get("authorization") != expected and req.headers.get("Authorization") != expected:
            return 401, {"error": "Invalid credentials in Authorization header"}, {"X-Error-Code": "InvalidCredentials"}
        m = None
        routes = [
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("POST", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>.+)", self._preupload),
            ("POST", r"/(?P<type>datasets|spaces)/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", self._lfs_batch),
            ("POST", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>.+)", self._commit),
            ("GET", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)", self._tree),
            ("GET", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)", self._info),
            ("GET", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)", self._info),
            ("POST", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/branch/(?P<rev>.+)", self._branch),
            ("POST", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/tag/(?P<rev>.+)", self._tag),
        ]
        for method, pattern, handler in routes:
            if req.method == method and (m := re.fullmatch(pattern, req.path)):
                if "repo" in m.groupdict():
                    repo = self.repos.get(m["repo"])
                    if repo is None:
                        return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
                    rev = m.groupdict().get("rev")
                    if rev is not None and handler not in (self._branch, self._tag) and rev not in repo.branches:
                        return 404, {"error": f"Invalid rev id: {rev}"}, {"X-Error-Code": "RevisionNotFound"}
                    return handler(req, repo, rev)
                return handler(req)
        return 404, {"error": f"stub: no route for {req.method} {req.path}"}, {}

    def _create_repo(self, req):
        body = req.json()
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        if repo_id in self.repos:
            return 409, {"error": "You already created this dataset repo", "url": self._repo_url(repo_id)}, {}
        self.repos[repo_id] = StubRepo(repo_id, body.get("type") or "model", body.get("visibility") == "private")
        return 200, {"url": self._repo_url(repo_id), "name": repo_id}, {}

    def _repo_url(self, repo_id: str) -> str:
        return f"{self.url}/datasets/{repo_id}"

    def _validate_yaml(self, req):
        content = req.json()["content"]
        m = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(m.group(1)) if m else None
        except yaml.YAMLError as exc:
            return 400, {"errors": [{"message": str(exc)}]}, {}
        if not isinstance(meta, dict):
            return 400, {"errors": [{"message": "no YAML metadata"}]}, {}
        return 200, {"warnings": []}, {}

    def _preupload(self, req, repo, rev):
        files = repo.branches[rev]
        out = []
        for f in req.json()["files"]:
            lfs = _is_lfs(f["path"])
            current = files.get(f["path"])
            oid = None if current is None else (hashlib.sha256(current).hexdigest() if lfs else _git_blob_sha1(current))
            out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                        "oid": oid})
        return 200, {"files": out}, {}

    def _lfs_batch(self, req, repo, rev):
        body = req.json()
        objects = [{"oid": o["oid"], "size": o["size"],
                    **({} if o["oid"] in self.lfs_objects
                       else {"actions": {"upload": {"href": f"{self.url}/_stub_lfs/{o['oid']}"}}})}
                   for o in body["objects"]]
        return 200, {"transfer": "basic", "objects": objects}, {}

    def _lfs_put(self, req):
        oid = req.path.rsplit("/", 1)[1]
        if hashlib.sha256(req.body).hexdigest() != oid:
            return 400, {"error": "sha256 mismatch"}, {}
        self.lfs_objects[oid] = req.body
        return 200, {}, {}

    def _commit(self, req, repo, rev):
        lines = req.ndjson()
        header = lines[0]["value"]
        files = dict(repo.branches[rev])
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                if value["oid"] not in self.lfs_objects:
                    return 422, {"error": f"LFS object {value['oid']} was never uploaded"}, {}
                files[value["path"]] = self.lfs_objects[value["oid"]]
            elif key == "deletedFile":
                if value["path"] not in files:
                    return 404, {"error": "A file with this name doesn't exist"}, {"X-Error-Code": "EntryNotFound"}
                del files[value["path"]]
            elif key == "deletedFolder":
                files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            else:
                return 400, {"error": f"unknown key {key}"}, {}
        oid = hashlib.sha1(json.dumps([header, sorted(files), len(repo.commits)]).encode()).hexdigest()
        repo.branches[rev] = files
        repo.heads[rev] = oid
        repo.commits.append({"oid": oid, "branch": rev, "summary": header["summary"],
                             "description": header.get("description", ""), "files": sorted(files)})
        return 200, {"commitUrl": f"{self._repo_url(repo.repo_id)}/commit/{oid}", "commitOid": oid,
                     "pullRequestUrl": None}, {}

    def _tree(self, req, repo, rev):
        return 200, [{"type": "file", "path": p, "size": len(d), "oid": _git_blob_sha1(d)}
                     for p, d in sorted(repo.branches[rev].items())], {}

    def _info(self, req, repo, rev=None):
        rev = rev or "main"
        return 200, {"id": repo.repo_id, "private": repo.private, "sha": repo.heads[rev],
                     "siblings": [{"rfilename": p} for p in sorted(repo.branches[rev])]}, {}

    def _branch(self, req, repo, rev):
        if rev in repo.branches:
            return 409, {"error": "Reference already exists"}, {}
        start = req.json().get("startingPoint") or "main"
        repo.branches[rev] = dict(repo.branches[start])
        repo.heads[rev] = repo.heads[start]
        return 200, {}, {}

    def _tag(self, req, repo, rev):
        body = req.json()
        if body["tag"] in repo.tags:
            return 409, {"error": "Tag already exists"}, {}
        if rev not in repo.heads.values() and rev not in repo.branches:
            return 404, {"error": f"Invalid rev id: {rev}"}, {"X-Error-Code": "RevisionNotFound"}
        repo.tags[body["tag"]] = {"revision": repo.heads.get(rev, rev), "message": body.get("message")}
        return 200, {}, {}
