"""A small Hugging Face Hub look-alike for tests that cannot reach the real Hub.

`FakeHub` runs a stdlib `ThreadingHTTPServer` on 127.0.0.1 (free port) in a background
thread and answers the subset of the Hub HTTP API that `huggingface_hub` uses to create
repos, validate README.md metadata, upload folders, download files and snapshots, manage
branches, tags and Space variables. Point the client at it with `HF_ENDPOINT=hub.url` (set
before `huggingface_hub` is imported) and `HF_TOKEN=hub.token` (or `hub.read_token`, which
may read but gets 403 on every write, like a read-only token on the Hub).

Simplifications compared with the real Hub:
- every repo created through the API lives under the single user `FakeHub.user`; repo ids
  are `namespace/name`. `FakeHub.publish` adds a public repo of any namespace, as if its
  owner had pushed it (e.g. a dataset such as `stanfordnlp/imdb`), whose file system
  (`hf://` paths, `HfFileSystem`) lists and reads them;
- preupload answers `uploadMode: "regular"`, so contents travel base64 inline in the
  commit NDJSON and downloads never redirect; files of at least `large_file_bytes` are
  "lfs" instead, as on the Hub, but FakeHub stores none: their upload request (Xet token
  or LFS batch) fails, which is how tests see a failed large-file upload;
- README.md metadata is checked for the keys and types that hub-docs document (modelcard.md,
  spaces-config-reference.md), not against every rule of the Hub;
- a new repo starts with an empty "initial commit" on `main` (the real Hub adds a
  `.gitattributes` file), so `main` always resolves to a commit;
- no pull requests, pagination or `.gitignore` rules;
- every answer allows any origin to read it (`Access-Control-Allow-Origin: *`), as the Hub's file downloads
  do, so a page of another origin (the static Space) can fetch a model's files.

Usage:
    with FakeHub() as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token}
        ...
        assert hub.files("tester/my-model") == {"config.json": b"{}"}
"""

from __future__ import annotations

import base64
import hashlib
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


@dataclass
class _Repo:
    repo_id: str
    repo_type: str
    private: bool
    sdk: str | None
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit id
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit id
    commits: dict[str, _Commit] = field(default_factory=dict)  # commit id -> commit, in creation order
    variables: dict[str, dict] = field(default_factory=dict)  # Space variables: key -> {"value", ...}
    lfs: set[str] = field(default_factory=set)  # paths stored in LFS (listed with their SHA-256)

    def resolve(self, revision: str) -> _Commit:
        """A branch, a tag or a full commit id, like the Hub accepts in URLs."""
        commit_id = self.branches.get(revision) or self.tags.get(revision) or revision
        if commit_id not in self.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[commit_id]

    def add_commit(self, branch: str, files: dict[str, str], message: str) -> _Commit:
        commit = _Commit(id=os.urandom(20).hex(), date=_now(), files=files, message=message)
        self.commits[commit.id] = commit
        self.branches[branch] = commit.id
        return commit


