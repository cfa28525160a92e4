"""Scoring a CSV in chunks with `python -m training.score`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from conftest import run_module

from training.data import SAMPLE_CSV


def test_scores_every_row_in_chunks_and_keeps_the_columns(tiny_model: Path, tmp_path: Path) -> None:
    data = pd.read_csv(SAMPLE_CSV).head(250)
    data.insert(0, "id", range(250))
    data.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scored.csv"
    result = run_module("training.score", "--model-dir", str(tiny_model), "--data", str(tmp_path / "in.csv"),
                        "--out", str(out), "--chunk-rows", "60")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "scored 250 rows" in result.stdout
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["id", "review", "sentiment", "probability", "label"]
    assert scored["id"].tolist() == list(range(250))
    assert scored["probability"].between(0, 1).all()
    assert ((scored["probability"] >= 0.5) == (scored["label"] == "positive")).all()


def test_chunking_does_not_change_the_scores(tiny_model: Path, tmp_path: Path) -> None:
    pd.read_csv(SAMPLE_CSV).head(100).to_csv(tmp_path / "in.csv", index=False)
    outputs = []
    for chunk in ("7", "100"):
        out = tmp_path / f"out{chunk}.csv"
        result = run_module("training.score", "--model-dir", str(tiny_model), "--data", str(tmp_path / "in.csv"),
                            "--out", str(out), "--chunk-rows", chunk)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(pd.read_csv(out)["probability"])
    pd.testing.assert_series_equal(outputs[0], outputs[1], atol=1e-5)


def test_missing_review_column_is_a_clear_error_and_writes_nothing(tiny_model: Path, tmp_path: Path) -> None:
    pd.DataFrame({"text": ["good"]}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scored.csv"
    result = run_module("training.score", "--model-dir", str(tiny_model), "--data", str(tmp_path / "in.csv"),
                        "--out", str(out))
    assert result.returncode == 2 and "has no 'review' column" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
