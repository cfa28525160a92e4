"""Round trips between the real `huggingface_hub` client and `tests/hub_server.FakeHub`.

The client reads HF_ENDPOINT when it is imported, so every client call runs in a fresh
subprocess with its own environment and HF_HOME: nothing depends on import order or on
the developer's own Hugging Face login.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_server import LFS_THRESHOLD, FakeHub, HubError, git_blob_sha1

REPO = f"{FakeHub.user}/demo"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    # File contents on disk here; the Space test covers the in-memory store.
    with FakeHub(root=tmp_path / "hub-blobs") as server:
        yield server


def run_client(
    hub: FakeHub,
    code: str,
    home: Path,
    *,
    args: dict | None = None,
    token: str | None = "hub",
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python whose huggingface_hub talks to `hub`.

    The code reads its inputs from ARGS ({"repo", "home"} plus `args`) and reports by printing
    JSON on its last line. token: "hub" sends the hub's token, None none, anything else as is.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGING_FACE_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(home),  # empty: no cached login, no cached files
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_XET="1",  # FakeHub has no Xet storage: LFS files go through the LFS batch API
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    env.update(extra_env or {})
    if token is not None:
        env["HF_TOKEN"] = hub.token if token == "hub" else token
    prelude = "import json, sys\nARGS = json.loads(sys.argv[1])\n"
    inputs = json.dumps({"repo": REPO, "home": str(home), **(args or {})})
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), inputs],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def client_json(hub: FakeHub, code: str, home: Path, **kwargs: object) -> dict:
    result = run_client(hub, code, home, **kwargs)
    assert result.returncode == 0, f"client failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_folder(path: Path) -> dict[str, bytes]:
    """A model-ish folder with a README (validated by the client), text, binary and a sub-folder."""
    files = {
        "README.md": b"---\nlicense: mit\n---\n# Demo\n",
        "config.json": b'{"units": 3}\n',
        "weights/data.bin": os.urandom(300_000),
    }
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return files


def read_folder(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


UPLOAD = """
from huggingface_hub import HfApi
api = HfApi()
api.create_repo(ARGS["repo"], exist_ok=True)
info = api.upload_folder(repo_id=ARGS["repo"], folder_path=ARGS["folder"])
print(json.dumps({"oid": info.oid}))
"""


def upload(hub: FakeHub, folder: Path, home: Path) -> str:
    return client_json(hub, UPLOAD, home, args={"folder": str(folder)})["oid"]


def storage_puts(hub: FakeHub) -> list[tuple[str, dict]]:
    """The PUTs of LFS objects to the signed storage URLs the batch API handed out: (path, headers)."""
    return [(path, headers) for method, path, headers in hub.requests if method == "PUT"]


def test_upload_folder_with_an_lfs_file_then_download(hub: FakeHub, tmp_path: Path) -> None:
    """The create_commit path (no Xet): the binary file goes through the LFS batch API and storage, the others
    inline; downloads by branch and by commit id get both."""
    folder = tmp_path / "model"
    expected = make_folder(folder)

    code = """
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    api = HfApi()
    api.create_repo(ARGS["repo"], private=True)
    info = api.upload_folder(repo_id=ARGS["repo"], folder_path=ARGS["folder"])
    snapshot = snapshot_download(ARGS["repo"], cache_dir=ARGS["home"] + "/cache-a")
    # A fresh cache, so the pinned file really comes over HTTP by commit id.
    pinned = hf_hub_download(ARGS["repo"], "weights/data.bin", revision=info.oid, cache_dir=ARGS["home"] + "/cache-b")
    print(json.dumps({"oid": info.oid, "snapshot": snapshot, "pinned": pinned}))
    """
    out = client_json(hub, code, tmp_path / "home", args={"folder": str(folder)})

    assert len(out["oid"]) == 40
    assert hub.commits(REPO)[-1] == out["oid"]
    assert hub.files(REPO) == expected and hub.lfs_files(REPO) == {"weights/data.bin"}
    assert read_folder(Path(out["snapshot"])) == expected
    assert Path(out["pinned"]).read_bytes() == expected["weights/data.bin"]
    # One object uploaded, to the signed storage URL, then verified.
    sha256 = hashlib.sha256(expected["weights/data.bin"]).hexdigest()
    assert [path.split("?")[0].rsplit("/", 2)[-2] for path, _ in storage_puts(hub)] == [sha256]
    assert sum(path.endswith("/info/lfs/objects/verify") for _, path, _ in hub.requests) == 1
    # The client sent our token on every Hub call, and never to the storage URL (as to a storage service).
    api_calls = [headers for method, _, headers in hub.requests if method != "PUT"]
    assert {headers.get("authorization") for headers in api_calls} == {f"Bearer {hub.token}"}
    assert [headers.get("authorization") for _, headers in storage_puts(hub)] == [None]


def test_streamed_pipeline_uploads_regular_files(hub: FakeHub, tmp_path: Path) -> None:
    """upload_folder's other path, taken when hf_xet is installed: fine for regular files (LFS ones would need Xet)."""
    folder = tmp_path / "space"
    folder.mkdir()
    expected = {"app.py": b"import gradio\n", "notes/README.md": b"# Notes\n"}
    for name, data in expected.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    out = client_json(hub, UPLOAD, tmp_path / "home", args={"folder": str(folder)},
                      extra_env={"HF_HUB_DISABLE_XET": "0"})
    assert hub.commits(REPO)[-1] == out["oid"] and hub.files(REPO) == expected


