"""The benchmark script's smoke test (`--quick`) and its README update."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_module

from training import benchmark, model_folder
from training import benchmark_tables as tables


def test_quick_benchmark_prints_and_writes_the_table(quick_benchmark: tuple[Path, subprocess.CompletedProcess]) -> None:
    tmp_path, result = quick_benchmark
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / benchmark.RESULTS_JSON).read_text())
    models = [row["model"] for row in results["rows"]]
    assert models[:3] == ["`tutorial`", "`bilstm`", "`default`"]
    assert [row["key"] for row in results["rows"][3:]] == ["tfidf", "nbsvm"]
    # Each preset's row is the model in its folder; the baseline rows are the baselines those folders were
    # compared with.
    for preset, row in zip(("tutorial", "bilstm", "default"), results["rows"]):
        metrics = json.loads((tmp_path / preset / model_folder.METRICS).read_text())
        assert (row["accuracy"], row["f1"], row["ece"], row["epoch_seconds"], row["parameters"]) == (
            metrics["test"]["accuracy"], metrics["test"]["f1"], metrics["test"]["ece"],
            metrics["training"]["epoch_seconds"], metrics["model"]["parameters"])
        assert row["one_sentence_accuracy"] == metrics["test"]["one_sentence"]["accuracy"]
        for baseline in results["rows"][3:]:
            assert baseline["accuracy"] == pytest.approx(metrics["baselines"][baseline["key"]]["accuracy"])
        # Each model folder is also timed through the Space's serving path, in the Space's own process.
        assert row["space_one_line_p50_ms"] > 0 and row["space_batch_reviews_per_s"] > 0
    assert all(row["space_one_line_p50_ms"] is None for row in results["rows"][3:])
    table = (tmp_path / model_folder.BENCHMARK).read_text()
    assert table in result.stdout and table.count("\n| ") == 6  # header, three presets, two baselines
    card = (tmp_path / "default" / model_folder.CARD).read_text()
    assert table.splitlines()[-1] in card  # the default model's card quotes the table


@pytest.mark.slow
def test_an_ablation_without_unlabeled_reviews_is_refused(tmp_path: Path) -> None:
    """Its distillation row would silently be the row before it."""
    result = run_module("training.benchmark", "--quick", "--ablation", "--out", str(tmp_path / "bench"))
    assert result.returncode == 2 and "--ablation" in result.stderr and "--unlabeled" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "bench").exists()


def test_ablation_adds_each_ingredient_in_turn() -> None:
    from training.config import PRESETS

    rows = benchmark.configs(ablation=True)
    assert list(rows) == ["tutorial", "bilstm-random", "bilstm-ppmi", "bilstm", "default-summed", "default-reviews",
                          "default"]
    assert not rows["bilstm-random"].pretrain_embeddings and not rows["bilstm-random"].distill
    assert rows["bilstm-ppmi"].pretrain_embeddings and not rows["bilstm-ppmi"].distill
    assert rows["bilstm"] == PRESETS["bilstm"] and PRESETS["bilstm"].distill
    assert not rows["default-summed"].calibrate and not rows["default-summed"].sentence_weight
    assert rows["default-reviews"].calibrate and not rows["default-reviews"].sentence_weight
    assert rows["default"] == PRESETS["default"] and PRESETS["default"].sentence_weight
    assert list(benchmark.configs(ablation=False)) == ["tutorial", "bilstm", "default"]


def test_the_ablation_legend_names_the_rows_of_its_run() -> None:
    """Each row the run trained is explained, in the run's order, no other."""
    legend = tables.ablation_legend(list(benchmark.configs(ablation=True)))
    assert "`bilstm-ppmi` (embedding from PPMI word vectors)" in legend
    assert (legend.index("`bilstm-random`") < legend.index("`bilstm-ppmi`") < legend.index("`bilstm` (plus distillation")
            < legend.index("`default-summed`") < legend.index("`default` ("))
    assert tables.ablation_legend(list(benchmark.configs(ablation=False))) == ""


