"""Publish a model folder to the Hugging Face Hub.

The token comes from `HF_TOKEN` or the saved login (`hf auth login`), through `huggingface_hub`
itself; this module never reads, prints or stores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx2  # the HTTP client huggingface_hub uses; its errors are the transport failures
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

from training import card, model_folder
from training.data import one_line

MODEL_REPO_URL = "{endpoint}/{repo_id}"
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


@dataclass(frozen=True)
class PushResult:
    url: str
    commit_id: str


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


def _refused(err: HfHubHTTPError, repo_id: str) -> str:
    """What to tell the user when the Hub answered an error; a 403 means the token may not write."""
    if err.response is not None and err.response.status_code == 403:
        return (f"the Hugging Face token may not write to {repo_id} (403 Forbidden): use a token with write access "
                "in HF_TOKEN or `hf auth login`")
    return f"the Hub refused the push: {one_line(err)}"


def push_folder(
    folder: Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    space_id: str | None = None,
) -> PushResult:
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
        raise HubError(_refused(err, repo_id)) from None
    except ValueError as err:  # huggingface_hub's for README.md metadata or a large file that the Hub refused
        raise HubError(f"the Hub refused the push: {one_line(err)}") from None
    except (httpx2.HTTPError, OSError) as err:  # the network, or a failed large-file upload (hf_xet)
        raise HubError(f"the push to {repo_id} was interrupted ({type(err).__name__}: {one_line(err)}); "
                       "the local folder is intact; run the same command again") from None
    return PushResult(url=MODEL_REPO_URL.format(endpoint=constants.ENDPOINT, repo_id=repo_id), commit_id=commit.oid)
