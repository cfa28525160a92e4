"""Round trips between the real `huggingface_hub` client and `tests/hub_server.FakeHub`.

The client reads HF_ENDPOINT when it is imported, so every client call runs in a fresh
subprocess with its own environment and HF_HOME: nothing depends on import order or on
the developer's own Hugging Face login.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_server import FakeHub, HubError

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
        TF_CPP_MIN_LOG_LEVEL="3",
        **(extra_env or {}),
    )
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


# The two upload paths of upload_folder: streamed pipeline when hf_xet is installed, create_commit otherwise.
@pytest.mark.parametrize("disable_xet", ["0", "1"], ids=["pipeline", "create_commit"])
def test_upload_folder_then_download(hub: FakeHub, tmp_path: Path, disable_xet: str) -> None:
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
    out = client_json(
        hub, code, tmp_path / "home", args={"folder": str(folder)}, extra_env={"HF_HUB_DISABLE_XET": disable_xet}
    )

    assert len(out["oid"]) == 40
    assert hub.commits(REPO)[-1] == out["oid"]
    assert hub.files(REPO) == expected
    assert read_folder(Path(out["snapshot"])) == expected
    assert Path(out["pinned"]).read_bytes() == expected["weights/data.bin"]
    # The client sent our token on every call and never anything else.
    assert {headers.get("authorization") for _, _, headers in hub.requests} == {f"Bearer {hub.token}"}


def test_reupload_of_unchanged_folder_makes_no_commit(hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    make_folder(folder)
    first = upload(hub, folder, tmp_path / "home")
    commits = hub.commits(REPO)

    assert upload(hub, folder, tmp_path / "home") == first
    assert hub.commits(REPO) == commits


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
    code = """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    api = HfApi()
    api.create_repo(ARGS["repo"], private=True)
    raised = {}
    for name, call in {
        "missing repo": lambda: api.repo_info("tester/nope"),
        "private repo, no token": lambda: api.repo_info(ARGS["repo"], token=False),
        "missing revision": lambda: api.repo_info(ARGS["repo"], revision="nope"),
        "missing file": lambda: hf_hub_download(ARGS["repo"], "nope.txt"),
    }.items():
        try:
            call()
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as error:
            raised[name] = type(error).__name__
    print(json.dumps(raised))
    """
    assert client_json(hub, code, tmp_path / "home") == {
        "missing repo": "RepositoryNotFoundError",
        "private repo, no token": "RepositoryNotFoundError",
        "missing revision": "RevisionNotFoundError",
        "missing file": "RemoteEntryNotFoundError",
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
    assert ("403" if oserror else "FakeHub stores no large files") in out["message"]
    assert len(hub.commits(REPO)) == 1


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
    assert "model.weights.h5" in hub.files("tester/tiny")


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
