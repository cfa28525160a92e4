"""Publish a model folder to the Hugging Face Hub ("Publish to the Hub" in training/README.md). The token comes
from `HF_TOKEN` or the saved login, through `huggingface_hub` itself: this module never reads, prints or stores it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx2  # the HTTP client huggingface_hub uses; its errors are the transport failures
from huggingface_hub import CommitInfo, HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

from training import card, model_folder
from training.data import one_line
from training.model_folder import FolderError

# What a push uploads: the model folder's own files and folders, never whatever else lies in it (a `.env`, a
# notebook, a scored CSV), as those would go public with the model.
UPLOAD_PATTERNS = [
    model_folder.KERAS_CONFIG, model_folder.KERAS_METADATA, model_folder.KERAS_WEIGHTS, model_folder.TOKENIZER,
    model_folder.TRAINING_CONFIG, model_folder.METRICS, model_folder.HISTORY, model_folder.CURVES_PLOT,
    model_folder.CONFUSION_PLOT, model_folder.CALIBRATION_PLOT, model_folder.CARD, model_folder.BENCHMARK,
    "assets/*", "web/*",  # Keras' assets; training.web_export's WEB_DIR (that module would load TensorFlow)
]
# Hidden files and folders, at any depth (`assets/.env`), never go either.
HIDDEN_PATTERNS = [".*", "*/.*"]


class HubError(RuntimeError):
    """The Hub refused or could not be reached; the message says what to do."""


def _login_check(api: HfApi) -> None:
    """Fail early, before anything is changed, when there is no usable token or no Hub."""
    try:
        api.whoami()
    except LocalTokenNotFoundError:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`") from None
    except HfHubHTTPError as err:
        if err.response is not None and err.response.status_code == 401:
            raise HubError("the Hugging Face token was refused (401): check HF_TOKEN or log in again") from None
        raise HubError(f"the Hub answered an error: {one_line(err)}") from None
    except (httpx2.HTTPError, OSError) as err:
        raise HubError(f"cannot reach the Hub at {constants.ENDPOINT} ({type(err).__name__}); "
                       "check the network or HF_ENDPOINT") from None


def push_folder(
    folder: Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    space_id: str | None = None,
) -> CommitInfo:
    """Upload a complete model folder's own files (UPLOAD_PATTERNS) to `repo_id`; an unchanged folder makes no
    new commit."""
    model_folder.check_folder(folder)
    # The card's usage examples name the repo, so it is rendered for this one, before the Hub is touched.
    rendered = card.render_card(folder, repo_id=repo_id, space_id=space_id)
    api = HfApi()
    _login_check(api)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        rendered.save(folder / model_folder.CARD)
        commit = api.upload_folder(
            folder_path=folder,
            repo_id=repo_id,
            repo_type="model",
            revision=revision,
            allow_patterns=UPLOAD_PATTERNS,
            ignore_patterns=HIDDEN_PATTERNS,
            commit_message=commit_message or f"Upload model folder {folder.name}",
        )
    except HfHubHTTPError as err:
        if err.response is not None and err.response.status_code == 403:
            raise HubError(f"the Hugging Face token may not write to {repo_id} (403 Forbidden): use a token with "
                           "write access in HF_TOKEN or `hf auth login`") from None
        raise HubError(f"the Hub refused the push: {one_line(err)}") from None
    except ValueError as err:  # huggingface_hub's for README.md metadata or a large file that the Hub refused
        raise HubError(f"the Hub refused the push: {one_line(err)}") from None
    except (httpx2.HTTPError, OSError) as err:  # the network, or a failed large-file upload (hf_xet)
        raise HubError(f"the push to {repo_id} was interrupted ({type(err).__name__}: {one_line(err)}); "
                       "the local folder is intact; run the same command again") from None
    return commit


def add_push_flags(parser: argparse.ArgumentParser, repo_flag: str) -> None:
    """The flags shared by `training.push` and `training.train --push-to-hub`."""
    parser.add_argument(repo_flag, metavar="OWNER/NAME", required=repo_flag == "--repo-id",
                        help="model repository on the Hub (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", metavar="BRANCH", help="push to this branch instead of main")
    parser.add_argument("--commit-message", help="message of the commit on the Hub")
    parser.add_argument("--space-id", metavar="OWNER/NAME", help="the demo Space, so the model card can show how to call it")


def push(model_dir: Path, repo_id: str, args: argparse.Namespace) -> int:
    """Push and report on the terminal; a one-line error and exit status 2 on failure."""
    try:
        result = push_folder(model_dir, repo_id, args.private, args.revision, args.commit_message, args.space_id)
    except (FolderError, HubError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pushed {model_dir} to {result.repo_url}")
    print(f"commit: {result.oid}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.push",
        description="Upload a model folder made by training.train to the Hugging Face Hub. The token comes "
        "from HF_TOKEN or the saved login. Pushing an unchanged folder makes no new commit.",
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="model folder made by training.train")
    add_push_flags(parser, "--repo-id")
    args = parser.parse_args(argv)
    return push(args.model_dir, args.repo_id, args)


if __name__ == "__main__":
    sys.exit(main())
