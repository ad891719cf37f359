"""Builds the Go Goka program of tests/compat/gogoka once per source version (compatibility section).

The binary lands in ${PYGOKA_CACHE:-~/.cache/pygoka}/gogoka/<hash of go.mod, go.sum, main.go>/gogoka, so
a changed program is rebuilt and an unchanged one is reused across test runs. Modules come from the Go
module proxy (GOPROXY as configured); nothing is written into the repository.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "gogoka"
SOURCE_FILES = ("go.mod", "go.sum", "main.go")
BUILD_TIMEOUT = 900.0


class GoBuildError(RuntimeError):
    """GoBuildError is a failed `go build` (or a missing Go toolchain), with go's output."""


def cache_root() -> Path:
    """cache_root is $PYGOKA_CACHE, or ~/.cache/pygoka."""
    configured = os.environ.get("PYGOKA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "pygoka"


def source_hash() -> str:
    """source_hash identifies the program's source: a digest of its module files and main.go."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        content = (SOURCE / name).read_bytes()
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:16]


def binary_path() -> Path:
    """binary_path is where the program of the current source is (or will be) built."""
    return cache_root() / "gogoka" / source_hash() / "gogoka"


def build() -> Path:
    """build returns the path of the built program, running `go build` first if it is not cached."""
    target = binary_path()
    if target.is_file():
        return target
    go = shutil.which("go")
    if go is None:
        raise GoBuildError("the Go toolchain ('go') is not on PATH; the Go Goka compatibility tests need it")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Another test run may be building the same source right now: wait for it instead of racing.
    with open(target.parent / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        partial = target.with_name(f"gogoka.partial-{os.getpid()}")
        env = dict(os.environ)
        # -mod=mod lets go resolve modules from go.mod/go.sum without a vendor directory;
        # -buildvcs=false keeps it from shelling out to git for the surrounding repository.
        env["GOFLAGS"] = "-mod=mod -buildvcs=false"
        env["GOWORK"] = "off"
        started = time.monotonic()
        try:
            result = subprocess.run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=SOURCE, env=env,
                                    capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise GoBuildError(f"go build did not finish within {BUILD_TIMEOUT:.0f}s") from exc
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise GoBuildError(f"go build failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        os.replace(partial, target)
        seconds = time.monotonic() - started
        (target.parent / "build-seconds.txt").write_text(f"{seconds:.1f}\n")
        print(f"built {target} in {seconds:.1f}s", file=sys.stderr)
    return target


if __name__ == "__main__":
    print(build())
