"""Publish space/ as a Gradio Space serving a model repo, or space/static/ as a static Space.
"Publish" in tools/README.md. The token comes from HF_TOKEN or the saved `hf auth login`; it is never printed."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, SpaceCard, constants
from huggingface_hub.errors import HfHubHTTPError

from examples import EXAMPLES
from model_folder import MODEL_REPO_VARIABLE, MODEL_REVISION_VARIABLE, summary
from review_text import MAX_TEXT_CHARS

SPACE_DIR = Path(__file__).resolve().parent.parent
CARD = "README.md"
REQUIREMENTS = "requirements.txt"
# The static Space: the page and its scripts (no build step, no dependency), and the config.json written here:
# the model repo at a pinned commit, where to download it from, and the facts the page shares with this Space.
STATIC_DIR = SPACE_DIR / "static"
STATIC_CONFIG = "config.json"
PAGE_FILES = ("*.html", "*.css", "*.js")  # what the static page is made of, beside its card
WEB_MANIFEST = "web/model.json"  # training.web_export writes it into the model folder


class NotPublishable(ValueError):
    """The model repo cannot be served by the static Space; the message says why."""


def files_in(folder: Path, pattern: str) -> list[str]:
    """The names of the files directly in `folder` that match `pattern`, hidden ones (`.env`) left out."""
    return sorted(path.name for path in folder.glob(pattern) if path.is_file() and not path.name.startswith("."))


def space_files(folder: Path) -> list[str]:
    """What the Space runs: its card, its requirements and the modules directly in `folder` (the app and what it
    imports), so a stray `.env`, virtual environment or scored CSV never goes public, nor tools/ or static/."""
    return [CARD, REQUIREMENTS, *files_in(folder, "*.py")]


def static_files(folder: Path) -> list[str]:
    """What the static Space serves: its card and the page's files directly in `folder`, not a stray notes file."""
    return [CARD, *(name for pattern in PAGE_FILES for name in files_in(folder, pattern))]


def stage(folder: Path, model_repo: str, source: Path, names: list[str]) -> None:
    """Copy the files `names` of `source` into `folder`, with the card's `models:` naming the served model."""
    for name in names:
        shutil.copy2(source / name, folder / name)
    card = SpaceCard.load(folder / CARD)
    card.data.models = [model_repo]
    card.save(folder / CARD)


def kept_pin(api: HfApi, space_id: str, model_repo: str) -> str | None:
    """The model commit an earlier publish pinned the Space to, if it served this same model repo."""
    variables = {name: variable.value for name, variable in api.get_space_variables(space_id).items()}
    if variables.get(MODEL_REPO_VARIABLE) == model_repo:
        return variables.get(MODEL_REVISION_VARIABLE) or None
    return None


def publish(space_id: str, model_repo: str, model_revision: str | None = None, private: bool = False) -> str:
    """Create (or update) the Space, upload its files in one commit, and point it at the model pinned to a commit:
    that of `model_revision` when given, else the pin it had (it moves only when asked), else main's commit now."""
    api = HfApi()
    # Resolved first: a missing or unreadable model repo fails before the Space is touched.
    head = api.model_info(model_repo, revision=model_revision).sha
    url = api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    pin = (model_revision is None and kept_pin(api, space_id, model_repo)) or head
    with tempfile.TemporaryDirectory() as folder:
        stage(Path(folder), model_repo, SPACE_DIR, space_files(SPACE_DIR))
        commit = api.upload_folder(
            repo_id=space_id, repo_type="space", folder_path=folder, commit_message="Publish the Space"
        )
    api.add_space_variable(space_id, MODEL_REPO_VARIABLE, model_repo)
    api.add_space_variable(space_id, MODEL_REVISION_VARIABLE, pin)
    print(f"commit: {commit.oid}")
    print(f"model: {model_repo} at {pin}")
    return str(url)


def stage_static(folder: Path, model_repo: str, revision: str, hub_url: str) -> None:
    """Copy the files of static/ into `folder`, with a config.json naming the model at `revision`."""
    stage(folder, model_repo, STATIC_DIR, static_files(STATIC_DIR))
    config = {"hub_url": hub_url.rstrip("/"), "model_repo": model_repo, "revision": revision,
              "max_text_chars": MAX_TEXT_CHARS, "examples": EXAMPLES}
    (folder / STATIC_CONFIG).write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")


def pinned_revision(api: HfApi, model_repo: str, revision: str | None) -> str:
    """The commit that `revision` (default: main) of the model repo points to, if the browser can load it there."""
    info = api.model_info(model_repo, revision=revision)
    if info.private:
        raise NotPublishable(f"{model_repo} is private: the static page downloads the model without a token, "
                             "so make the model repo public")
    if not api.file_exists(model_repo, WEB_MANIFEST, revision=info.sha):
        raise NotPublishable(f"{model_repo} has no {WEB_MANIFEST}: run `python -m training.web_export --model-dir "
                             "FOLDER`, then push the folder again")
    return info.sha


def publish_static(space_id: str, model_repo: str, model_revision: str | None = None, private: bool = False) -> str:
    """Create (or update) the static Space, pinned to the model's current commit; returns the URL."""
    api = HfApi()
    revision = pinned_revision(api, model_repo, model_revision)
    url = api.create_repo(space_id, repo_type="space", space_sdk="static", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        stage_static(Path(folder), model_repo, revision, constants.ENDPOINT)
        commit = api.upload_folder(repo_id=space_id, repo_type="space", folder_path=folder,
                                   commit_message=f"Publish the static Space ({model_repo} at {revision[:12]})")
    print(f"commit: {commit.oid}")
    return str(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.publish", description=__doc__.splitlines()[0])
    parser.add_argument("--static", action="store_true", help="publish static/ instead: the model runs in the "
                        "visitor's browser (a free static Space; give it its own --space-id)")
    parser.add_argument("--space-id", help="the Space to create or update, OWNER/NAME")
    parser.add_argument("--model-repo", required=True, help="the model repo the Space serves (its MODEL_REPO)")
    parser.add_argument("--model-revision", help="pin the model to the commit this branch, tag or commit points to "
                        "now (MODEL_REVISION); without it, the Space keeps its pin (a new Space: main's commit now)")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    parser.add_argument("--stage-only", type=Path, metavar="DIR", help="with --static: write the static Space's "
                        "files into DIR (new or empty) instead of publishing them, pinned to --model-revision as given")
    args = parser.parse_args(argv)
    if args.stage_only and not (args.static and args.model_revision):
        parser.error("--stage-only needs --static and --model-revision")
    if not (args.space_id or args.stage_only):
        parser.error("--space-id is required")
    try:
        if args.stage_only:
            args.stage_only.mkdir(parents=True, exist_ok=True)
            if any(args.stage_only.iterdir()):
                parser.error(f"{args.stage_only} is not empty")
            stage_static(args.stage_only, args.model_repo, args.model_revision, constants.ENDPOINT)
            print(f"staged the static Space in {args.stage_only}")
            return 0
        publish_one = publish_static if args.static else publish
        url = publish_one(args.space_id, args.model_repo, args.model_revision, args.private)
    except NotPublishable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except HfHubHTTPError as error:
        # The client's message names the request, never the token.
        print(f"error: the Hub refused the request: {summary(error)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        # What huggingface_hub raises for a failed upload or an unreachable Hub (OSError) and for README.md
        # metadata that the Hub refused (ValueError).
        print(f"error: publishing {args.space_id} failed ({type(error).__name__}): {summary(error)}", file=sys.stderr)
        return 1
    print(f"Space: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
