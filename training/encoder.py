"""Pre-train the embedding and the BiLSTM as a language model on reviews without labels: an encoder folder.

    python -m training.encoder --data reviews.csv.gz --unlabeled unlabeled.csv.gz --out encoders/imdb-bilstm-lm
    python -m training.train --encoder encoders/imdb-bilstm-lm ...       # or --encoder hf://OWNER/NAME

The forward LSTM learns to predict each next word, the backward LSTM each previous one (Dai & Le 2015;
ELMo), over the training part of --data (split exactly as `training.train` splits it, so no validation
or test review is read) and the --unlabeled reviews. The encoder folder is a Keras model of built-in
layers (raw text -> tokenizer -> embedding -> bilstm) that `training.train --encoder` starts from.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from training import model_folder
from training.config import PRESETS, ConfigError
from training.data import DataError, load_splits, read_unlabeled

log = logging.getLogger("training")

DEFAULTS = PRESETS["default"]  # the split and the network's sizes match what training.train uses
EPOCHS = 5
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
HELD_OUT_REVIEWS = 500  # validation reviews whose perplexity (full softmax) is logged after each epoch
ENCODER_CONFIG = "encoder_config.json"
ENCODER_LOG = "pretraining_log.csv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.encoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, metavar="FILE_OR_DATASET",
                        help="labelled reviews as for training.train; only their training part is read (labels unused)")
    parser.add_argument("--unlabeled", metavar="FILE_OR_DATASET", help="reviews without labels, as for training.train")
    parser.add_argument("--data-revision", metavar="REV", help="branch, tag or commit of the Hub dataset(s) read")
    parser.add_argument("--out", type=Path, required=True, help="encoder folder to create")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last epoch")
    for name in ("seed", "test_size", "val_size", "vocab_size", "sequence_length", "embedding_dim", "lstm_units"):
        default = getattr(DEFAULTS, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                            help=f"as for training.train (default: {default})")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"passes over the reviews (default: {EPOCHS})")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"reviews per step (default: {BATCH_SIZE})")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE,
                        help=f"Adam learning rate (default: {LEARNING_RATE})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("training").setLevel(logging.INFO)
    try:
        if min(args.epochs, args.batch_size) < 1 or args.learning_rate <= 0:
            raise ConfigError("--epochs and --batch-size must be at least 1, --learning-rate positive")
        model_folder.check_destination(args.out, args.overwrite)
        splits = load_splits(args.data, args.test_size, args.val_size, args.seed, 0, args.data_revision)
        unlabeled = read_unlabeled(args.unlabeled, args.data_revision) if args.unlabeled else None
        settings = {"arguments": {k: str(v) for k, v in vars(args).items() if k not in ("overwrite", "resume")},
                    "data": splits.source, "unlabeled": unlabeled.source if unlabeled else None}
        state = model_folder.prepare_training_state(args.out, settings, args.resume)
    except (ConfigError, DataError, model_folder.FolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # Imported only now: TensorFlow takes seconds to start.
    from training.language_model import pretrain

    texts = splits.train["text"].tolist() + (unlabeled.texts.tolist() if unlabeled else [])
    started = time.perf_counter()
    encoder, history = pretrain(texts, splits.val["text"].tolist()[:HELD_OUT_REVIEWS], args, state)
    record = {"arguments": settings["arguments"], "training_texts": len(texts),
              "data": {**splits.source, "rows": splits.counts},
              "unlabeled_data": None if unlabeled is None else {**unlabeled.source, "rows": len(unlabeled.texts)},
              "wall_seconds": round(time.perf_counter() - started, 1), "final": history[-1]}
    try:
        with model_folder.staged_folder(args.out, args.overwrite) as folder:
            encoder.save(folder, zipped=False)
            (folder / ENCODER_CONFIG).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            (folder / ENCODER_LOG).write_text(
                "epoch,train_loss,held_out_perplexity,seconds\n"
                + "".join(f"{h['epoch']},{h['train_loss']:.4f},{h['held_out_perplexity']:.2f},{h['seconds']:.1f}\n"
                          for h in history), encoding="utf-8")
    except model_folder.FolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model_folder.remove_training_state(args.out)
    print(f"encoder folder: {args.out} (held-out perplexity {history[-1]['held_out_perplexity']:.1f}, "
          f"{record['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
