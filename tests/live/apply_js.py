"""The page's event applier, web/js/apply.js, run in Node for the live tests (no Python copy of it:
the tests check the code the browser runs). One `node apply_driver.mjs` process serves many histories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DRIVER = Path(__file__).with_name("apply_driver.mjs")


class NodeApplier:
    """A history in (the GET body and event frames), the state apply.js makes of it out."""

    def __init__(self, node: str) -> None:
        self.proc = subprocess.Popen([node, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def apply(self, state: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"state": state, "events": events}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the Node driver exited ({self.proc.poll()})"
        out = json.loads(line)
        assert "error" not in out, out["error"]
        return out["state"]  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


def running() -> Iterator[NodeApplier]:
    """For a fixture: the Node applier while the fixture lives. Without node the test skips locally but
    FAILS under CI=true (.ci/run installs nodejs when `node` is missing, so there it is a broken setup)."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not on PATH: this test runs web/js/apply.js in Node")
        pytest.skip("node is not on PATH (needed to run web/js/apply.js)")
    runner = NodeApplier(node)
    try:
        yield runner
    finally:
        runner.close()
