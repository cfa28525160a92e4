"""The Space against the local Hub look-alike: publishing it, and loading its model from the Hub or the cache.

huggingface_hub reads HF_ENDPOINT when it is imported, so every client runs in a fresh subprocess.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from hub_server import FakeHub
from space_support import SPACE_DIR, clean_env

from tools import publish  # noqa: E402

MODEL_REPO = f"{FakeHub.user}/imdb-sentiment-bilstm"
SPACE_REPO = f"{FakeHub.user}/imdb-sentiment"
# A port nothing listens on: the Hub is "unreachable".
DEAD_ENDPOINT = "http://127.0.0.1:9"


def run(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run Python `code` in space/ (as on Spaces); its last stdout line is JSON."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=SPACE_DIR, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def last_json(result: subprocess.CompletedProcess):
    return json.loads(result.stdout.strip().splitlines()[-1])


def hub_env(hub_url: str, home: Path, token: str | None, **extra: str) -> dict[str, str]:
    # The local Hub stores large files through LFS only, as the Hub does for clients without Xet.
    env = clean_env(HF_ENDPOINT=hub_url, HF_HOME=str(home), HF_HUB_DISABLE_XET="1", **extra)
    if token:
        env["HF_TOKEN"] = token
    return env


@pytest.fixture(scope="module")
def model_dir(tiny_model: Path) -> Path:
    return tiny_model


PUBLISH = [sys.executable, "-m", "tools.publish", "--space-id", SPACE_REPO, "--model-repo", MODEL_REPO]


def publish_model(hub: FakeHub, version: int, repo_id: str = MODEL_REPO) -> str:
    """A commit on the model repo's main, as its owner's push would make; its id."""
    return hub.publish(repo_id, {"training_config.json": json.dumps({"version": version}).encode()}, repo_type="model")


def test_publish_creates_the_space_uploads_it_and_sets_the_model(tmp_path: Path) -> None:
    with FakeHub(token="hf_publish_secret_123") as hub:
        pinned = publish_model(hub, 1)
        env = hub_env(hub.url, tmp_path / "home", hub.token)
        first = subprocess.run([*PUBLISH, "--model-revision", "main"], cwd=SPACE_DIR, env=env, capture_output=True,
                               text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert hub.variables(SPACE_REPO) == {"MODEL_REPO": MODEL_REPO, "MODEL_REVISION": pinned}
        second = subprocess.run(PUBLISH, cwd=SPACE_DIR, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr

        files = hub.files(SPACE_REPO, repo_type="space")
        assert set(files) == set(publish.space_files(SPACE_DIR))
        assert not any("__pycache__" in name or "tools/" in name for name in files)
        assert files["app.py"] == (SPACE_DIR / "app.py").read_bytes()
        card = yaml.safe_load(files["README.md"].decode().split("---")[1])
        assert card["sdk"] == "gradio" and card["app_file"] == "app.py"
        assert card["models"] == [MODEL_REPO]
        assert hub.variables(SPACE_REPO) == {"MODEL_REPO": MODEL_REPO, "MODEL_REVISION": pinned}
        # Publishing the same files again makes no new commit.
        assert len(hub.commits(SPACE_REPO, repo_type="space")) == 2
        for output in (first, second):
            assert hub.token not in output.stdout + output.stderr
            assert hub.url in output.stdout and f"model: {MODEL_REPO} at {pinned}" in output.stdout


@pytest.mark.slow
def test_the_space_is_pinned_to_the_models_commit_and_moves_only_when_asked(tmp_path: Path) -> None:
    """Whoever can push to the model repo cannot change what the Space serves (weights, labels, tool texts)."""
    with FakeHub() as hub:
        env = hub_env(hub.url, tmp_path / "home", hub.token)

        def published(*extra: str) -> str:
            result = subprocess.run([*PUBLISH, *extra], cwd=SPACE_DIR, env=env, capture_output=True, text=True,
                                    timeout=120)
            assert result.returncode == 0, result.stderr
            return hub.variables(SPACE_REPO)["MODEL_REVISION"]

        first = publish_model(hub, 1)
        assert published() == first  # a new Space: main's commit at publish time, not `main`
        second = publish_model(hub, 2)
        assert published() == first  # republished: the pin stays
        assert published("--model-revision", "main") == second  # moved when asked
        assert published("--model-revision", first) == first
        other = publish_model(hub, 3, repo_id=f"{FakeHub.user}/other-model")
        assert published("--model-repo", f"{FakeHub.user}/other-model") == other  # another model: its own commit
        missing = subprocess.run([*PUBLISH, "--model-repo", f"{FakeHub.user}/no-such-model"], cwd=SPACE_DIR, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert missing.returncode == 1 and missing.stderr.startswith("error: the Hub refused the request")
        assert hub.variables(SPACE_REPO) == {"MODEL_REPO": f"{FakeHub.user}/other-model", "MODEL_REVISION": other}


def test_publish_without_a_token_fails_clearly(tmp_path: Path) -> None:
    with FakeHub() as hub:
        publish_model(hub, 1)
        result = subprocess.run(PUBLISH, cwd=SPACE_DIR, env=hub_env(hub.url, tmp_path / "home", None),
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("error: the Hub refused the request")


PUBLISH_COPY = """
    import sys
    from pathlib import Path
    from tools import publish
    publish.SPACE_DIR = Path(sys.argv[1])
    sys.exit(publish.main(sys.argv[2:]))
