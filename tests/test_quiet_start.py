"""What a CPU user sees: training, scoring and the Space start without TensorFlow's CUDA/absl lines and
without Keras' "ran out of data" warning. TF_CPP_MIN_LOG_LEVEL is left unset, as a user leaves it."""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, TINY_FLAGS, run_module, run_python

from space_support import run_tool, running_app

pytestmark = pytest.mark.slow  # each test starts a program that imports TensorFlow

# C++ log lines (absl's "I0000 00:00:..." format) and the messages users reported.
NOISE = re.compile(r"^[IWEF]\d{4} |cuInit|cudart_stub|oneDNN|absl::InitializeLog|ran out of data|does not support masking",
                   re.MULTILINE)


def as_a_user() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}


def test_training_prints_our_lines_only(tmp_path: Path) -> None:
    result = run_module("training.train", "--out", str(tmp_path / "model"), *TINY_FLAGS, env=as_a_user())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test accuracy" in result.stdout and "Epoch 2/2" in result.stdout
    assert not NOISE.findall(result.stdout + result.stderr), result.stderr[-3000:]


def test_scoring_prints_our_lines_only(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("review\nA fine film.\nDull.\n")
    result = run_tool("score_csv", "--model-dir", str(tiny_model), "--data", str(tmp_path / "in.csv"),
                      "--out", str(tmp_path / "out.csv"), env=as_a_user())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "scored 2 rows" in result.stdout
    assert not NOISE.findall(result.stdout + result.stderr), result.stderr[-3000:]


def test_space_prints_our_lines_only(tiny_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    with running_app(tiny_model, log, unset=("TF_CPP_MIN_LOG_LEVEL",)) as url:
        request = urllib.request.Request(f"{url}/gradio_api/run/probability", data=b'{"data": ["A fine film."]}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
    text = log.read_text(errors="replace")
    assert "model loaded" in text and "Running on local URL" in text
    assert not NOISE.findall(text), text[-3000:]


def test_tensorflow_warnings_after_the_quiet_import_reach_stderr(tmp_path: Path) -> None:
    """The import hides C++ lines with a temporary stderr; TensorFlow's Python logger must not keep writing to it."""
    code = "from training.quiet_tf import tf; tf.get_logger().warning('a warning from TensorFlow')"
    result = run_python(code, cwd=REPO, env=as_a_user())
    assert result.returncode == 0 and "a warning from TensorFlow" in result.stderr
    assert "closed file" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
