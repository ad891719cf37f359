"""Processor instances in separate processes (tests/proc_main.py), for multi-instance tests (B16, B18, B23)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import FAST_REBALANCE

PROC_MAIN = Path(__file__).resolve().parent / "proc_main.py"


class ProcError(AssertionError):
    """ProcError is a child that failed or a status that did not come; it carries the child's log tail."""


class Proc:
    """Proc is one processor instance running `python tests/proc_main.py spec.json` in its own process."""

    def __init__(self, name: str, workdir: Path, *, brokers: str, group: str, inputs: list[str],
                 state_dir: Path, keys: list[str] | None = None, join: str | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.status_path = workdir / f"{name}.status.json"
        self.log_path = workdir / f"{name}.log"
        self.spec_path = workdir / f"{name}.spec.json"
        opts = {"consumer_config": dict(FAST_REBALANCE), "commit_interval": 0.2, **(options or {})}
        self.spec = {
            "brokers": brokers, "group": group, "inputs": inputs, "join": join, "keys": keys or [],
            "state_dir": str(state_dir), "status": str(self.status_path), "options": opts,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        """start launches the child; its output goes to <name>.log."""
        self.status_path.unlink(missing_ok=True)
        self.spec_path.write_text(json.dumps(self.spec))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, str(PROC_MAIN), str(self.spec_path)],
                                            stdout=log, stderr=subprocess.STDOUT)
        return self

    def status(self) -> dict[str, Any]:
        """status is the child's last report ({} before the first); a child that died fails the test."""
        try:
            status: dict[str, Any] = json.loads(self.status_path.read_text())
        except FileNotFoundError:
            status = {}
        if status.get("error"):
            raise ProcError(f"{self.name} failed: {status['error']}\n{self.log_tail()}")
        if self.process is not None and self.process.poll() is not None and status.get("running", True):
            raise ProcError(f"{self.name} exited with {self.process.returncode}\n{self.log_tail()}")
        return status

    def active(self) -> set[int]:
        """active are the partitions the child processes now."""
        return set(self.status().get("active", []))

    def values(self) -> dict[str, Any]:
        """values are the group table values of the requested keys whose partitions the child holds."""
        values: dict[str, Any] = self.status().get("values", {})
        return values

    def wait(self, condition: Callable[[dict[str, Any]], Any], timeout: float = 60.0,
             message: str = "status") -> dict[str, Any]:
        """wait polls the status until condition holds, failing with the child's log tail after timeout."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status()
            if status and condition(status):
                return status
            time.sleep(0.1)
        raise ProcError(f"{self.name}: timed out after {timeout}s waiting for {message}; last status "
                        f"{json.dumps(status)[:2000]}\n{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> int:
        """stop sends SIGTERM (a clean stop: commit, leave the group) and waits; it returns the exit code."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """kill ends the child with SIGKILL, leaving its partitions to the session timeout."""
        return self._signal(signal.SIGKILL, 30.0)

    def _signal(self, sig: signal.Signals, timeout: float) -> int:
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            os.kill(process.pid, sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise ProcError(f"{self.name} did not stop within {timeout}s\n{self.log_tail()}") from None

    def alive(self) -> bool:
        """alive tells whether the child is still running."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """log_tail is the end of the child's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return f"({self.name}: no log)"
        return f"---- last lines of {self.log_path} ----\n" + "\n".join(text[-lines:])
