"""Scoring a CSV in chunks with `python -m tools.score_csv` (run in this process: test_quiet_start runs it as a
program)."""

from __future__ import annotations

import io
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import SAMPLE_CSV

import review_csv
from tools import score_csv
from inference import MAX_BATCH as COMPILED_BATCH  # the largest batch the serving path compiles

PROBABILITY, LABEL = review_csv.PROBABILITY_COLUMN, review_csv.LABEL_COLUMN


def keras_scores(folder: Path, texts: list[str]) -> np.ndarray:
    """P(positive) from the saved model through plain Keras, on the raw texts."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(folder, safe_mode=True)
    return model.predict(tf.constant(texts), batch_size=256, verbose=0)[:, 0]


def score(model: Path, data: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    """`python -m tools.score_csv` with these arguments, its exit status and output."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        status = score_csv.main(["--model-dir", str(model), "--data", str(data), "--out", str(out), *flags])
    return subprocess.CompletedProcess(["score_csv"], status, stdout.getvalue(), stderr.getvalue())


@pytest.mark.parametrize("rows, chunk_rows", [(250, "60"), (COMPILED_BATCH + 150, None)], ids=["chunks", "batches"])
def test_scores_are_the_models_and_keep_the_columns(tiny_model: Path, tmp_path: Path, rows: int, chunk_rows) -> None:
    """Every row as plain Keras scores it, over several chunks, or over several compiled batches in one chunk."""
    data = pd.read_csv(SAMPLE_CSV).head(rows)
    data.insert(0, "id", range(rows))
    data.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scored.csv"
    chunking = ["--chunk-rows", chunk_rows] if chunk_rows else []
    result = score(tiny_model, tmp_path / "in.csv", out, *chunking)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"scored {rows:,} rows" in result.stdout
    scored = pd.read_csv(out)
    assert list(scored.columns) == [PROBABILITY, LABEL, "id", "review", "sentiment"]
    assert scored["id"].tolist() == list(range(rows))
    np.testing.assert_allclose(scored[PROBABILITY], keras_scores(tiny_model, data["review"].tolist()), atol=1e-5)
    assert ((scored[PROBABILITY] >= review_csv.THRESHOLD) == (scored[LABEL] == "positive")).all()


def test_chunking_does_not_change_the_scores(tiny_model: Path, tmp_path: Path) -> None:
    pd.read_csv(SAMPLE_CSV).head(100).to_csv(tmp_path / "in.csv", index=False)
    outputs = []
    for chunk in ("7", "100"):
        out = tmp_path / f"out{chunk}.csv"
        result = score(tiny_model, tmp_path / "in.csv", out, "--chunk-rows", chunk)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(pd.read_csv(out)[PROBABILITY])
    pd.testing.assert_series_equal(outputs[0], outputs[1], atol=1e-5)


def test_missing_review_column_is_a_clear_error_and_writes_nothing(tiny_model: Path, tmp_path: Path) -> None:
    pd.DataFrame({"text": ["good"]}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scored.csv"
    result = score(tiny_model, tmp_path / "in.csv", out)
    assert result.returncode == 2 and "column named `review`" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_an_existing_out_is_replaced_only_with_overwrite(tiny_model: Path, tmp_path: Path) -> None:
    pd.DataFrame({"review": ["A fine film."]}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scored.csv"
    out.write_text("earlier results\n")
    refused = score(tiny_model, tmp_path / "in.csv", out)
    assert refused.returncode == 2 and "already exists" in refused.stderr and "--overwrite" in refused.stderr
    assert out.read_text() == "earlier results\n"
    replaced = score(tiny_model, tmp_path / "in.csv", out, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert list(pd.read_csv(out).columns) == [PROBABILITY, LABEL, "review"]


def test_out_is_never_the_data_file(tiny_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    pd.DataFrame({"review": ["A fine film."]}).to_csv(data, index=False)
    before = data.read_bytes()
    (tmp_path / "link.csv").symlink_to(data)
    (tmp_path / "sub").mkdir()
    for out in (data, tmp_path / "sub" / ".." / "in.csv", tmp_path / "link.csv"):
        for flags in ((), ("--overwrite",)):
            result = score(tiny_model, data, out, *flags)
            assert result.returncode == 2 and "is the --data file" in result.stderr, result.stderr[-2000:]
    assert data.read_bytes() == before


def test_blank_reviews_and_formulas_follow_the_spaces_rules(tiny_model: Path, tmp_path: Path) -> None:
    """An empty review gets no score, as on the Space; a cell a spreadsheet would run gets a leading '."""
    reviews = ["A wonderful film.", "", "\u200b\ufeff", "=HYPERLINK(\"http://x\")", " -dull"]
    pd.DataFrame({"id": ["@1", "2", "3", "4", "5"], "review": reviews}).to_csv(tmp_path / "in.csv", index=False)
    result = score(tiny_model, tmp_path / "in.csv", tmp_path / "scored.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    scored = pd.read_csv(tmp_path / "scored.csv", dtype=str, keep_default_na=False)
    assert scored["id"].tolist() == ["'@1", "2", "3", "4", "5"]
    assert scored["review"].tolist() == ["A wonderful film.", "", reviews[2], "'" + reviews[3], "' -dull"]
    assert scored[PROBABILITY].tolist()[1:3] == ["", ""] and scored[LABEL].tolist()[1:3] == ["", ""]
    expected = keras_scores(tiny_model, [reviews[0], reviews[3], reviews[4]])
    np.testing.assert_allclose(scored[PROBABILITY][[0, 3, 4]].astype(float), expected, atol=1e-5)


def test_a_row_with_an_extra_field_is_refused_not_shifted(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,review\n1,bad, really bad\n2,great\n")
    result = score(tiny_model, tmp_path / "in.csv", tmp_path / "scored.csv")
    assert result.returncode == 2 and "Line 2 has 3 fields but the header has 2" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "scored.csv").exists()