"""
FAILED_PUBLISH = {
    "read-only-token": "error: the Hub refused the request: 403 Forbidden: ",
    "card-metadata": f"error: publishing {SPACE_REPO} failed (ValueError): Invalid metadata in README.md. "
    '- "short_description" length must be less than or equal to 60 characters long',
    "lfs-upload": f"error: publishing {SPACE_REPO} failed (ValueError): LFS batch API returned errors: ",
}


@pytest.mark.parametrize("failure", sorted(FAILED_PUBLISH))
def test_failed_publish_is_one_line(tmp_path: Path, failure: str) -> None:
    space = tmp_path / "space"
    shutil.copytree(SPACE_DIR, space, ignore=shutil.ignore_patterns("__pycache__"))
    if failure == "card-metadata":
        card = (space / "README.md").read_text()
        (space / "README.md").write_text(card.replace("short_description: ", "short_description: " + "x" * 60, 1))
    with FakeHub() as hub:
        publish_model(hub, 1)
        hub.large_file_bytes = 1 if failure == "lfs-upload" else None
        token = hub.read_token if failure == "read-only-token" else hub.token
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(PUBLISH_COPY), str(space), *PUBLISH[3:]],
                                cwd=SPACE_DIR, env=hub_env(hub.url, tmp_path / "home", token), capture_output=True,
                                text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith(FAILED_PUBLISH[failure]) and result.stderr.count("\n") == 1, result.stderr
    assert hub.read_token not in result.stderr


def test_publish_uploads_the_spaces_files_and_nothing_else(tmp_path: Path) -> None:
    """A secret, a virtual environment, a scored CSV or a notes file left in space/ never goes public, nor the
    maintainers' tools or the static page."""
    space = tmp_path / "space"
    shutil.copytree(SPACE_DIR, space, ignore=shutil.ignore_patterns("__pycache__"))
    strays = {".env": "HF_TOKEN=hf_not_for_the_space\n", ".venv/lib/site.py": "x = 1\n",
              "scored_reviews.csv": "review,probability\nprivate words,0.9\n", "notes.md": "to do\n",
              "flagged/log.csv": "review\nprivate words\n"}
    for name, content in strays.items():
        (space / name).parent.mkdir(parents=True, exist_ok=True)
        (space / name).write_text(content)
    with FakeHub() as hub:
        publish_model(hub, 1)
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(PUBLISH_COPY), str(space), *PUBLISH[3:]],
                                cwd=SPACE_DIR, env=hub_env(hub.url, tmp_path / "home", hub.token), capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        files = hub.files(SPACE_REPO, repo_type="space")
    assert not set(strays) & set(files)
    assert {"app.py", "inference.py", "README.md", "requirements.txt"} <= set(files) == set(publish.space_files(space))
    assert not any(name.startswith(("tools/", "static/")) for name in files)
    assert all(files[name] == (space / name).read_bytes() for name in files if name != "README.md")


def imported_modules(path: Path) -> set[str]:
    """The top-level names that a Python file imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_in_space_is_the_app_or_one_it_imports() -> None:
    """space/ is the Space: what is published (its modules) is what the app runs; the tools live in tools/."""
    ours = {path.stem for path in SPACE_DIR.glob("*.py")}
    needed, new = set(), {"app"}
    while new:
        needed |= new
        new = {module for name in new for module in imported_modules(SPACE_DIR / f"{name}.py") & ours} - needed
    assert needed == ours
    assert {f"{name}.py" for name in ours} <= set(publish.space_files(SPACE_DIR))


LOAD_FROM_ENV = """
    import json, os, sys
    import inference
    answers = []
    for revision in sys.argv[1:] or [""]:
        os.environ["MODEL_REVISION"] = revision
        try:
            predictor = inference.load_from_environment()
            answers.append({"labels": predictor.labels, "p": float(predictor.probabilities(["A fine film."])[0])})
        except inference.ModelUnavailable as problem:
            answers.append({"problem": str(problem)})
    print(json.dumps(answers))