def test_reupload_of_unchanged_folder_makes_no_commit(hub: FakeHub, tmp_path: Path) -> None:
    """Preupload gives the SHA-256 of an LFS file and the batch API knows the object: nothing is sent again."""
    folder = tmp_path / "model"
    make_folder(folder)
    first = upload(hub, folder, tmp_path / "home")
    commits, puts = hub.commits(REPO), len(storage_puts(hub))

    assert upload(hub, folder, tmp_path / "home") == first
    assert hub.commits(REPO) == commits
    assert hub.lfs_files(REPO) == {"weights/data.bin"} and len(storage_puts(hub)) == puts == 1


def test_changed_file_makes_one_commit_and_old_revision_stays_pinned(hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    old = make_folder(folder)
    first = upload(hub, folder, tmp_path / "home")
    commits = hub.commits(REPO)
    (folder / "config.json").write_bytes(b'{"units": 4}\n')
    second = upload(hub, folder, tmp_path / "home")

    assert hub.commits(REPO) == [*commits, second]
    code = """
    from huggingface_hub import HfApi, snapshot_download
    api = HfApi()
    api.create_tag(ARGS["repo"], tag="v1", revision=ARGS["first"])
    old = snapshot_download(ARGS["repo"], revision=ARGS["first"], cache_dir=ARGS["home"] + "/cache")
    # A fresh cache, so the tag really is resolved by the server.
    tagged = snapshot_download(ARGS["repo"], revision="v1", cache_dir=ARGS["home"] + "/cache-tag")
    new = snapshot_download(ARGS["repo"], cache_dir=ARGS["home"] + "/cache")
    tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(ARGS["repo"]).tags}
    print(json.dumps({"old": old, "tagged": tagged, "new": new, "tags": tags}))
    """
    out = client_json(hub, code, tmp_path / "home", args={"first": first})
    assert read_folder(Path(out["old"])) == read_folder(Path(out["tagged"])) == old
    assert read_folder(Path(out["new"])) == {**old, "config.json": b'{"units": 4}\n'}
    assert out["tags"] == {"v1": first}
    assert hub.files(REPO, revision="v1") == old


@pytest.mark.parametrize(
    ("token", "message"), [(None, "401"), ("hf_wrong", "Invalid credentials")], ids=["anonymous", "wrong-token"]
)
def test_create_repo_needs_the_token(hub: FakeHub, tmp_path: Path, token: str | None, message: str) -> None:
    code = """
    from huggingface_hub import create_repo
    create_repo(ARGS["repo"])
    """
    result = run_client(hub, code, tmp_path / "home", token=token)

    assert result.returncode != 0
    assert message in result.stderr
    assert [method for method, _, _ in hub.requests] == ["POST"]
    with pytest.raises(HubError, match="Repository not found"):
        hub.commits(REPO)


def test_errors_map_to_client_exceptions(hub: FakeHub, tmp_path: Path) -> None:
    """The Hub's status codes: an anonymous request for a missing or private repo gets 401 (the Hub does not say
    which), one with a token 404; the client raises RepositoryNotFoundError for both."""
    hub.publish("someone/secret", {"a.txt": b"a"}, repo_type="model", private=True)
    code = """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    api = HfApi()
    api.create_repo(ARGS["repo"], private=True)
    raised = {}
    for name, call in {
        "missing repo": lambda: api.repo_info("tester/nope"),
        "missing repo, no token": lambda: api.repo_info("tester/nope", token=False),
        "private repo, no token": lambda: api.repo_info(ARGS["repo"], token=False),
        "private file, no token": lambda: hf_hub_download(ARGS["repo"], "a.txt", token=False),
        "private repo of another user": lambda: api.repo_info("someone/secret"),
        "missing revision": lambda: api.repo_info(ARGS["repo"], revision="nope"),
        "missing file": lambda: hf_hub_download(ARGS["repo"], "nope.txt"),
    }.items():
        try:
            call()
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as error:
            raised[name] = [type(error).__name__, error.response.status_code]
    print(json.dumps(raised))
    """
    assert client_json(hub, code, tmp_path / "home") == {
        "missing repo": ["RepositoryNotFoundError", 404],
        "missing repo, no token": ["RepositoryNotFoundError", 401],
        "private repo, no token": ["RepositoryNotFoundError", 401],
        "private file, no token": ["RepositoryNotFoundError", 401],
        "private repo of another user": ["RepositoryNotFoundError", 404],
        "missing revision": ["RevisionNotFoundError", 404],
        "missing file": ["RemoteEntryNotFoundError", 404],
    }


def test_read_only_token_reads_but_gets_403_on_writes(hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    expected = make_folder(folder)
    client_json(hub, PRIVATE_UPLOAD, tmp_path / "home", args={"folder": str(folder)})
    commits = hub.commits(REPO)
    code = """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    api = HfApi()
    out = {"role": api.whoami()["auth"]["accessToken"]["role"], "files": api.list_repo_files(ARGS["repo"])}
    for name, call in {
        "create": lambda: api.create_repo("tester/other"),
        "upload": lambda: api.upload_folder(repo_id=ARGS["repo"], folder_path=ARGS["folder"], commit_message="x"),
        "branch": lambda: api.create_branch(ARGS["repo"], branch="dev"),
    }.items():
        try:
            call()
        except HfHubHTTPError as error:
            out[name] = error.response.status_code
    print(json.dumps(out))
    """
    (folder / "config.json").write_bytes(b"changed")
    out = client_json(hub, code, tmp_path / "home", args={"folder": str(folder)}, token=hub.read_token)
    assert out == {"role": "read", "files": sorted(expected), "create": 403, "upload": 403, "branch": 403}
    assert hub.commits(REPO) == commits


PRIVATE_UPLOAD = """
from huggingface_hub import HfApi
api = HfApi()
api.create_repo(ARGS["repo"], private=True)
print(json.dumps({"oid": api.upload_folder(repo_id=ARGS["repo"], folder_path=ARGS["folder"]).oid}))
"""

# huggingface_hub's documented errors of a failed upload: OSError (EnvironmentError) and ValueError.
FAILED_UPLOAD = """
from huggingface_hub import HfApi
api = HfApi()
api.create_repo(ARGS["repo"], repo_type=ARGS["type"], **({"space_sdk": "gradio"} if ARGS["type"] == "space" else {}))
try:
    api.upload_folder(repo_id=ARGS["repo"], repo_type=ARGS["type"], folder_path=ARGS["folder"])
except (OSError, ValueError) as error:
    print(json.dumps({"oserror": isinstance(error, OSError), "message": str(error)}))
"""


@pytest.mark.parametrize(("disable_xet", "oserror"), [("0", True), ("1", False)], ids=["xet", "lfs"])
def test_large_file_upload_fails_with_a_documented_error(
    hub: FakeHub, tmp_path: Path, disable_xet: str, oserror: bool
) -> None:
    folder = tmp_path / "model"
    make_folder(folder)
    hub.large_file_bytes = 100_000  # weights/data.bin
    out = client_json(hub, FAILED_UPLOAD, tmp_path / "home", args={"folder": str(folder), "type": "model"},
                      extra_env={"HF_HUB_DISABLE_XET": disable_xet})
    # Xet's token request fails (an OSError); the LFS batch API refuses the file (a ValueError).
    assert out["oserror"] is oserror
    assert ("403" if oserror else "300000 bytes is over this server's limit") in out["message"]
    assert len(hub.commits(REPO)) == 1 and not storage_puts(hub)


INVALID_CARDS = {
    "model": (
        "---\nlicense: [mit]\nmodel-index:\n- name: demo\n  results:\n  - task: {name: Sentiment}\n"
        "    dataset: {type: imdb, name: IMDB}\n    metrics: [{type: accuracy}]\n---\n# Demo\n",
        ['"license" must be a string', '"model-index[0].results[0].task.type" is required',
         '"model-index[0].results[0].metrics[0].value" is required'],
    ),
    "space": (
        f"---\nsdk: gradio\npinned: 'no'\nshort_description: {'x' * 61}\n---\n",
        ['"pinned" must be a boolean', '"short_description" length must be less than or equal to 60 characters long'],
    ),
}


@pytest.mark.parametrize("repo_type", sorted(INVALID_CARDS))
def test_readme_metadata_is_refused_like_the_hub_does(hub: FakeHub, tmp_path: Path, repo_type: str) -> None:
    card, errors = INVALID_CARDS[repo_type]
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "README.md").write_text(card)
    (folder / "app.py").write_text("import gradio\n")
    out = client_json(hub, FAILED_UPLOAD, tmp_path / "home", args={"folder": str(folder), "type": repo_type})
    assert not out["oserror"]
    assert out["message"] == "\n".join(["Invalid metadata in README.md.", *(f"- {error}" for error in errors)])
    assert len(hub.commits(REPO, repo_type=repo_type)) == 1


def test_upload_to_a_branch(hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    expected = make_folder(folder)
    code = """
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo(ARGS["repo"])
    api.create_branch(ARGS["repo"], branch="dev")
    api.create_branch(ARGS["repo"], branch="dev", exist_ok=True)
    info = api.upload_folder(repo_id=ARGS["repo"], folder_path=ARGS["folder"], revision="dev")
    print(json.dumps({
        "oid": info.oid,
        "branches": {ref.name: ref.target_commit for ref in api.list_repo_refs(ARGS["repo"]).branches},
        "files": api.list_repo_files(ARGS["repo"], revision="dev"),
        "top": [entry.path for entry in api.list_repo_tree(ARGS["repo"], revision="dev")],
        "weights": [entry.path for entry in api.list_repo_tree(ARGS["repo"], "weights", revision="dev")],
    }))
    """
    out = client_json(hub, code, tmp_path / "home", args={"folder": str(folder)})

    assert out["branches"] == {"main": hub.commits(REPO)[0], "dev": out["oid"]}
    assert sorted(out["files"]) == sorted(expected)
    assert sorted(out["top"]) == ["README.md", "config.json", "weights"]
    assert out["weights"] == ["weights/data.bin"]
    assert hub.files(REPO, revision="dev") == expected
    assert hub.files(REPO) == {}


def test_space_upload_and_variables(tmp_path: Path) -> None:
    space = f"{FakeHub.user}/demo-space"
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "app.py").write_text("import gradio\n")
    (folder / "README.md").write_text("---\nsdk: gradio\napp_file: app.py\n---\n")
    code = """
    from huggingface_hub import HfApi, hf_hub_download
    api = HfApi()
    space = ARGS["space"]
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    api.upload_folder(repo_id=space, repo_type="space", folder_path=ARGS["folder"])
    api.add_space_variable(space, "MODEL_REPO", "me/model")
    api.add_space_variable(space, "SCRATCH", "gone soon")
    api.delete_space_variable(space, "SCRATCH")
    app = hf_hub_download(space, "app.py", repo_type="space")
    listed = {key: var.value for key, var in api.get_space_variables(space).items()}
    print(json.dumps({"sdk": api.space_info(space).sdk, "app": open(app).read(), "listed": listed}))
    """
    with FakeHub() as hub:  # in-memory store, context-manager use
        out = client_json(hub, code, tmp_path / "home", args={"space": space, "folder": str(folder)})
        assert hub.variables(space) == {"MODEL_REPO": "me/model"}
        assert sorted(hub.files(space, repo_type="space")) == ["README.md", "app.py"]
    assert out == {"sdk": "gradio", "app": "import gradio\n", "listed": {"MODEL_REPO": "me/model"}}


@pytest.mark.slow
def test_keras_load_model_from_hf_url(hub: FakeHub, tmp_path: Path) -> None:
    code = """
    import numpy as np
    import keras
    from huggingface_hub import HfApi
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    folder = ARGS["home"] + "/tiny"
    model.save(folder, zipped=False)
    api = HfApi()
    api.create_repo("tester/tiny")
    api.upload_folder(repo_id="tester/tiny", folder_path=folder)
    loaded = keras.saving.load_model("hf://tester/tiny")
    x = np.array([[1.0, 2.0, 3.0]], dtype="float32")
    print(json.dumps({"local": model.predict(x, verbose=0).tolist(), "hub": loaded.predict(x, verbose=0).tolist()}))
    """
    out = client_json(hub, code, tmp_path / "home")
    assert out["hub"][0] == pytest.approx(out["local"][0])
    assert "model.weights.h5" in hub.lfs_files("tester/tiny")  # through LFS, as on the Hub


def test_dataset_files_through_the_file_system(hub: FakeHub, tmp_path: Path) -> None:
    """A published dataset of another owner, read as `hf://` paths: listing, paths-info (with the SHA-256 the
    Hub gives LFS files), byte ranges, and both revisions of a file."""
    big, small = os.urandom(200_000), b"review,sentiment\nfine,positive\n"
    first = hub.publish("someone/reviews", {"data/big.bin": big}, lfs=True)
    hub.publish("someone/reviews", {"data/big.bin": big[::-1]}, lfs=True)
    hub.publish("someone/reviews", {"small.csv": small})
    code = """
    from huggingface_hub import HfApi, HfFileSystem
    fs = HfFileSystem()
    root = "hf://datasets/someone/reviews"
    with fs.open(root + "@" + ARGS["first"] + "/data/big.bin", "rb") as f:
        f.seek(1000)
        head = f.read(10).hex()
    infos = HfApi().get_paths_info("someone/reviews", ["data/big.bin", "small.csv", "nope"], repo_type="dataset")
    print(json.dumps({
        "listing": sorted(fs.ls(root, detail=False)), "head": head, "small": fs.cat(root + "/small.csv").decode(),
        "sha256": {i.path: i.lfs.sha256 if i.lfs else None for i in infos},
    }))
    """
    out = client_json(hub, code, tmp_path / "home", args={"first": first}, token=None)
    assert out["listing"] == ["datasets/someone/reviews/data", "datasets/someone/reviews/small.csv"]
    assert out["head"] == big[1000:1010].hex() and out["small"] == small.decode()
    assert out["sha256"] == {"data/big.bin": hashlib.sha256(big[::-1]).hexdigest(), "small.csv": None}
    assert any(headers.get("range") for _, path, headers in hub.requests if "/resolve/" in path)


def http(hub: FakeHub, method: str, path: str, body: bytes | None = None, token: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request to `hub` (`path`, or a full URL it handed out), in this process: status, headers and body,
    error statuses included."""
    url = path if path.startswith("http") else hub.url + path
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=body, method=method, headers={**(headers or {}), **auth})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def preupload_modes(hub: FakeHub, files: dict[str, tuple[int, bytes]]) -> dict[str, tuple[str, str | None]]:
    """Preupload's answer for files given as (size, first bytes), as the client asks: path -> (uploadMode, oid)."""
    payload = {"files": [{"path": path, "size": size, "sample": base64.b64encode(sample[:512]).decode()}
                         for path, (size, sample) in files.items()]}
    status, _, body = http(hub, "POST", f"/api/models/{REPO}/preupload/main", json.dumps(payload).encode(), hub.token)
    assert status == 200, body
    return {item["path"]: (item["uploadMode"], item["oid"]) for item in json.loads(body)["files"]}


def test_preupload_sends_binary_and_large_files_to_lfs_like_the_hub(hub: FakeHub) -> None:
    text, binary = b"plain text\n", b"\x89HDF\r\n\x1a\n\x00\x00"
    weights = os.urandom(2000)
    hub.publish(REPO, {"config.json": text, "model.weights.h5": weights}, repo_type="model")
    modes = preupload_modes(hub, {
        "config.json": (len(text), text),
        "model.weights.h5": (len(weights), weights),
        "web/weights.bin": (len(text), text),  # the Hub's .gitattributes: LFS whatever the content
        "notes.dat": (len(binary), binary),  # binary by content
        "huge.txt": (LFS_THRESHOLD, text),  # 10 MiB or more
        "small.txt": (LFS_THRESHOLD - 1, text),
    })
    # The oid of a file already there: its SHA-256 if in LFS, its git blob id if not (what the client compares).
    assert modes == {"config.json": ("regular", git_blob_sha1(text)),
                     "model.weights.h5": ("lfs", hashlib.sha256(weights).hexdigest()),
                     "web/weights.bin": ("lfs", None), "notes.dat": ("lfs", None), "huge.txt": ("lfs", None),
                     "small.txt": ("regular", None)}
    assert hub.lfs_files(REPO) == {"model.weights.h5"}

    # The repo's own .gitattributes replaces the Hub's default rules; binary content still goes to LFS.
    hub.publish(REPO, {".gitattributes": b"*.csv filter=lfs diff=lfs merge=lfs -text\n"}, repo_type="model")
    modes = preupload_modes(hub, {"data.csv": (len(text), text), "web/weights.bin": (len(text), text),
                                  "notes.dat": (len(binary), binary)})
    assert {path: mode for path, (mode, _) in modes.items()} == {
        "data.csv": "lfs", "web/weights.bin": "regular", "notes.dat": "lfs"}


def ndjson_commit(hub: FakeHub, repo: str, operations: list[dict], token: str) -> tuple[int, bytes]:
    lines = [{"key": "header", "value": {"summary": "test", "description": ""}}, *operations]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    status, _, answer = http(hub, "POST", f"/api/models/{repo}/commit/main", body, token,
                             {"Content-Type": "application/x-ndjson"})
    return status, answer


def lfs_batch(hub: FakeHub, repo: str, objects: list[dict], token: str | None) -> tuple[int, dict]:
    payload = {"operation": "upload", "transfers": ["basic", "multipart"], "objects": objects, "hash_algo": "sha256"}
    status, _, body = http(hub, "POST", f"/{repo}.git/info/lfs/objects/batch", json.dumps(payload).encode(), token,
                           {"Content-Type": "application/vnd.git-lfs+json"})
    return status, json.loads(body)


def test_lfs_storage_takes_only_the_announced_object_and_commits_need_it(hub: FakeHub) -> None:
    hub.publish(REPO, {"README.md": b"# Demo\n"}, repo_type="model")
    hub.publish("someone/other", {"README.md": b"# Other\n"}, repo_type="model")
    data = b"\0" + os.urandom(999)  # binary as git sees it: a NUL byte among the first bytes
    obj = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}
    pointer = {"key": "lfsFile", "value": {"path": "data.bin", "algo": "sha256", **obj}}
    assert [lfs_batch(hub, repo, [obj], token)[0] for repo, token in
            [(REPO, None), (REPO, hub.read_token), ("someone/other", hub.token)]] == [401, 403, 403]
    status, answer = lfs_batch(hub, REPO, [obj], hub.token)
    assert status == 200 and answer["transfer"] == "basic"
    actions = answer["objects"][0]["actions"]
    upload, verify = actions["upload"]["href"], actions["verify"]["href"]
    assert upload.startswith(hub.url + "/") and verify.startswith(hub.url + "/")

    # Until the object is stored, no commit may point at it and verify denies it.
    assert ndjson_commit(hub, REPO, [pointer], hub.token)[0] == 400
    assert http(hub, "POST", verify, json.dumps(obj).encode(), hub.token)[0] == 404
    # Storage takes only its own signed URL, with exactly the announced content.
    assert http(hub, "PUT", upload.replace("signature=", "signature=0"), data)[0] == 403
    assert http(hub, "PUT", upload, data[:-1] + bytes([data[-1] ^ 1]))[0] == 400  # same size, other SHA-256
    assert http(hub, "PUT", upload, data + b"!")[0] == 400
    assert http(hub, "PUT", upload, data)[0] == 200
    assert http(hub, "POST", verify, json.dumps(obj).encode(), hub.token)[0] == 200

    # Stored: the batch asks for nothing more, and a commit may point at the object.
    assert "actions" not in lfs_batch(hub, REPO, [obj], hub.token)[1]["objects"][0]
    commits = hub.commits(REPO)
    assert ndjson_commit(hub, REPO, [pointer], hub.token)[0] == 200
    assert hub.files(REPO)["data.bin"] == data and hub.lfs_files(REPO) == {"data.bin"}
    # Binary content sent inline is refused, as the Hub's hook refuses it.
    inline = {"key": "file", "value": {"path": "other.bin", "encoding": "base64",
                                       "content": base64.b64encode(data).decode()}}
    status, answer = ndjson_commit(hub, REPO, [inline], hub.token)
    assert status == 400 and b"binary files" in answer
    assert len(hub.commits(REPO)) == len(commits) + 1


def test_byte_ranges_including_suffix_ranges(hub: FakeHub) -> None:
    data = bytes(range(256)) * 4
    hub.publish("someone/reviews", {"data.parquet": data}, lfs=True)
    url = "/datasets/someone/reviews/resolve/main/data.parquet"
    status, headers, body = http(hub, "GET", url)
    # An LFS file is named by its SHA-256, as the Hub names it.
    assert (status, body) == (200, data) and headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    answers = {spec: http(hub, "GET", url, headers={"Range": spec}) for spec in
               ["bytes=-10", "bytes=-5000", "bytes=1000-", "bytes=10-19", "bytes=-0", "bytes=2000-"]}
    got = {spec: (status, headers.get("Content-Range"), body) for spec, (status, headers, body) in answers.items()}
    assert got == {
        "bytes=-10": (206, "bytes 1014-1023/1024", data[-10:]),
        "bytes=-5000": (206, "bytes 0-1023/1024", data),
        "bytes=1000-": (206, "bytes 1000-1023/1024", data[1000:]),
        "bytes=10-19": (206, "bytes 10-19/1024", data[10:20]),
        "bytes=-0": (416, "bytes */1024", answers["bytes=-0"][2]),
        "bytes=2000-": (416, "bytes */1024", answers["bytes=2000-"][2]),
    }


def test_a_write_token_writes_only_to_its_own_namespaces(hub: FakeHub, tmp_path: Path) -> None:
    hub.publish("someone/reviews", {"a.txt": b"a\n"})
    code = """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    api = HfApi()
    out = {}
    for name, call in {
        "create elsewhere": lambda: api.create_repo("someone/new"),
        "upload elsewhere": lambda: api.upload_file(path_or_fileobj=b"b\\n", path_in_repo="b.txt",
                                                    repo_id="someone/reviews", repo_type="dataset"),
        "tag elsewhere": lambda: api.create_tag("someone/reviews", tag="v1", repo_type="dataset"),
        "create in the org": lambda: api.create_repo(ARGS["org"] + "/new"),
        "upload to the org": lambda: api.upload_file(path_or_fileobj=b"b\\n", path_in_repo="b.txt",
                                                     repo_id=ARGS["org"] + "/new"),
    }.items():
        try:
            call()
            out[name] = "ok"
        except HfHubHTTPError as error:
            out[name] = error.response.status_code
    print(json.dumps(out))
    """
    out = client_json(hub, code, tmp_path / "home", args={"org": FakeHub.org})
    assert out == {"create elsewhere": 403, "upload elsewhere": 403, "tag elsewhere": 403,
                   "create in the org": "ok", "upload to the org": "ok"}
    assert hub.files("someone/reviews", repo_type="dataset") == {"a.txt": b"a\n"}
    assert len(hub.commits("someone/reviews", repo_type="dataset")) == 2
    assert hub.files(f"{FakeHub.org}/new") == {"b.txt": b"b\n"}


READ_EACH = """
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError
out = {}
for repo in ARGS["repos"]:
    try:
        out[repo] = open(hf_hub_download(repo, "a.txt", repo_type=ARGS.get("type", "model"))).read()
    except HfHubHTTPError as error:
        out[repo] = [type(error).__name__, error.response.status_code, error.response.headers.get("X-Error-Message")]
print(json.dumps(out))
"""


def test_a_read_token_reads_its_namespaces_private_repos_and_public_ones(hub: FakeHub, tmp_path: Path) -> None:
    repos = {"someone/secret": True, "someone/open": False, f"{FakeHub.org}/private": True}
    for repo, private in repos.items():
        hub.publish(repo, {"a.txt": repo.encode()}, repo_type="model", private=private)
    out = client_json(hub, READ_EACH, tmp_path / "home", args={"repos": list(repos)}, token=hub.read_token)
    assert out == {"someone/secret": ["RepositoryNotFoundError", 404, "Repository not found"],
                   "someone/open": "someone/open", f"{FakeHub.org}/private": f"{FakeHub.org}/private"}


def test_a_gated_dataset_answers_like_the_hub(hub: FakeHub, tmp_path: Path) -> None:
    """Its card and file list are public; its files need a token of a user whose access request was accepted."""
    hub.publish("someone/gated", {"a.txt": b"gated\n"}, gated=True)
    code = """
    from huggingface_hub import HfApi
    info = HfApi().dataset_info("someone/gated", token=False)
    print(json.dumps({"gated": info.gated, "files": [s.rfilename for s in info.siblings]}))
    """
    assert client_json(hub, code, tmp_path / "home") == {"gated": "manual", "files": ["a.txt"]}
    args = {"repos": ["someone/gated"], "type": "dataset"}
    anonymous = client_json(hub, READ_EACH, tmp_path / "anonymous", args=args, token=None)
    not_approved = client_json(hub, READ_EACH, tmp_path / "read", args=args, token=hub.read_token)
    hub.grant_access("someone/gated", FakeHub.user)
    approved = client_json(hub, READ_EACH, tmp_path / "approved", args=args, token=hub.read_token)

    assert anonymous["someone/gated"][:2] == ["GatedRepoError", 401]
    assert "You must have access to it and be authenticated" in anonymous["someone/gated"][2]
    assert not_approved["someone/gated"][:2] == ["GatedRepoError", 403]
    assert "not in the authorized list" in not_approved["someone/gated"][2]
    assert approved == {"someone/gated": "gated\n"}
