"""The benchmark's tables: the full one (training/README.md, the default model's card) and the headline rows
(README.md), rendered from the rows of `training.benchmark`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"  # the headline table
TRAINING_README = REPO / "training" / "README.md"  # the full table
TABLE_START, TABLE_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
REFERENCE = "tfidf"  # serving speeds are given as ratios to this baseline's
HEADLINE_MODELS = ("`default`", "`bilstm`", "`tutorial`")  # with the baselines, the rows of README.md's table

# What each row of an ablation run adds to the one before it.
ABLATION_STEPS = {
    "bilstm-random": "embedding from random numbers",
    "bilstm-ppmi": "embedding from PPMI word vectors",
    "bilstm": "plus distillation: it also learns from the unlabeled reviews, labelled by the n-gram model",
    "default-summed": "the row before distillation, plus the n-gram branch, logits summed",
    "default-reviews": "plus the output layer fitted on the validation part, which also reads how many words were read",
    "default": "plus the n-gram branch's second logit, also learned from the training reviews' sentences",
}


def ablation_legend(names: list[str]) -> str:
    """The legend of an ablation run's rows, named as in `configs`; empty for a run without the ablation."""
    if "bilstm-random" not in names:
        return ""
    return " Ablation, each ingredient added in turn: " + ", ".join(
        f"`{name}` ({step})" for name, step in ABLATION_STEPS.items() if name in names) + "."


def fmt(value: float | None, spec: str) -> str:
    """A table cell: the value formatted, or a dash where there is none."""
    return "–" if value is None else format(value, spec)


def ratio(value: float | None, base: float | None, higher_is_faster: bool) -> str:
    """How many times as fast as `base`, from two figures of the same kind."""
    if value is None or base is None:
        return "–"
    return f"{(value / base) if higher_is_faster else (base / value):.2f}×"


def served(row: dict, key: str) -> float:
    """The row's figure as it is served: through the Space for our models, scikit-learn for the baselines."""
    return row[key] if row.get("space_" + key) is None else row["space_" + key]


def markdown(rows: list[dict], header: str) -> str:
    """One table: quality, calibration, training cost, size and serving speed, with speed ratios."""
    tutorial = next(row for row in rows if row["model"] == "`tutorial`")
    reference = next(row for row in rows if row.get("key") == REFERENCE)

    def epochs(row: dict) -> str:
        return "–" if row["epoch_seconds"] is None else " / ".join(f"{s:.0f}" for s in row["epoch_seconds"])

    for row in rows:
        row["median_epoch_s"] = None if row["epoch_seconds"] is None else float(np.median(row["epoch_seconds"]))
    lines = [
        header,
        "One-sentence: the last sentence of each test review alone, labelled as its review; negation-sentence: "
        "those of them with a negation word (not, no, never, n't...). ECE: expected "
        "calibration error (15 bins). Single, one-line and batch speeds: each saved model as Keras loads it, in one "
        "compiled call; Space: the same folder through the Space's serving path. Speed ratios: one-line p50 and "
        "batch throughput as served (our models through the Space) against the TF-IDF baseline, epoch time "
        "against `tutorial`, all measured in this run."
        + ablation_legend([row["model"].strip("`") for row in rows]),
        "",
        "| model | test accuracy | test F1 | test ECE | one-sentence accuracy | one-sentence ECE "
        "| negation-sentence accuracy | negation-sentence ECE | training wall s "
        "| seconds per epoch | peak RSS MB | parameters | folder MB | single p50 ms | single p99 ms | one-line p50 ms "
        "| batch reviews/s | Space one-line p50 ms | Space batch reviews/s | one-line speed vs TF-IDF "
        "| batch speed vs TF-IDF | epoch speed vs tutorial |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['accuracy']:.4f} | {row['f1']:.4f} | {row['ece']:.4f} "
            f"| {row['one_sentence_accuracy']:.4f} | {row['one_sentence_ece']:.4f} "
            f"| {row['negation_accuracy']:.4f} | {row['negation_ece']:.4f} | {row['train_seconds']:.0f} "
            f"| {epochs(row)} | {row['peak_rss_mb']:.0f} | {row['parameters']:,} | {fmt(row['folder_mb'], '.1f')} "
            f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['one_line_p50_ms']:.2f} "
            f"| {row['batch_reviews_per_s']:,.0f} | {fmt(row['space_one_line_p50_ms'], '.2f')} "
            f"| {fmt(row['space_batch_reviews_per_s'], ',.0f')} "
            f"| {ratio(served(row, 'one_line_p50_ms'), reference['one_line_p50_ms'], False)} "
            f"| {ratio(served(row, 'batch_reviews_per_s'), reference['batch_reviews_per_s'], True)} "
            f"| {ratio(row['median_epoch_s'], tutorial['median_epoch_s'], False)} |"
        )
    return "\n".join(lines) + "\n"


def headline(rows: list[dict], header: str) -> str:
    """The README's table: the presets and the baselines, with quality and one-liner speed as served."""
    reference = next(row for row in rows if row.get("key") == REFERENCE)
    legend = ("One-sentence: the last sentence of each test review alone. ECE: expected calibration error. "
              "One-liner speed: a one-line review's latency as served (our models through the Space), against "
              "TF-IDF's in the same run.")
    lines = [header, legend, "", "| model | test accuracy | one-sentence accuracy | test ECE | one-liner speed vs TF-IDF |",
             "|---|---|---|---|---|"]
    for row in rows:
        if row["model"] in HEADLINE_MODELS or row.get("key"):
            lines.append(f"| {row['model']} | {row['accuracy']:.4f} | {row['one_sentence_accuracy']:.4f} "
                         f"| {row['ece']:.4f} "
                         f"| {ratio(served(row, 'one_line_p50_ms'), reference['one_line_p50_ms'], False)} |")
    return "\n".join(lines) + "\n"


def update_readmes(table: str, short: str) -> None:
    """Write the full table into training/README.md and the headline table into README.md, between their markers."""
    for path, text in ((TRAINING_README, table), (README, short)):
        page = path.read_text(encoding="utf-8")
        start, end = page.index(TABLE_START) + len(TABLE_START), page.index(TABLE_END)
        path.write_text(page[:start] + "\n" + text + page[end:], encoding="utf-8")
