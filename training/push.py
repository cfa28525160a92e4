"""Publish a model folder to the Hugging Face Hub.

    HF_TOKEN=... python -m training.push --model-dir artifacts/full --repo-id OWNER/NAME
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.model_folder import FolderError
from training.hub import HubError, push_folder


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
    print(f"pushed {model_dir} to {result.url}")
    print(f"commit: {result.commit_id}")
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
