"""CI (.ci/run) fails whenever a step fails, runs the README's test command, and fails on a skipped test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAIL_ON_SKIP, REPO

CI = REPO / ".ci" / "run"
README_TEST_COMMAND = "pip install -r requirements.txt -r tests/requirements.txt && python -m pytest -n 2"
# Stand-ins for the commands CI runs: each logs how it was called and exits with the status the test asks for.
STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $* {variable}=${variable}" >> "$STUB_LOG"
mkdir -p "$SPACE_SCREENSHOT_DIR"
status="STUB_STATUS_$(basename "$0" | tr - _)"
exit "${{!status}}"
"""


def run_ci(tmp_path: Path, **statuses: int) -> tuple[int, list[str]]:
    """.ci/run with apt-get, pip and python stubbed; returns its exit status and the stubs' calls."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ("apt-get", "pip", "python"):
        (stubs / name).write_text(STUB.format(variable=FAIL_ON_SKIP))
        (stubs / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "STUB_LOG": str(tmp_path / "calls.log"),
           "SPACE_SCREENSHOT_DIR": str(tmp_path / "screenshots"), FAIL_ON_SKIP: "",
           **{f"STUB_STATUS_{name}": str(statuses.get(name, 0)) for name in ("apt_get", "pip", "python")}}
    result = subprocess.run(["bash", str(CI)], env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, (tmp_path / "calls.log").read_text().splitlines()


def test_ci_runs_the_readme_test_command(tmp_path: Path) -> None:
    assert f"```bash\n{README_TEST_COMMAND}\n```" in (REPO / "README.md").read_text()
    status, calls = run_ci(tmp_path)
    assert status == 0
    assert calls[-2:] == [f"pip {README_TEST_COMMAND.split(' && ')[0][4:]} {FAIL_ON_SKIP}=1",
                          f"python -m pytest -n 2 {FAIL_ON_SKIP}=1"]


@pytest.mark.parametrize("failing", [{"pip": 1}, {"python": 1}, {"python": 5}, {"apt_get": 100}],
                         ids=["failed-install", "failed-test", "no-tests-collected", "failed-apt-get"])
def test_any_failing_step_fails_ci(tmp_path: Path, failing: dict[str, int]) -> None:
    status, calls = run_ci(tmp_path, **failing)
    assert status != 0
    if "pip" in failing:
        assert not any(call.startswith("python") for call in calls), "the tests ran after a failed install"


@pytest.mark.parametrize("fail_on_skip", ["", "1"])
def test_a_skipped_browser_test_fails_only_under_fail_on_skip(tmp_path: Path, fail_on_skip: str) -> None:
    env = {**os.environ, "CHROMIUM_PATH": str(tmp_path / "no-chromium"), FAIL_ON_SKIP: fail_on_skip}
    result = subprocess.run([sys.executable, "-m", "pytest", "tests/test_space_browser.py", "-p", "no:cacheprovider"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "SKIPPED [2] tests/test_space_browser.py" in result.stdout
    assert f"no Chromium at {tmp_path / 'no-chromium'}" in result.stdout
    assert result.returncode == (pytest.ExitCode.TESTS_FAILED if fail_on_skip else pytest.ExitCode.OK), result.stdout
