"""The code stays clean of the linter and the type checker (configured in pyproject.toml):
``make test`` fails as ``make lint`` does. Both run from the virtualenv the tests run in."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT

BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    if not (BIN / tool).exists():
        pytest.fail(f"{tool} is not installed beside {sys.executable} (the [test] extra has it)")
    return subprocess.run([str(BIN / tool), *args], cwd=PROJECT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    done = run("ruff", "check", "maild", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing():
    done = run("mypy", "maild")
    assert done.returncode == 0, done.stdout + done.stderr
