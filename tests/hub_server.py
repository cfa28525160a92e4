"""A small Hugging Face Hub look-alike for tests that cannot reach the real Hub.

`FakeHub` runs a stdlib `ThreadingHTTPServer` on 127.0.0.1 (free port) in a background
thread and answers the subset of the Hub HTTP API that `huggingface_hub` uses to create
repos, validate README.md metadata, upload folders (regular and LFS files), download files
and snapshots, manage branches, tags and Space variables. Point the client at it with
`HF_ENDPOINT=hub.url` (set before `huggingface_hub` is imported), `HF_TOKEN=hub.token` (or
`hub.read_token`, which may read but gets 403 on every write, like a read-only token on the
Hub) and `HF_HUB_DISABLE_XET=1` (see below).

Like the Hub:
- tokens belong to the user `FakeHub.user`, member of the org `FakeHub.org`; a write token
  writes only to those two namespaces, and a token reads the private repos of those
  namespaces only. `FakeHub.publish` adds a repo of any namespace (public, private or gated),
  as if its owner had pushed it (e.g. a dataset such as `stanfordnlp/imdb`);
- an anonymous request for a missing or hidden private repo gets 401, an authenticated one
  404 (both `X-Error-Code: RepoNotFound`); a gated repo's metadata and listings are public,
  its files answer 401 (anonymous) or 403 (not approved) with `X-Error-Code: GatedRepo`;
- preupload answers `uploadMode: "lfs"` for files the repo's `.gitattributes` sends to LFS
  (the Hub's default one when the repo has none), binary files (a NUL byte in the 512-byte
  sample, as git decides) and files of 10 MiB or more; the others travel base64 inline in
  the commit NDJSON, which refuses binary or large regular files. Its `oid` is the SHA-256 of
  an LFS file (the git blob id of a regular one), so the client skips unchanged files;
- LFS uploads use the batch API (basic transfer): upload actions point at a signed URL on
  this server, which checks each object's SHA-256 and size, then an optional verify action;
  objects a repo already holds get no actions; a commit's `lfsFile` entries must name
  objects uploaded to that repo;
- downloads of LFS files carry their SHA-256 as `ETag`/`X-Linked-Etag`; byte ranges
  (`bytes=A-B`, `bytes=A-`, suffix `bytes=-N`) are answered 206.

Simplifications compared with the real Hub:
- no Xet storage: huggingface_hub decides on its own to upload LFS-mode files through Xet
  whenever `hf_xet` is installed (it asks the server nothing about it), so clients that must
  upload LFS files here set `HF_HUB_DISABLE_XET=1`; with Xet, the write-token request gets 403;
- `large_file_bytes`: files of at least that many bytes are "lfs" and refused by large-file
  storage (LFS batch error, Xet token 403), which is how tests see a failed large-file upload;
- README.md metadata is checked for the keys and types that hub-docs document (modelcard.md,
  spaces-config-reference.md), not against every rule of the Hub;
- a new repo starts with an empty "initial commit" on `main` (the real Hub adds a
  `.gitattributes` file), so `main` always resolves to a commit;
- no pull requests, pagination, multipart LFS transfer, redirects to a CDN or `.gitignore` rules;
- every answer allows any origin to read it (`Access-Control-Allow-Origin: *`), as the Hub's file downloads
  do, so a page of another origin (the static Space) can fetch a model's files.

Usage:
    with FakeHub() as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, "HF_HUB_DISABLE_XET": "1"}
        ...
        assert hub.files("tester/my-model") == {"config.json": b"{}"}
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# API paths say "models", the client says repo_type "model", file URLs use a prefix.
_API_KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}

_Reply = tuple[int, dict[str, str], bytes]

LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub sends files of this size or more to LFS, whatever their content
SAMPLE_BYTES = 512  # what the client sends of each file to preupload
# The LFS rules of the `.gitattributes` the Hub puts in a new repo, used when a repo has none.
DEFAULT_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm",
    "*.xz", "*.zip", "*.zst", "*tfevents*",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

# README.md metadata, as the Hub's validate-yaml endpoint checks it. The block is found with the Hub's
# own pattern (huggingface_hub.repocard.REGEX_YAML_BLOCK is a copy); messages are worded like the Hub's.
_YAML_BLOCK = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")
SHORT_DESCRIPTION_MAX = 60  # characters, spaces-config-reference.md
_STRING = (lambda v: isinstance(v, str), "must be a string")
_STRINGS = (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "must be an array of strings")
_STRING_OR_STRINGS = (lambda v: _STRING[0](v) or _STRINGS[0](v), "must be a string or an array of strings")
_BOOLEAN = (lambda v: isinstance(v, bool), "must be a boolean")
_INTEGER = (lambda v: isinstance(v, int) and not isinstance(v, bool), "must be an integer")
_COLOR = (lambda v: v in ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"), "must be a color name")
_SDKS = ("gradio", "streamlit", "docker", "static")
_SDK = (lambda v: v in _SDKS, f"must be one of [{', '.join(_SDKS)}]")
_SHORT_DESCRIPTION = (lambda v: isinstance(v, str) and len(v) <= SHORT_DESCRIPTION_MAX,
                      f"length must be less than or equal to {SHORT_DESCRIPTION_MAX} characters long")
# A dict is an object with these required keys, a one-item list an array of such items, None any value.
_MODEL_INDEX = [{"name": _STRING, "results": [{"task": {"type": _STRING}, "dataset": {"type": _STRING, "name": _STRING},
                                               "metrics": [{"type": _STRING, "value": None}]}]}]
_COMMON_KEYS = {"license": _STRING, "language": _STRING_OR_STRINGS, "tags": _STRINGS, "datasets": _STRING_OR_STRINGS}
# Other keys are free-form on the Hub too.
_CARD_KEYS = {
    "model": {**_COMMON_KEYS, "library_name": _STRING, "pipeline_tag": _STRING, "metrics": _STRINGS,
              "base_model": _STRING_OR_STRINGS, "model-index": _MODEL_INDEX},
    "dataset": _COMMON_KEYS,
    "space": {**_COMMON_KEYS, "title": _STRING, "emoji": _STRING, "colorFrom": _COLOR, "colorTo": _COLOR, "sdk": _SDK,
              "sdk_version": _STRING, "app_file": _STRING, "app_port": _INTEGER, "models": _STRINGS, "pinned": _BOOLEAN,
              "fullWidth": _BOOLEAN, "disable_embedding": _BOOLEAN, "short_description": _SHORT_DESCRIPTION},
}


def git_blob_sha1(data: bytes) -> str:
    """Git's id for a file: the Hub's `oid` and `ETag` of regular (non-LFS) files.

    The client compares it with its own hash of a local file to skip unchanged files.
    """
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    # The client parses exactly this shape: 2024-01-31T12:00:00.000Z
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _json(payload: object, status: int = 200) -> _Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


class HubError(Exception):
    """An error answered like the Hub does; the client picks its exception from `X-Error-Code`."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        fields: dict | None = None,  # extra JSON fields next to "error"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or {}
        self.headers = dict(headers or {})
        if code is not None:
            self.headers["X-Error-Code"] = code

    def reply(self) -> _Reply:
        status, headers, body = _json({"error": self.message, **self.fields}, self.status)
        return status, {**headers, **self.headers, "X-Error-Message": self.message}, body