"""

APP_PAGE = """
    import json
    import app
    print(json.dumps({"problem": app.PROBLEM, "note": app.classify("A fine film.")[3],
                      "page": json.dumps(app.demo.get_config_file())}))
"""


def test_the_model_comes_from_the_hub_then_from_the_cache(model_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    relabelled = tmp_path / "relabelled"
    relabelled.mkdir()
    config = json.loads((model_dir / "training_config.json").read_text())
    (relabelled / "training_config.json").write_text(json.dumps({**config, "labels": ["bad", "good"]}))
    local = run(LOAD_FROM_ENV, clean_env(MODEL_REPO=str(model_dir), HF_HOME=str(home)))
    expected = last_json(local)[0]["p"]

    with FakeHub() as hub:
        upload = """
            import sys
            from huggingface_hub import HfApi
            api = HfApi()
            api.create_repo(sys.argv[1], exist_ok=True)
            first = api.upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[2]).oid
            api.create_tag(sys.argv[1], tag="v1", revision=first)
            api.upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[3])
            print(f'"{first}"')
        """
        first_commit = last_json(run(upload, hub_env(hub.url, tmp_path / "pusher", hub.token),
                                     MODEL_REPO, str(model_dir), str(relabelled)))
        online = hub_env(hub.url, home, None, MODEL_REPO=MODEL_REPO)
        pinned, tagged, latest = last_json(run(LOAD_FROM_ENV, online, first_commit, "v1", ""))
        downloaded = [path for _, path, _ in hub.requests if "/resolve/" in path]
    assert pinned == tagged == {"labels": ["negative", "positive"], "p": pytest.approx(expected, abs=1e-6)}
    assert latest["labels"] == ["bad", "good"]
    # Only what serving needs is downloaded: no plots, no card.
    assert not any(name.endswith((".png", "README.md")) for name in downloaded)

    # The Hub is gone: the same cache serves the same revision.
    offline = hub_env(DEAD_ENDPOINT, home, None, MODEL_REPO=MODEL_REPO)
    assert last_json(run(LOAD_FROM_ENV, offline, first_commit)) == [pinned]

    # No cache and no Hub: the page explains, and Classify answers with the explanation.
    page = last_json(run(APP_PAGE, hub_env(DEAD_ENDPOINT, tmp_path / "empty-home", None, MODEL_REPO=MODEL_REPO)))
    assert "could not be reached" in page["problem"] and "MODEL_REPO" in page["problem"]
    assert page["note"] == page["problem"]
    assert "The model is not available" in page["page"]


HUB_PROBLEMS = """
    import json, os, sys
    import inference, model_folder
    token = os.environ.pop("HF_TOKEN")
    answers = []
    for repo, revision, with_token in json.loads(sys.argv[1]):
        if with_token:
            os.environ["HF_TOKEN"] = token
        try:
            answers.append(inference.load_predictor(model_folder.locate(repo, revision)).labels)
        except inference.ModelUnavailable as problem:
            answers.append(str(problem))
        os.environ.pop("HF_TOKEN", None)
    print(json.dumps(answers))
"""


def test_hub_refusals_say_what_to_check(model_dir: Path, tmp_path: Path) -> None:
    """A wrong repo id, a missing revision, a private repo without a token: the page's message says which."""
    cases = {  # (repo, revision, with token): what the message must say
        ("tester/no-such-model", None, True): "Repository Not Found",
        (MODEL_REPO, None, False): "Repository Not Found",
        (MODEL_REPO, "no-such-revision", True): "Revision Not Found",
        (MODEL_REPO, None, True): None,  # the control: with the token, the private model loads
    }
    with FakeHub() as hub:
        upload = """
            import sys
            from huggingface_hub import HfApi
            HfApi().create_repo(sys.argv[1], private=True)
            HfApi().upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[2])
            print("{}")
        """
        run(upload, hub_env(hub.url, tmp_path / "pusher", hub.token), MODEL_REPO, str(model_dir))
        answers = last_json(run(HUB_PROBLEMS, hub_env(hub.url, tmp_path / "home", hub.token), json.dumps(list(cases))))
    for (repo, revision, _), expected, answer in zip(cases, cases.values(), answers):
        if expected is None:
            assert answer == ["negative", "positive"]
        else:
            assert answer.startswith(f"MODEL_REPO={repo!r} is not a local folder and could not be downloaded")
            assert expected in answer and "MODEL_REVISION" in answer and "HF_TOKEN" in answer