def test_update_readmes_replaces_only_the_marked_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The full table goes to training/README.md, the headline table to README.md; nothing else changes."""
    pages = {name: tmp_path / name for name in ("README", "TRAINING_README")}
    for name, path in pages.items():
        path.write_text(f"{name} intro\n{tables.TABLE_START}\nold table\n{tables.TABLE_END}\noutro\n")
        monkeypatch.setattr(tables, name, path)
    tables.update_readmes("| full | table |\n", "| short |\n")
    assert pages["TRAINING_README"].read_text() == (
        f"TRAINING_README intro\n{tables.TABLE_START}\n| full | table |\n{tables.TABLE_END}\noutro\n")
    assert pages["README"].read_text() == f"README intro\n{tables.TABLE_START}\n| short |\n{tables.TABLE_END}\noutro\n"


def test_the_headline_table_has_the_presets_and_baselines_with_speed_as_served() -> None:
    def row(model: str, one_line_ms: float, space_ms: float | None = None, key: str | None = None) -> dict:
        return {"model": model, "key": key, "accuracy": 0.9, "one_sentence_accuracy": 0.7, "ece": 0.01,
                "one_line_p50_ms": one_line_ms, "space_one_line_p50_ms": space_ms}

    rows = [row("`tutorial`", 10, 4), row("`bilstm-ppmi`", 10, 3), row("`default`", 10, 2),
            row("TF-IDF", 1, key="tfidf"), row("NBSVM", 2, key="nbsvm")]
    table = tables.headline(rows, "header").splitlines()[1:]
    assert [line.split(" | ")[0] for line in table[4:]] == ["| `tutorial`", "| `default`", "| TF-IDF", "| NBSVM"]
    # One-liner speed as served: the Space's latency for our models, against TF-IDF's in the same run.
    assert table[4].endswith("| 0.25× |") and table[5].endswith("| 0.50× |") and table[7].endswith("| 0.50× |")


@pytest.mark.slow
def test_a_killed_benchmarks_state_is_not_resumed(tmp_path: Path) -> None:
    """A killed run leaves its Keras backup beside the preset's folder: the next run starts clean instead of
    going on from the backup's epoch (which would put fewer epochs, and their figures, in the table)."""
    from dataclasses import replace

    from training.config import PRESETS
    from training.data import SAMPLE_CSV, load_splits
    from training.evaluate import baseline_figures, train_baselines

    config = replace(PRESETS["tutorial"], max_rows=400, vocab_size=500, sequence_length=40, embedding_dim=8,
                     lstm_units=4, dense_units=4, epochs=2)
    splits = load_splits(SAMPLE_CSV, config.test_size, config.val_size, config.seed, config.max_rows)
    backup = model_folder.training_state(tmp_path / "tutorial") / "backup"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 1, "batch": 0}))  # one epoch done
    baselines = baseline_figures(train_baselines(splits, config), splits.test)
    row = benchmark.bench_preset("tutorial", config, splits, None, baselines, tmp_path, resume=False)
    assert len(row["epoch_seconds"]) == 2
    assert json.loads((tmp_path / "tutorial" / model_folder.METRICS).read_text())["training"]["epochs_run"] == 2


def test_a_resumed_benchmark_trains_only_the_rows_left(tmp_path: Path) -> None:
    """--resume keeps the rows a killed run finished; a row trained with other settings is trained again."""
    from dataclasses import replace

    presets = list(benchmark.configs(ablation=False).items())
    trained, kill = [], [True]

    def train(name: str, config) -> dict:
        if name == "default" and kill:
            raise KeyboardInterrupt(kill.pop())  # killed once, during the third row
        trained.append(name)
        return {"model": name}

    with pytest.raises(KeyboardInterrupt):
        benchmark.trained_rows(presets, tmp_path, False, train)
    assert trained == ["tutorial", "bilstm"]
    rows = benchmark.trained_rows(presets, tmp_path, True, train)
    assert trained == ["tutorial", "bilstm", "default"] and [row["model"] for row in rows.values()] == [
        "tutorial", "bilstm", "default"]
    changed = [(name, replace(config, epochs=config.epochs + 1) if name == "bilstm" else config)
               for name, config in presets]
    benchmark.trained_rows(changed, tmp_path, True, train)
    assert trained[3:] == ["bilstm"]
    benchmark.trained_rows(presets, tmp_path, False, train)  # without --resume every row is trained
    assert trained[4:] == ["tutorial", "bilstm", "default"]


@pytest.mark.slow
def test_a_timing_worker_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    """The Space's timing worker on a folder without a model stops; the benchmark says so instead of hanging."""
    with pytest.raises(benchmark.WorkerFailed, match="timing worker on .* stopped"):
        with benchmark.space_timer(tmp_path):
            pass


def test_the_shown_command_names_files_without_their_folders(tmp_path: Path) -> None:
    """A reader has other folders: the table shows the data files by name, and not where the run wrote."""
    data = tmp_path / "reviews.csv.gz"
    data.write_bytes(b"")
    shown = benchmark.shown_command(["--data", str(data), "--out", str(tmp_path / "bench"), "--ablation"])
    assert shown == "python -m training.benchmark --data reviews.csv.gz --ablation"