class _BlobStore:
    """File contents keyed by git blob sha1; on disk under `root` if given, to keep big uploads off the heap."""

    def __init__(self, root: Path | None) -> None:
        self._root = root
        self._memory: dict[str, bytes] = {}
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> str:
        oid = git_blob_sha1(data)
        if self._root is None:
            self._memory[oid] = data
        else:
            (self._root / oid).write_bytes(data)
        return oid

    def get(self, oid: str) -> bytes:
        return self._memory[oid] if self._root is None else (self._root / oid).read_bytes()


@dataclass
class _Commit:
    id: str
    date: str
    files: dict[str, str]  # path -> blob sha1
    message: str
    lfs: set[str] = field(default_factory=set)  # paths stored in LFS (listed with their SHA-256)


@dataclass
class _Repo:
    repo_id: str
    repo_type: str
    private: bool
    sdk: str | None
    created_at: str
    gated: bool = False  # files readable only by the owner's namespaces and `approved` users
    approved: set[str] = field(default_factory=set)  # users whose access request to a gated repo was accepted
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit id
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit id
    commits: dict[str, _Commit] = field(default_factory=dict)  # commit id -> commit, in creation order
    variables: dict[str, dict] = field(default_factory=dict)  # Space variables: key -> {"value", ...}
    lfs_objects: dict[str, str] = field(default_factory=dict)  # LFS objects uploaded here: SHA-256 -> blob sha1

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]

    def resolve(self, revision: str) -> _Commit:
        """A branch, a tag or a full commit id, like the Hub accepts in URLs."""
        commit_id = self.branches.get(revision) or self.tags.get(revision) or revision
        if commit_id not in self.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[commit_id]

    def add_commit(self, branch: str, files: dict[str, str], message: str, lfs: set[str] | None = None) -> _Commit:
        commit = _Commit(id=os.urandom(20).hex(), date=_now(), files=files, message=message, lfs=set(lfs or ()))
        self.commits[commit.id] = commit
        self.branches[branch] = commit.id
        return commit


@dataclass(frozen=True)
class _Caller:
    """Who sent a request with a valid token: the user, the token's role and the namespaces it may write to."""

    user: str
    role: str  # "write" or "read"
    namespaces: frozenset[str]