class FakeHub:
    """Hub look-alike served over HTTP; see the module docstring.

    token: the write token, as `Authorization: Bearer <token>`; writes need it.
    read_token: a token that reads (private repos included) and gets 403 on writes.
    root: folder for file contents (kept in memory when None); repo metadata stays in memory.
    """

    user = "tester"

    def __init__(self, token: str = "hf_test_token", read_token: str = "hf_test_read_token",
                 root: Path | None = None) -> None:
        self.token = token
        self.read_token = read_token
        self.url = ""
        # Files of at least this many bytes go to large-file storage (None: no file does); see the module docstring.
        self.large_file_bytes: int | None = None
        self.requests: list[tuple[str, str, dict]] = []  # (method, path with query, headers with lower-case names)
        # While positive, a commit request is read and then the connection is dropped without an answer,
        # like a server going away mid-push; each drop counts it down.
        self.drop_commits = 0
        self._blobs = _BlobStore(root)
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

    def variables(self, repo_id: str) -> dict[str, str]:
        with self._lock:
            return {key: var["value"] for key, var in self._repo("space", repo_id).variables.items()}

    def publish(self, repo_id: str, files: dict[str, bytes], repo_type: str = "dataset", lfs: bool = False) -> str:
        """Add `files` to the public repo `repo_id` (created if missing, any namespace) in one commit on main,
        as if its owner had pushed them; with `lfs`, they are LFS files. Returns the commit id."""
        with self._lock:
            key = (repo_type, repo_id)
            if key not in self._repos:
                self._repos[key] = _Repo(repo_id=repo_id, repo_type=repo_type, private=False,
                                         sdk=None, created_at=_now())
                self._repos[key].add_commit("main", {}, "initial commit")
            repo = self._repos[key]
            stored = {path: self._blobs.put(data) for path, data in files.items()}
            if lfs:
                repo.lfs.update(files)
            else:
                repo.lfs.difference_update(files)
            return repo.add_commit("main", {**repo.resolve("main").files, **stored}, "Upload files").id

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
                role = self._authenticate(headers.get("authorization"))
                return self._route(method, parts, parse_qs(url.query), body, role, headers.get("range"))
            except HubError as error:
                return error.reply()

    def _authenticate(self, authorization: str | None) -> str | None:
        """The token's role ("write" or "read"), None for anonymous; a wrong token is a 401 even on public
        reads, like the Hub."""
        roles = {f"Bearer {self.token}": "write", f"Bearer {self.read_token}": "read"}
        if authorization is not None and authorization not in roles:
            raise HubError(401, "Invalid credentials in Authorization header")
        return roles.get(authorization)

    def _route(
        self, method: str, parts: list[str], query: dict, body: bytes, role: str | None, byte_range: str | None
    ) -> _Reply:
        match method, parts:
            case "GET", ["api", "whoami-v2"]:
                _require_token(role)
                return _json(self._whoami(role))
            case "POST", ["api", "repos", "create"]:
                _require_write(role)
                return self._create_repo(json.loads(body))
            case "POST", ["api", "validate-yaml"]:
                payload = json.loads(body)
                errors = metadata_errors(payload["content"], payload.get("repoType") or "model")
                if errors:
                    raise HubError(400, "Invalid metadata in README.md",
                                   fields={"errors": [{"message": error} for error in errors], "warnings": []})
                return _json({"errors": [], "warnings": []})
            case _, ["api", kind, namespace, name, *rest] if kind in _API_KINDS:
                repo = self._visible_repo(_API_KINDS[kind], f"{namespace}/{name}", role)
                return self._repo_api(method, repo, rest, query, body, role)
            case "POST", [*_, git_name, "info", "lfs", "objects", "batch"] if git_name.endswith(".git"):
                _require_write(role)
                return _json(self._lfs_batch(json.loads(body)))
            case "GET" | "HEAD", ["datasets" | "spaces" as kind, namespace, name, "resolve", revision, *path]:
                repo = self._visible_repo(_API_KINDS[kind], f"{namespace}/{name}", role)
                return self._resolve(repo, revision, "/".join(path), byte_range)
            case "GET" | "HEAD", [namespace, name, "resolve", revision, *path]:
                repo = self._visible_repo("model", f"{namespace}/{name}", role)
                return self._resolve(repo, revision, "/".join(path), byte_range)
        raise HubError(404, f"FakeHub has no route for {method} /{'/'.join(parts)}")

    def _repo_api(
        self, method: str, repo: _Repo, rest: list[str], query: dict, body: bytes, role: str | None
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
            case "POST", ["preupload", revision]:
                _require_write(role)
                return _json(self._preupload(repo, revision, json.loads(body)))
            case "GET", ["xet-write-token", _]:
                _require_write(role)
                raise HubError(403, "FakeHub stores no large files")
            case "POST", ["commit", revision]:
                _require_write(role)
                return self._commit(repo, revision, query, body)
            case "POST", ["branch", branch]:
                _require_write(role)
                return self._create_branch(repo, branch, json.loads(body or b"{}"))
            case "POST", ["tag", revision]:
                _require_write(role)
                return self._create_tag(repo, revision, json.loads(body))
            case "GET" | "POST" | "DELETE", ["variables"] if repo.repo_type == "space":
                _require_write(role)
                return _json(self._space_variables(repo, method, json.loads(body or b"{}")))
        raise HubError(404, f"FakeHub has no route for {method} {'/'.join(rest)} on {repo.repo_id}")

    # ------------------------------------------------------------------ repos

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        try:
            return self._repos[(repo_type, repo_id)]
        except KeyError:
            raise HubError(404, "Repository not found", "RepoNotFound") from None

    def _visible_repo(self, repo_type: str, repo_id: str, role: str | None) -> _Repo:
        repo = self._repo(repo_type, repo_id)
        if repo.private and role is None:
            # The Hub does not reveal that a private repo exists.
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _whoami(self, role: str) -> dict:
        return {
            "type": "user",
            "name": self.user,
            "fullname": "Test User",
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "fake-hub", "role": role}},
        }

    def _create_repo(self, payload: dict) -> _Reply:
        namespace = payload.get("organization") or self.user
        if namespace != self.user:
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
            "gated": False,
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
        files = repo.resolve(revision).files
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
            entries[path] = self._file_entry(repo, path, oid)
        if prefix and not entries:
            raise HubError(404, f"{folder} does not exist on {revision}", "EntryNotFound")
        return list(entries.values())

    def _paths_info(self, repo: _Repo, revision: str, paths: list[str]) -> list[dict]:
        """The entries of the paths that exist (files or folders); missing paths are left out, like on the Hub."""
        files = repo.resolve(revision).files
        entries = []
        for path in (p.strip("/") for p in paths):
            if path in files:
                entries.append(self._file_entry(repo, path, files[path]))
            elif any(name.startswith(path + "/") for name in files):
                entries.append(_folder_entry(files, path))
        return entries

    def _file_entry(self, repo: _Repo, path: str, oid: str) -> dict:
        data = self._blobs.get(oid)
        entry = {"type": "file", "oid": oid, "size": len(data), "path": path}
        if path in repo.lfs:
            # The Hub gives an LFS file's SHA-256 (its "oid" is then the pointer file's id; the blob's here).
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

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
        files = repo.resolve(revision).files
        large = self.large_file_bytes
        return {
            "files": [
                # "oid" of the file already on the revision lets the client drop unchanged files,
                # so re-uploading an identical folder makes no commit.
                {"path": item["path"], "shouldIgnore": False, "oid": files.get(item["path"]),
                 "uploadMode": "lfs" if large is not None and item["size"] >= large else "regular"}
                for item in payload["files"]
            ]
        }

    def _lfs_batch(self, payload: dict) -> dict:
        """The LFS batch API's refusal of each object, as it answers an object it will not store."""
        return {
            "transfer": "basic",
            "objects": [{"oid": item["oid"], "size": item["size"],
                         "error": {"code": 507, "message": "FakeHub stores no large files"}}
                        for item in payload["objects"]],
        }

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
        files = dict(repo.resolve(branch).files)
        for operation in operations:
            self._apply(files, operation["key"], operation["value"])
        commit = repo.add_commit(branch, files, header["value"].get("summary", ""))
        return _json(
            {
                "success": True,
                "commitOid": commit.id,
                "commitUrl": f"{self._web_url(repo)}/commit/{commit.id}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _apply(self, files: dict[str, str], key: str, value: dict) -> None:
        path = value["path"]
        if key == "file":
            if value.get("encoding") != "base64":
                raise HubError(400, f"Unsupported encoding for {path}: {value.get('encoding')}")
            files[path] = self._blobs.put(base64.b64decode(value["content"]))
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            inside = [name for name in files if name.startswith(path.rstrip("/") + "/")]
            if not inside:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
            for name in inside:
                del files[name]
        else:
            # lfsFile included: preupload never asks for LFS.
            raise HubError(400, f"FakeHub does not support commit operation {key!r}")

    # ------------------------------------------------------------------ downloads

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
        if byte_range is None:
            return 200, headers, data
        # The file system reads parquet footers and row groups with "Range: bytes=START-END" (END inclusive).
        start, _, end = byte_range.removeprefix("bytes=").partition("-")
        first, last = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
        if first >= len(data):
            raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
        return 206, {**headers, "Content-Range": f"bytes {first}-{last}/{len(data)}"}, data[first : last + 1]


def _require_token(role: str | None) -> None:
    if role is None:
        raise HubError(401, "Invalid username or password.")


def _require_write(role: str | None) -> None:
    _require_token(role)
    if role != "write":
        raise HubError(403, "You don't have the rights to write to this repo: the token is read-only")


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
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
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

    do_HEAD = do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; FakeHub.requests records every call
