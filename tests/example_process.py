"""ExampleProcess runs one of examples/ as a subprocess for the example tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import ROOT

EXAMPLES = ROOT / "examples"


class ExampleProcess:
    """ExampleProcess runs an example script (a path, or one relative to examples/) and collects its
    output lines as they come."""

    def __init__(self, script: str | Path, args: list[str], brokers: str) -> None:
        env = {**os.environ, "PYGOKA_BROKERS": brokers, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), *args], env=env, cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        """output is everything the example printed so far."""
        return "\n".join(self.lines)

    def match(self, pattern: str) -> re.Match[str] | None:
        """match is the first output line matching pattern, if any."""
        return next((m for line in list(self.lines) if (m := re.search(pattern, line))), None)

    def wait(self, timeout: float) -> int:
        """wait waits for the example to exit by itself and returns its exit code."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"example did not exit within {timeout}s; output:\n{self.output()}")
        self._reader.join(10)
        return code

    def kill(self) -> None:
        """kill ends the example if it is still running (test teardown)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
