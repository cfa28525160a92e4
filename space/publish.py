"""Publish this folder as a Gradio Space that serves a model repo from the Hub.

    HF_TOKEN=... python space/publish.py --space-id OWNER/NAME --model-repo OWNER/MODEL [--model-revision REV]

The token comes from HF_TOKEN or the saved `hf auth login`; it is never printed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, SpaceCard
from huggingface_hub.errors import HfHubHTTPError

SPACE_DIR = Path(__file__).resolve().parent
CARD = "README.md"
# What the Space runs, and the one list of it: its card, requirements and app.py with every module it imports, and
# nothing else, so a stray `.env`, virtual environment or scored CSV in this folder never goes public. Not the
# maintainers' tools (publish.py, score_csv.py, benchmark.py, loadtest.py), which may need more than the
# Space's requirements.
SPACE_FILES = (CARD, "requirements.txt", "app.py", "inference.py", "model_folder.py", "review_text.py", "review_csv.py",
               "examples.py", "quiet_tf.py")
# The Space variables that inference.py reads.
MODEL_REPO_VARIABLE = "MODEL_REPO"
MODEL_REVISION_VARIABLE = "MODEL_REVISION"
MESSAGE_CHARS = 300


def stage(folder: Path, model_repo: str) -> None:
    """Copy the Space's files (SPACE_FILES) into `folder`, with the card's `models:` naming the served model."""
    for name in SPACE_FILES:
        shutil.copy2(SPACE_DIR / name, folder / name)
    card = SpaceCard.load(folder / CARD)
    card.data.models = [model_repo]
    card.save(folder / CARD)


def publish(space_id: str, model_repo: str, model_revision: str | None = None, private: bool = False) -> str:
    """Create (or update) the Space, upload its files in one commit, and point it at the model; returns the URL."""
    api = HfApi()
    url = api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        stage(Path(folder), model_repo)
        commit = api.upload_folder(
            repo_id=space_id, repo_type="space", folder_path=folder, commit_message="Publish the Space"
        )
    api.add_space_variable(space_id, MODEL_REPO_VARIABLE, model_repo)
    if model_revision:
        api.add_space_variable(space_id, MODEL_REVISION_VARIABLE, model_revision)
    elif MODEL_REVISION_VARIABLE in api.get_space_variables(space_id):
        # A pin left by an earlier publish would keep serving the old revision.
        api.delete_space_variable(space_id, MODEL_REVISION_VARIABLE)
    print(f"commit: {commit.oid}")
    return str(url)


def one_line(error: Exception) -> str:
    """An error's whole message on one line, cut to MESSAGE_CHARS."""
    return " ".join(str(error).split())[:MESSAGE_CHARS] or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python space/publish.py", description=__doc__.splitlines()[0])
    parser.add_argument("--space-id", required=True, help="the Space to create or update, OWNER/NAME")
    parser.add_argument("--model-repo", required=True, help="the model repo the Space serves (its MODEL_REPO)")
    parser.add_argument("--model-revision", help="pin the model to this branch, tag or commit (MODEL_REVISION); "
                        "without it, the Space serves the model's main branch")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    args = parser.parse_args(argv)
    try:
        url = publish(args.space_id, args.model_repo, args.model_revision, args.private)
    except HfHubHTTPError as error:
        # The client's message names the request, never the token.
        print(f"error: the Hub refused the request: {one_line(error)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        # What huggingface_hub raises for a failed upload or an unreachable Hub (OSError) and for README.md
        # metadata that the Hub refused (ValueError).
        print(f"error: publishing {args.space_id} failed ({type(error).__name__}): {one_line(error)}", file=sys.stderr)
        return 1
    print(f"Space: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
