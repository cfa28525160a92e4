"""Train the IMDB sentiment BiLSTM and write a Hub-ready model folder (Keras model, tokenizer, metrics, plots,
model card); usage: training/README.md."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training import model_folder
from training.config import ConfigError, add_config_flags, config_from_args
from training.data import SAMPLE_CSV, SPLIT_FILES, DataError, load_splits, read_unlabeled
from training.push import add_push_flags, push

log = logging.getLogger("training")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("; usage")[0])
    parser.add_argument("--data", default=str(SAMPLE_CSV), metavar="FILE_OR_DATASET",
                        help="labelled reviews: a CSV (.csv, .csv.gz) or parquet file with 'review' and 'sentiment' "
                        "(or 'text' and 'label') columns, local or hf://datasets/OWNER/NAME/PATH on the Hub, split "
                        "here; or a Hub dataset id such as stanfordnlp/imdb, whose own train and test splits are used "
                        f"({', '.join(SPLIT_FILES[p] for p in ('train', 'test'))}; default: the bundled sample)")
    parser.add_argument("--data-revision", metavar="REV",
                        help="branch, tag or commit of the Hub dataset(s) read (default: main; recorded as a commit)")
    parser.add_argument("--out", type=Path, default=Path("artifacts/model"),
                        help="model folder to create (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run with the same settings from its last completed epoch")
    parser.add_argument("--unlabeled", metavar="FILE_OR_DATASET",
                        help="optional unlabeled reviews, without labels, for the pre-training of the word vectors "
                        "and, with --distill, for the BiLSTM to learn from as the n-gram model labels them: a file "
                        "as for --data with a 'review' (or 'text') column, or a Hub dataset id, whose unsupervised "
                        f"split is used ({SPLIT_FILES['unsupervised']}), e.g. stanfordnlp/imdb")
    add_push_flags(parser.add_argument_group("publishing (optional)"), "--push-to-hub")
    add_config_flags(parser.add_argument_group("hyperparameters (override the preset)"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Our lines at INFO; the libraries' (one per HTTP request to the Hub, ...) from WARNING up.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("training").setLevel(logging.INFO)
    try:
        config = config_from_args(args)
        model_folder.check_destination(args.out, args.overwrite)
        splits = load_splits(args.data, config.test_size, config.val_size, config.seed, config.max_rows,
                             args.data_revision)
        unlabeled = read_unlabeled(args.unlabeled, args.data_revision) if args.unlabeled else None
        settings = {"hyperparameters": config.to_dict(), "data": splits.source,
                    "unlabeled": unlabeled.source if unlabeled else None}
        model_folder.prepare_training_state(args.out, settings, args.resume)
    except (ConfigError, DataError, model_folder.FolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log.info("reviews: %s", splits.counts)
    # Imported only now: TensorFlow takes seconds to start and its start-up messages would bury an input error.
    from training.fit import fit_and_save

    try:
        metrics = fit_and_save(config, splits, args.out, args.overwrite, unlabeled, args.resume)
    except model_folder.FolderError as err:  # --out appeared during the run; the new folder was kept beside it
        print(f"error: {err}", file=sys.stderr)
        return 2
    test, baselines, run = metrics["test"], metrics["baselines"], metrics["training"]
    print(f"model folder: {args.out}")
    print(f"test accuracy: {test['accuracy']:.4f}; baselines: "
          + ", ".join(f"{b['name']} {b['accuracy']:.4f}" for b in baselines.values())
          + f" ({run['epochs_run']} epochs, {run['wall_seconds']:.0f} s)")
    return push(args.out, args.push_to_hub, args) if args.push_to_hub else 0


if __name__ == "__main__":
    sys.exit(main())
