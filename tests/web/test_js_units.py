"""The page's DOM-free modules under Node's test runner (tests/web/js/*.test.mjs)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import ROOT


def test_node_unit_tests_of_the_page_modules_pass() -> None:
    """sync.js, the word diff and the other DOM-free modules pass their `node --test` suites."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    files = sorted(str(p) for p in (ROOT / "tests" / "web" / "js").glob("*.test.mjs"))
    done = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
