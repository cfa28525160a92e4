"""Pre-train the embedding and the BiLSTM as a language model on reviews without labels: an encoder folder.

    python -m training.encoder --data reviews.csv.gz --unlabeled unlabeled.csv.gz --out artifacts/encoder
    python -m training.train --encoder artifacts/encoder ...       # or --encoder hf://OWNER/NAME

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

from huggingface_hub import ModelCardData

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
ENCODER_CARD = "README.md"
CARD = """---
{metadata}
---

# BiLSTM encoder pre-trained on IMDB reviews

The embedding ({vocab_size:,} words x {embedding_dim}) and bidirectional LSTM ({lstm_units} units each way) of
an IMDB sentiment BiLSTM, pre-trained without labels as a language model: the forward LSTM predicts each next
word, the backward LSTM each previous one. Made by `python -m training.encoder` from {texts:,} reviews (the
training part of `{data}` and `{unlabeled}`; files and SHA-256 in `{config}`) in {minutes:.0f} minutes of training.

| epoch | held-out perplexity |
|---|---|
{epochs}

Start a sentiment training from it: `python -m training.train --encoder hf://OWNER/NAME ...`. Alone, it loads
with `keras.saving.load_model` (safe mode, built-in layers only): raw strings in, the forward and the backward
states of every word out.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.encoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, metavar="FILE_OR_DATASET",
                        help="labelled reviews as for training.train; only their training part is read (labels unused)")
    parser.add_argument("--unlabeled", metavar="FILE_OR_DATASET", help="reviews without labels, as for training.train")
    parser.add_argument("--data-revision", metavar="REV", help="branch, tag or commit of the Hub dataset(s) read")
    parser.add_argument("--out", type=Path, required=True, help="encoder folder to create")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last epoch")
    for name in ("seed", "test_size", "val_size", "max_rows", "vocab_size", "sequence_length", "embedding_dim", "lstm_units"):
        default = getattr(DEFAULTS, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                            help=f"as for training.train (default: {default})")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"passes over the reviews (default: {EPOCHS})")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"reviews per step (default: {BATCH_SIZE})")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE,
                        help=f"Adam learning rate (default: {LEARNING_RATE})")
    return parser.parse_args(argv)


def card(record: dict, history: list[dict]) -> str:
    """The encoder folder's README.md, for the Hub."""
    metadata = ModelCardData(language="en", library_name="keras", tags=["keras", "bilstm", "language-model", "imdb"])
    arguments = record["arguments"]
    return CARD.format(
        metadata=metadata.to_yaml(), texts=record["training_texts"], data=Path(arguments["data"]).name,
        unlabeled=Path(arguments["unlabeled"]).name if record["unlabeled_data"] else "no unlabeled reviews",
        config=ENCODER_CONFIG, minutes=record["training_seconds"] / 60,
        epochs="\n".join(f"| {h['epoch']} | {h['held_out_perplexity']:.1f} |" for h in history),
        **{name: int(arguments[name]) for name in ("vocab_size", "embedding_dim", "lstm_units")})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("training").setLevel(logging.INFO)
    try:
        if min(args.epochs, args.batch_size) < 1 or args.learning_rate <= 0:
            raise ConfigError("--epochs and --batch-size must be at least 1, --learning-rate positive")
        model_folder.check_destination(args.out, args.overwrite)
        splits = load_splits(args.data, args.test_size, args.val_size, args.seed, args.max_rows, args.data_revision)
        unlabeled = read_unlabeled(args.unlabeled, args.data_revision) if args.unlabeled else None
        # A resumed run may ask for more or fewer epochs; everything else must be as it was.
        settings = {"arguments": {k: str(v) for k, v in vars(args).items() if k not in ("overwrite", "resume", "epochs")},
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
    # Local files by name only (their SHA-256 is below): no path of this machine goes into the folder.
    arguments = {k: Path(v).name if k in ("data", "unlabeled", "out") and Path(v).exists() else v
                 for k, v in settings["arguments"].items()}
    record = {"arguments": {**arguments, "epochs": args.epochs}, "training_texts": len(texts),
              "data": {**splits.source, "rows": splits.counts},
              "unlabeled_data": None if unlabeled is None else {**unlabeled.source, "rows": len(unlabeled.texts)},
              # Over every run of a resumed pre-training; the last run's own wall time beside it.
              "training_seconds": round(sum(h["seconds"] for h in history), 1),
              "last_run_wall_seconds": round(time.perf_counter() - started, 1), "final": history[-1]}
    try:
        with model_folder.staged_folder(args.out, args.overwrite) as folder:
            encoder.save(folder, zipped=False)
            (folder / ENCODER_CONFIG).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            (folder / ENCODER_CARD).write_text(card(record, history), encoding="utf-8")
            (folder / ENCODER_LOG).write_text(
                "epoch,train_loss,held_out_perplexity,seconds\n"
                + "".join(f"{h['epoch']},{h['train_loss']:.4f},{h['held_out_perplexity']:.2f},{h['seconds']:.1f}\n"
                          for h in history), encoding="utf-8")
    except model_folder.FolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model_folder.remove_training_state(args.out)
    print(f"encoder folder: {args.out} (held-out perplexity {history[-1]['held_out_perplexity']:.1f}, "
          f"{record['training_seconds']:.0f} s of training)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