class FakeHub:
    """Hub look-alike served over HTTP; see the module docstring.

    token: the write token, as `Authorization: Bearer <token>`; writes need it.
    read_token: a token that reads (its namespaces' private repos included) and gets 403 on writes.
    root: folder for file contents (kept in memory when None); repo metadata stays in memory.
    """

    user = "tester"
    org = "tester-org"  # an organization the user belongs to (with write access)

    def __init__(self, token: str = "hf_test_token", read_token: str = "hf_test_read_token",
                 root: Path | None = None) -> None:
        self.token = token
        self.read_token = read_token
        self.url = ""
        # Files of at least this many bytes go to large-file storage, which refuses them; see the module docstring.
        self.large_file_bytes: int | None = None
        self.requests: list[tuple[str, str, dict]] = []  # (method, path with query, headers with lower-case names)
        # While positive, a commit request is read and then the connection is dropped without an answer,
        # like a server going away mid-push; each drop counts it down.
        self.drop_commits = 0
        self._blobs = _BlobStore(root)
        self._sha256: dict[str, str] = {}  # blob sha1 -> SHA-256 of the content, computed once
        self._secret = os.urandom(16)  # signs LFS upload URLs, as a storage service signs its pre-signed URLs
        self._repos: dict[tuple[str, str], _Repo] = {}  # (repo_type, repo_id) -> repo
        self._lock = threading.Lock()  # the client downloads with several threads
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeHub:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection for tests

    def commits(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """Ids of all commits of the repo (any branch), oldest first, starting with the initial commit."""
        with self._lock:
            return list(self._repo(repo_type, repo_id).commits)

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        with self._lock:
            commit = self._repo(repo_type, repo_id).resolve(revision)
            return {path: self._blobs.get(oid) for path, oid in commit.files.items()}

    def lfs_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> set[str]:
        """Paths of the revision that are stored in LFS."""
        with self._lock:
            return set(self._repo(repo_type, repo_id).resolve(revision).lfs)

    def variables(self, repo_id: str) -> dict[str, str]:
        with self._lock:
            return {key: var["value"] for key, var in self._repo("space", repo_id).variables.items()}

    def publish(self, repo_id: str, files: dict[str, bytes], repo_type: str = "dataset", lfs: bool | None = None,
                private: bool = False, gated: bool = False) -> str:
        """Add `files` to the repo `repo_id` (created if missing, any namespace, `private` or `gated`) in one commit
        on main, as if its owner had pushed them. `lfs`: all LFS, all regular, or (None) as preupload decides.
        Returns the commit id."""
        with self._lock:
            key = (repo_type, repo_id)
            if key not in self._repos:
                self._repos[key] = _Repo(repo_id=repo_id, repo_type=repo_type, private=private,
                                         sdk=None, created_at=_now(), gated=gated)
                self._repos[key].add_commit("main", {}, "initial commit")
            repo = self._repos[key]
            head = repo.resolve("main")
            files_now, lfs_now = dict(head.files), set(head.lfs)
            for path, data in files.items():
                files_now[path] = self._blobs.put(data)
                in_lfs = self._lfs_mode(head, path, len(data), data[:SAMPLE_BYTES]) if lfs is None else lfs
                if in_lfs:
                    repo.lfs_objects[self._sha256_of(files_now[path])] = files_now[path]
                    lfs_now.add(path)
                else:
                    lfs_now.discard(path)
            return repo.add_commit("main", files_now, "Upload files", lfs_now).id

    def grant_access(self, repo_id: str, user: str, repo_type: str = "dataset") -> None:
        """Accept `user`'s request to access the gated repo, as its owner would on the Hub."""
        with self._lock:
            self._repo(repo_type, repo_id).approved.add(user)

    def commit_message(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        with self._lock:
            return self._repo(repo_type, repo_id).resolve(revision).message

    def is_private(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return self._repo(repo_type, repo_id).private

    # ------------------------------------------------------------------ routing

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply:
        """Answer one request; called by the HTTP handler thread."""
        with self._lock:
            self.requests.append((method, raw_path, headers))
            url = urlsplit(raw_path)
            # Split before unquoting: the client sends revisions and tree paths with "/" as %2F.
            parts = [unquote(part) for part in url.path.split("/")[1:]]
            try:
                caller = self._authenticate(headers.get("authorization"))
                if parts[:1] == ["lfs-storage"]:  # the signed upload URL: no token, like a storage service
                    return self._store_lfs_object(method, parts[1:], parse_qs(url.query), body)
                return self._route(method, parts, parse_qs(url.query), body, caller, headers.get("range"))
            except HubError as error:
                return error.reply()

    def _authenticate(self, authorization: str | None) -> _Caller | None:
        """Who the token belongs to, None for anonymous; a wrong token is a 401 even on public reads, like the Hub."""
        roles = {f"Bearer {self.token}": "write", f"Bearer {self.read_token}": "read"}
        if authorization is None:
            return None
        if authorization not in roles:
            raise HubError(401, "Invalid credentials in Authorization header")
        return _Caller(self.user, roles[authorization], frozenset({self.user, self.org}))

    def _route(
        self, method: str, parts: list[str], query: dict, body: bytes, caller: _Caller | None, byte_range: str | None
    ) -> _Reply:
        match method, parts:
            case "GET", ["api", "whoami-v2"]:
                _require_token(caller)
                return _json(self._whoami(caller))
            case "POST", ["api", "repos", "create"]:
                _require_write(caller)
                return self._create_repo(json.loads(body), caller)
            case "POST", ["api", "validate-yaml"]:
                return _json(_validate_yaml(json.loads(body)))
            case _, ["api", kind, namespace, name, *rest] if kind in _API_KINDS:
                repo = self._visible_repo(_API_KINDS[kind], f"{namespace}/{name}", caller)
                return self._repo_api(method, repo, rest, query, body, caller)
            case "POST", [*repo_parts, "info", "lfs", "objects", action] if repo_parts[-1:] and \
                    repo_parts[-1].endswith(".git"):
                repo_type, repo_id = _git_repo(repo_parts)
                repo = self._visible_repo(repo_type, repo_id, caller)
                self._require_write(repo, caller)
                return self._lfs_api(repo, action, json.loads(body))
            case "GET" | "HEAD", ["datasets" | "spaces" as kind, namespace, name, "resolve", revision, *path]:
                return self._download(_API_KINDS[kind], f"{namespace}/{name}", revision, path, caller, byte_range)
            case "GET" | "HEAD", [namespace, name, "resolve", revision, *path]:
                return self._download("model", f"{namespace}/{name}", revision, path, caller, byte_range)
        raise HubError(404, f"FakeHub has no route for {method} /{'/'.join(parts)}")

    def _repo_api(
        self, method: str, repo: _Repo, rest: list[str], query: dict, body: bytes, caller: _Caller | None
    ) -> _Reply:
        match method, rest:
            case "GET", []:
                return _json(self._info(repo, "main"))
            case "GET", ["revision", revision]:
                return _json(self._info(repo, revision))
            case "GET", ["tree", revision, *path]:
                recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
                return _json(self._tree(repo, revision, "/".join(path), recursive))
            case "GET", ["refs"]:
                return _json(self._refs(repo))
            case "POST", ["paths-info", revision]:
                # A form: paths=a&paths=b&expand=False
                return _json(self._paths_info(repo, revision, parse_qs(body.decode()).get("paths", [])))
            case "GET", ["auth-check"]:
                self._check_gate(repo, caller)
                return _json({})
            case "GET", ["auth-check", "write"]:
                self._require_write(repo, caller)
                return _json({})
        self._require_write(repo, caller)  # every other route of a repo changes it
        return self._repo_write_api(method, repo, rest, query, body)

    def _repo_write_api(self, method: str, repo: _Repo, rest: list[str], query: dict, body: bytes) -> _Reply:
        match method, rest:
            case "POST", ["preupload", revision]:
                return _json(self._preupload(repo, revision, json.loads(body)))
            case "GET", ["xet-write-token", _]:
                raise HubError(403, "FakeHub has no Xet storage: upload large files through LFS (HF_HUB_DISABLE_XET=1)")
            case "POST", ["commit", revision]:
                return self._commit(repo, revision, query, body)
            case "POST", ["branch", branch]:
                return self._create_branch(repo, branch, json.loads(body or b"{}"))
            case "POST", ["tag", revision]:
                return self._create_tag(repo, revision, json.loads(body))
            case "GET" | "POST" | "DELETE", ["variables"] if repo.repo_type == "space":
                return _json(self._space_variables(repo, method, json.loads(body or b"{}")))
        raise HubError(404, f"FakeHub has no route for {method} {'/'.join(rest)} on {repo.repo_id}")

    # ------------------------------------------------------------------ repos and access

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        try:
            return self._repos[(repo_type, repo_id)]
        except KeyError:
            raise HubError(404, "Repository not found", "RepoNotFound") from None

    def _visible_repo(self, repo_type: str, repo_id: str, caller: _Caller | None) -> _Repo:
        """The repo if the caller may see it; else the Hub's answer, which never reveals that a private repo exists:
        401 to an anonymous request, 404 to a token."""
        repo = self._repos.get((repo_type, repo_id))
        if repo is None or (repo.private and (caller is None or repo.namespace not in caller.namespaces)):
            if caller is None:
                raise HubError(401, "Invalid username or password.", "RepoNotFound")
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _require_write(self, repo: _Repo, caller: _Caller | None) -> None:
        """A write token of a namespace the repo is in, like the Hub's fine-grained check."""
        _require_write(caller)
        if repo.namespace not in caller.namespaces:
            raise HubError(403, f"You don't have the rights to write to {repo.repo_id}: "
                                f"the token may write to {', '.join(sorted(caller.namespaces))} only")

    def _check_gate(self, repo: _Repo, caller: _Caller | None) -> None:
        """A gated repo's files are for its namespaces and approved users; others get the Hub's GatedRepo answer."""
        if not repo.gated or (caller is not None and (repo.namespace in caller.namespaces
                                                      or caller.user in repo.approved)):
            return
        what = f"Access to {repo.repo_type} {repo.repo_id} is restricted"
        if caller is None:
            raise HubError(401, f"{what}. You must have access to it and be authenticated to access it. Please log in.",
                           "GatedRepo")
        raise HubError(403, f"{what} and you are not in the authorized list. Visit {self._web_url(repo)} to ask "
                            "for access.", "GatedRepo")

    def _whoami(self, caller: _Caller) -> dict:
        return {
            "type": "user",
            "name": caller.user,
            "fullname": "Test User",
            "orgs": [{"name": self.org, "fullname": "Test Org", "roleInOrg": "write"}],
            "auth": {"type": "access_token", "accessToken": {"displayName": "fake-hub", "role": caller.role}},
        }

    def _create_repo(self, payload: dict, caller: _Caller) -> _Reply:
        namespace = payload.get("organization") or caller.user
        if namespace not in caller.namespaces:
            raise HubError(403, f"You don't have the rights to create a repo under the namespace {namespace}")
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIXES:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        if repo_type == "space" and not payload.get("sdk"):
            raise HubError(400, "A Space needs an sdk")
        repo_id = f"{namespace}/{payload['name']}"
        if (repo_type, repo_id) in self._repos:
            # create_repo(exist_ok=True) accepts this status, then reads "url" from the error body.
            url = self._web_url(self._repos[(repo_type, repo_id)])
            raise HubError(409, f"You already created this {repo_type} repo", fields={"url": url})
        repo = _Repo(
            repo_id=repo_id,
            repo_type=repo_type,
            private=payload.get("visibility") == "private",
            sdk=payload.get("sdk"),
            created_at=_now(),
            variables={var["key"]: var for var in payload.get("variables", [])},
        )
        repo.add_commit("main", {}, "initial commit")
        self._repos[(repo_type, repo_id)] = repo
        return _json({"url": self._web_url(repo), "name": repo_id, "id": repo_id})

    def _web_url(self, repo: _Repo) -> str:
        return f"{self.url}/{_URL_PREFIXES[repo.repo_type]}{repo.repo_id}"

    def _info(self, repo: _Repo, revision: str) -> dict:
        commit = repo.resolve(revision)
        info = {
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.id,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "tags": [],
            "siblings": [
                {"rfilename": path, "blobId": oid, "size": len(self._blobs.get(oid))}
                for path, oid in sorted(commit.files.items())
            ],
        }
        if repo.sdk is not None:
            info["sdk"] = repo.sdk
        return info

    def _tree(self, repo: _Repo, revision: str, folder: str, recursive: bool) -> list[dict]:
        commit = repo.resolve(revision)
        files = commit.files
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries: dict[str, dict] = {}
        for path, oid in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            names = path[len(prefix) :].split("/")
            folders = [prefix + "/".join(names[:depth]) for depth in range(1, len(names))]
            if not recursive and folders:
                # The file is deeper down: only its top folder is listed here.
                entries.setdefault(folders[0], _folder_entry(files, folders[0]))
                continue
            for subfolder in folders:
                entries.setdefault(subfolder, _folder_entry(files, subfolder))
            entries[path] = self._file_entry(commit, path)
        if prefix and not entries:
            raise HubError(404, f"{folder} does not exist on {revision}", "EntryNotFound")
        return list(entries.values())

    def _paths_info(self, repo: _Repo, revision: str, paths: list[str]) -> list[dict]:
        """The entries of the paths that exist (files or folders); missing paths are left out, like on the Hub."""
        commit = repo.resolve(revision)
        files = commit.files
        entries = []
        for path in (p.strip("/") for p in paths):
            if path in files:
                entries.append(self._file_entry(commit, path))
            elif any(name.startswith(path + "/") for name in files):
                entries.append(_folder_entry(files, path))
        return entries

    def _file_entry(self, commit: _Commit, path: str) -> dict:
        oid = commit.files[path]
        size = len(self._blobs.get(oid))
        entry = {"type": "file", "oid": oid, "size": size, "path": path}
        if path in commit.lfs:
            # The Hub gives an LFS file's SHA-256 (its "oid" is then the pointer file's id; the blob's here).
            entry["lfs"] = {"oid": self._sha256_of(oid), "size": size, "pointerSize": 134}
        return entry

    def _sha256_of(self, oid: str) -> str:
        if oid not in self._sha256:
            self._sha256[oid] = hashlib.sha256(self._blobs.get(oid)).hexdigest()
        return self._sha256[oid]

    def _refs(self, repo: _Repo) -> dict:
        def refs(kind: str, names: dict[str, str]) -> list[dict]:
            return [{"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": commit_id}
                    for name, commit_id in names.items()]

        return {"branches": refs("heads", repo.branches), "converts": [], "tags": refs("tags", repo.tags),
                "pullRequests": []}

    def _create_branch(self, repo: _Repo, branch: str, payload: dict) -> _Reply:
        if branch in repo.branches:
            raise HubError(409, f"Reference refs/heads/{branch} already exists")
        repo.branches[branch] = repo.resolve(payload.get("startingPoint", "main")).id
        return _json({})

    def _create_tag(self, repo: _Repo, revision: str, payload: dict) -> _Reply:
        tag = payload["tag"]
        if tag in repo.tags:
            raise HubError(409, f"Reference refs/tags/{tag} already exists")
        repo.tags[tag] = repo.resolve(revision).id
        return _json({})

    def _space_variables(self, repo: _Repo, method: str, payload: dict) -> dict:
        if method == "POST":
            repo.variables[payload["key"]] = {**payload, "updatedAt": _now()}
        elif method == "DELETE":
            repo.variables.pop(payload["key"], None)
        return {key: {k: v for k, v in var.items() if k != "key"} for key, var in repo.variables.items()}

    # ------------------------------------------------------------------ uploads

    def _preupload(self, repo: _Repo, revision: str, payload: dict) -> dict:
        commit = repo.resolve(revision)
        answers = []
        for item in payload["files"]:
            path, sample = item["path"], base64.b64decode(item.get("sample") or "")
            lfs = self._lfs_mode(commit, path, item["size"], sample, payload.get("gitAttributes"))
            # The "oid" of the file already on the revision (SHA-256 for LFS, git blob id otherwise) lets the client
            # drop unchanged files, so re-uploading an identical folder makes no commit.
            oid = commit.files.get(path)
            if oid is not None and path in commit.lfs:
                oid = self._sha256_of(oid)
            answers.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return {"files": answers}

    def _lfs_mode(self, commit: _Commit, path: str, size: int, sample: bytes, attributes: str | None = None) -> bool:
        """Whether the Hub stores the file in LFS: by the repo's .gitattributes (or the Hub's default one), by size
        (LFS_THRESHOLD, or this server's `large_file_bytes`), or because it is binary."""
        if attributes is None and ".gitattributes" in commit.files:
            attributes = self._blobs.get(commit.files[".gitattributes"]).decode("utf-8", "replace")
        patterns = DEFAULT_LFS_PATTERNS if attributes is None else _lfs_patterns(attributes)
        large = min(LFS_THRESHOLD, self.large_file_bytes or LFS_THRESHOLD)
        return size >= large or _is_binary(sample) or any(_matches(path, pattern) for pattern in patterns)

    def _lfs_api(self, repo: _Repo, action: str, payload: dict) -> _Reply:
        if action == "batch":
            if payload.get("operation") != "upload":
                raise HubError(422, "FakeHub's LFS batch API takes uploads only")
            objects = [self._lfs_batch_object(repo, item) for item in payload["objects"]]
            # "basic" whatever else the client offers: no multipart, no Xet.
            return _json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})
        if action == "verify":
            stored = repo.lfs_objects.get(payload.get("oid", ""))
            if stored is None or len(self._blobs.get(stored)) != payload.get("size"):
                raise HubError(404, f"LFS object {payload.get('oid')} of {payload.get('size')} bytes is not stored")
            return _json({"message": "Object verified"})
        raise HubError(404, f"FakeHub has no LFS route {action}")

    def _lfs_batch_object(self, repo: _Repo, item: dict) -> dict:
        """The batch answer for one object: an error, nothing to do (already stored), or where to upload it."""
        oid, size = item.get("oid"), item.get("size")
        answer = {"oid": oid, "size": size}
        if not isinstance(oid, str) or _SHA256.fullmatch(oid) is None or not isinstance(size, int) or size < 0:
            return {**answer, "error": {"code": 422, "message": "oid must be a SHA-256 in hex and size a byte count"}}
        if self.large_file_bytes is not None and size >= self.large_file_bytes:
            return {**answer, "error": {"code": 422, "message": f"{size} bytes is over this server's limit of "
                                                                 f"{self.large_file_bytes - 1} bytes per file"}}
        if oid in repo.lfs_objects:
            return answer  # no "actions": the client skips the upload
        git_path = f"{_URL_PREFIXES[repo.repo_type]}{repo.repo_id}.git/info/lfs/objects/verify"
        return {**answer, "authenticated": True, "actions": {
            "upload": {"href": f"{self.url}/lfs-storage/{self._sign(repo, oid, size)}", "expires_in": 3600},
            "verify": {"href": f"{self.url}/{git_path}"},
        }}

    def _sign(self, repo: _Repo, oid: str, size: int) -> str:
        """The path of a pre-signed upload URL: what it allows, and a signature that only this server can make."""
        target = f"{repo.repo_type}/{repo.repo_id}/{oid}/{size}"
        return f"{target}?signature={hmac.new(self._secret, target.encode(), hashlib.sha256).hexdigest()}"

    def _store_lfs_object(self, method: str, parts: list[str], query: dict, body: bytes) -> _Reply:
        """The PUT of a basic transfer: stored only if the URL's signature holds and the body is the object."""
        target = "/".join(parts)
        signature = hmac.new(self._secret, target.encode(), hashlib.sha256).hexdigest()
        if method != "PUT" or len(parts) != 5 or not hmac.compare_digest(query.get("signature", [""])[0], signature):
            raise HubError(403, "The request signature does not match", "SignatureDoesNotMatch")
        repo_type, namespace, name, oid, size = parts
        if len(body) != int(size) or hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"The uploaded content is not the LFS object {oid} of {size} bytes", "BadDigest")
        repo = self._repo(repo_type, f"{namespace}/{name}")
        repo.lfs_objects[oid] = self._blobs.put(body)
        return 200, {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}, b""

    def _commit(self, repo: _Repo, branch: str, query: dict, body: bytes) -> _Reply:
        if query.get("create_pr", ["0"])[0] not in ("0", "false"):
            raise HubError(400, "FakeHub does not support pull requests")
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header, operations = lines[0], lines[1:]
        if header.get("key") != "header":
            raise HubError(400, "The first NDJSON line must be the commit header")
        parent = header["value"].get("parentCommit")
        if parent is not None and not repo.branches[branch].startswith(parent):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        head = repo.resolve(branch)
        files, lfs = dict(head.files), set(head.lfs)
        for operation in operations:
            self._apply(repo, files, lfs, operation["key"], operation["value"])
        commit = repo.add_commit(branch, files, header["value"].get("summary", ""), lfs)
        return _json(
            {
                "success": True,
                "commitOid": commit.id,
                "commitUrl": f"{self._web_url(repo)}/commit/{commit.id}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _apply(self, repo: _Repo, files: dict[str, str], lfs: set[str], key: str, value: dict) -> None:
        path = value["path"]
        if key == "file":
            files[path] = self._regular_blob(path, value)
            lfs.discard(path)
        elif key == "lfsFile":
            files[path] = self._lfs_blob(repo, path, value)
            lfs.add(path)
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            lfs.discard(path)
        elif key == "deletedFolder":
            inside = [name for name in files if name.startswith(path.rstrip("/") + "/")]
            if not inside:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
            for name in inside:
                del files[name]
                lfs.discard(name)
        else:
            raise HubError(400, f"FakeHub does not support commit operation {key!r}")

    def _regular_blob(self, path: str, value: dict) -> str:
        """A file sent inline; refused, like the Hub's pre-receive hook does, if it belongs in LFS by content."""
        if value.get("encoding") != "base64":
            raise HubError(400, f"Unsupported encoding for {path}: {value.get('encoding')}")
        data = base64.b64decode(value["content"])
        if _is_binary(data[:SAMPLE_BYTES]) or len(data) >= LFS_THRESHOLD:
            raise HubError(400, "Your push was rejected because it contains binary files or files larger than 10 MiB."
                                f" Store them with LFS. Offending files: - {path}")
        return self._blobs.put(data)

    def _lfs_blob(self, repo: _Repo, path: str, value: dict) -> str:
        """The stored object an `lfsFile` entry points to; the Hub refuses a pointer to an object it lacks."""
        stored = repo.lfs_objects.get(value.get("oid", "")) if value.get("algo") == "sha256" else None
        if stored is None or value.get("size", len(self._blobs.get(stored))) != len(self._blobs.get(stored)):
            raise HubError(400, "Your push was rejected because an LFS pointer pointed to a file that does not "
                                f"exist. Offending file: - {path}")
        return stored

    # ------------------------------------------------------------------ downloads

    def _download(self, repo_type: str, repo_id: str, revision: str, path: list[str], caller: _Caller | None,
                  byte_range: str | None) -> _Reply:
        repo = self._visible_repo(repo_type, repo_id, caller)
        self._check_gate(repo, caller)
        return self._resolve(repo, revision, "/".join(path), byte_range)

    def _resolve(self, repo: _Repo, revision: str, path: str, byte_range: str | None) -> _Reply:
        commit = repo.resolve(revision)
        # The client caches "file missing at this commit" using X-Repo-Commit, also on 404.
        headers = {"X-Repo-Commit": commit.id}
        if path not in commit.files:
            raise HubError(404, "Entry not found", "EntryNotFound", headers)
        oid = commit.files[path]
        data = self._blobs.get(oid)
        # The client refuses files without X-Repo-Commit or ETag; the handler adds Content-Length.
        headers.update({"ETag": f'"{oid}"', "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"})
        if path in commit.lfs:
            # An LFS file is named by its SHA-256, as the Hub's X-Linked-Etag does; the client caches it by that name.
            sha256 = self._sha256_of(oid)
            headers.update({"ETag": f'"{sha256}"', "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(data))})
        span = _byte_range(byte_range, len(data))
        if span is None:
            return 200, headers, data
        first, last = span
        return 206, {**headers, "Content-Range": f"bytes {first}-{last}/{len(data)}"}, data[first : last + 1]


def _require_token(caller: _Caller | None) -> None:
    if caller is None:
        raise HubError(401, "Invalid username or password.")


def _require_write(caller: _Caller | None) -> None:
    _require_token(caller)
    if caller.role != "write":
        raise HubError(403, "You don't have the rights to write to this repo: the token is read-only")


def _validate_yaml(payload: dict) -> dict:
    """The validate-yaml answer for a README.md, or the Hub's 400 listing what is wrong with its metadata."""
    errors = metadata_errors(payload["content"], payload.get("repoType") or "model")
    if errors:
        raise HubError(400, "Invalid metadata in README.md",
                       fields={"errors": [{"message": error} for error in errors], "warnings": []})
    return {"errors": [], "warnings": []}


def _git_repo(parts: list[str]) -> tuple[str, str]:
    """The repo of a git URL's path parts: [datasets|spaces,] NAMESPACE, NAME.git."""
    kind = {"datasets": "dataset", "spaces": "space"}.get(parts[0]) if len(parts) == 3 else "model"
    if kind is None or len(parts) != (3 if kind != "model" else 2):
        raise HubError(404, f"No git repo at /{'/'.join(parts)}")
    return kind, "/".join(parts[-2:]).removesuffix(".git")


def _lfs_patterns(gitattributes: str) -> list[str]:
    """The patterns a .gitattributes file sends through the LFS filter."""
    rules = (line.split() for line in gitattributes.splitlines() if line.strip() and not line.startswith("#"))
    return [rule[0] for rule in rules if "filter=lfs" in rule[1:]]


def _matches(path: str, pattern: str) -> bool:
    # As gitattributes: a pattern without "/" matches the file name at any depth, one with "/" the whole path.
    return fnmatch.fnmatchcase(path if "/" in pattern else path.rsplit("/", 1)[-1], pattern)


def _is_binary(sample: bytes) -> bool:
    # Git's own test: a NUL byte in the first bytes.
    return b"\0" in sample


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """First and last byte (inclusive) that `Range: bytes=A-B`, `bytes=A-` or the suffix `bytes=-N` asks for; None
    (the whole file) without one or for one this server does not read (several ranges), as HTTP allows."""
    match = _RANGE.fullmatch(header or "")
    if match is None or match.groups() == ("", ""):
        return None
    start, end = match.groups()
    if start == "":  # the last N bytes: the file system reads a parquet footer this way
        first, last = max(size - int(end), 0), size - 1
        unsatisfiable = int(end) == 0 or size == 0
    else:
        first, last = int(start), min(int(end) if end else size - 1, size - 1)
        unsatisfiable = first >= size or first > last
    if unsatisfiable:
        raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
    return first, last


def metadata_errors(content: str, repo_type: str) -> list[str]:
    """What the Hub's validate-yaml finds wrong with a README.md's metadata block; none for no block."""
    block = _YAML_BLOCK.match(content)
    if block is None:
        return []
    try:
        metadata = yaml.safe_load(block.group(2))
    except yaml.YAMLError as error:
        return [f"Invalid YAML in the metadata block: {' '.join(str(error).split())}"]
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return ["The metadata block must be a YAML mapping"]
    keys = _CARD_KEYS[repo_type]
    return [error for key, spec in keys.items() if key in metadata for error in _shape_errors(metadata[key], spec, key)]


def _shape_errors(value: object, spec: object, where: str) -> list[str]:
    """`value` against a spec of the tables above: a dict, a one-item list, a (check, message) pair or None."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f'"{where}" must be of type object']
        return [error for key, inner in spec.items()
                for error in (_shape_errors(value[key], inner, f"{where}.{key}") if key in value
                              else [f'"{where}.{key}" is required'])]
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f'"{where}" must be an array']
        return [error for i, item in enumerate(value) for error in _shape_errors(item, spec[0], f"{where}[{i}]")]
    if spec is None:
        return []
    check, message = spec
    return [] if check(value) else [f'"{where}" {message}']


def _folder_entry(files: dict[str, str], folder: str) -> dict:
    # The Hub gives the git tree id; a hash of the folder content is as stable.
    listing = "".join(f"{path}\0{oid}\n" for path, oid in sorted(files.items()) if path.startswith(folder + "/"))
    return {"type": "directory", "oid": hashlib.sha1(listing.encode()).hexdigest(), "path": folder}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # open keep-alive connections must not block stop()
    hub: FakeHub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    server: _Server

    def do_GET(self) -> None:
        body = self._read_body()
        if "/commit/" in self.path and self.server.hub.drop_commits > 0:
            self.server.hub.drop_commits -= 1
            self.close_connection = True
            return
        try:
            # Header names are case-insensitive and the client sends them lower-cased.
            request_headers = {name.lower(): value for name, value in self.headers.items()}
            status, headers, payload = self.server.hub.handle(self.command, self.path, request_headers, body)
        except Exception as error:  # a bug in FakeHub must fail the client call, not hang it
            status, headers, payload = HubError(500, f"FakeHub crashed: {error!r}").reply()
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", "*")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        """The request body, sent with Content-Length or in chunks (the client streams LFS uploads)."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline().strip():  # trailers, up to the empty line
            pass
        return b"".join(chunks)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; FakeHub.requests records every call
