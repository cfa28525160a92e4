"""The benchmark script's smoke test (`--quick`) and its README update."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_module

from training import benchmark, model_folder


def test_quick_benchmark_prints_and_writes_the_table(tmp_path: Path) -> None:
    result = run_module("training.benchmark", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / benchmark.RESULTS_JSON).read_text())
    models = [row["model"] for row in results["rows"]]
    assert models[:3] == ["`seed`", "`bilstm`", "`default`"]
    assert [row["key"] for row in results["rows"][3:]] == ["tfidf", "nbsvm"]
    # Each preset's row is the model in its folder; the baseline rows are the baselines those folders were
    # compared with.
    for preset, row in zip(("seed", "bilstm", "default"), results["rows"]):
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


def test_an_ablation_without_unlabeled_reviews_is_refused(tmp_path: Path) -> None:
    """Its distillation row would silently be the row before it."""
    result = run_module("training.benchmark", "--quick", "--ablation", "--out", str(tmp_path / "bench"))
    assert result.returncode == 2 and "--ablation" in result.stderr and "--unlabeled" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "bench").exists()


def test_ablation_adds_each_ingredient_in_turn() -> None:
    from training.config import PRESETS

    plain = benchmark.configs("", ablation=True)
    assert list(plain) == ["seed", "bilstm-random", "bilstm-ppmi", "bilstm", "default-summed", "default"]
    assert not plain["bilstm-random"].pretrain_embeddings and not plain["bilstm-random"].distill
    assert plain["bilstm-ppmi"].pretrain_embeddings and not plain["bilstm-ppmi"].distill
    assert plain["bilstm"] == PRESETS["bilstm"] and PRESETS["bilstm"].distill
    assert not plain["default-summed"].calibrate and plain["default"] == PRESETS["default"]
    pretrained = benchmark.configs("encoders/lm", ablation=True)
    assert list(pretrained) == ["seed", "bilstm-random", "bilstm-ppmi", "bilstm-encoder", "bilstm", "default-summed",
                                "default"]
    assert pretrained["bilstm-ppmi"] == plain["bilstm-ppmi"] and pretrained["seed"] == PRESETS["seed"]
    assert not pretrained["bilstm-encoder"].distill and pretrained["bilstm"].distill
    for name in ("bilstm-encoder", "bilstm", "default-summed", "default"):
        assert pretrained[name].encoder == "encoders/lm" and not pretrained[name].pretrain_embeddings
    assert list(benchmark.configs("encoders/lm", ablation=False)) == ["seed", "bilstm", "default"]


def test_the_ablation_legend_names_the_rows_of_its_run() -> None:
    """Each row the run trained is explained, in the run's order, no other."""
    plain = benchmark.ablation_legend(list(benchmark.configs("", ablation=True)))
    assert "`bilstm-ppmi` (embedding from PPMI word vectors)" in plain and "bilstm-encoder" not in plain
    assert (plain.index("`bilstm-random`") < plain.index("`bilstm-ppmi`") < plain.index("`bilstm` (plus distillation")
            < plain.index("`default-summed`") < plain.index("`default` ("))
    pretrained = benchmark.ablation_legend(list(benchmark.configs("encoders/lm", ablation=True)))
    assert plain.replace("), `bilstm` (", f"), `bilstm-encoder` ({benchmark.ABLATION_STEPS['bilstm-encoder']}), "
                         "`bilstm` (") == pretrained
    assert benchmark.ablation_legend(list(benchmark.configs("", ablation=False))) == ""


def test_update_readme_replaces_only_the_marked_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{benchmark.TABLE_START}\nold table\n{benchmark.TABLE_END}\noutro\n")
    monkeypatch.setattr(benchmark, "README", readme)
    benchmark.update_readme("| new | table |\n")
    assert readme.read_text() == f"intro\n{benchmark.TABLE_START}\n| new | table |\n{benchmark.TABLE_END}\noutro\n"


def test_a_killed_benchmarks_state_is_not_resumed(tmp_path: Path) -> None:
    """A killed run leaves its Keras backup beside the preset's folder: the next run starts clean instead of
    going on from the backup's epoch (which would put fewer epochs, and their figures, in the table)."""
    from dataclasses import replace

    from training.config import PRESETS
    from training.data import SAMPLE_CSV, load_splits
    from training.fit import baseline_figures, train_baselines

    config = replace(PRESETS["seed"], max_rows=400, vocab_size=500, sequence_length=40, embedding_dim=8,
                     lstm_units=4, dense_units=4, epochs=2)
    splits = load_splits(SAMPLE_CSV, config.test_size, config.val_size, config.seed, config.max_rows)
    backup = model_folder.training_state(tmp_path / "seed") / "backup"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 1, "batch": 0}))  # one epoch done
    baselines = baseline_figures(train_baselines(splits, config), splits.test)
    row, _ = benchmark.bench_preset("seed", config, splits, None, baselines, tmp_path)
    assert len(row["epoch_seconds"]) == 2
    assert json.loads((tmp_path / "seed" / model_folder.METRICS).read_text())["training"]["epochs_run"] == 2


def test_a_timing_worker_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    """The Space's timing worker on a folder without a model stops; the benchmark says so instead of hanging."""
    with pytest.raises(benchmark.WorkerFailed, match="timing worker on .* stopped"):
        with benchmark.space_timer(tmp_path):
            pass
