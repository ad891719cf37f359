"""Builds the other systems of bench/compare.py once per source version, cached like tests/compat/gobuild.py.

Everything lands in ${PYGOKA_CACHE:-~/.cache/pygoka}/bench/<system>/<hash of its sources>/, so a changed
program is rebuilt and an unchanged one is reused across runs (CI starts empty and builds inside the run):

- goka:     `go build` of bench/systems/goka (lovoo/goka, IBM/sarama pinned in go.mod, from the Go module proxy);
- kstreams: `mvn -B -q package` of bench/systems/kstreams (Kafka Streams from Maven Central) into one jar;
- quix:     a virtualenv with bench/systems/quix/requirements.txt (Quix Streams from PyPI).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SYSTEMS_DIR = Path(__file__).resolve().parent
BUILD_TIMEOUT = 900.0


class BuildError(RuntimeError):
    """BuildError is a failed build (or a missing toolchain), with the tool's output."""


def cache_root() -> Path:
    """cache_root is $PYGOKA_CACHE, or ~/.cache/pygoka."""
    configured = os.environ.get("PYGOKA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "pygoka"


def source_hash(root: Path, files: list[str]) -> str:
    """source_hash identifies a program's source: a digest of the named files under root."""
    digest = hashlib.sha256()
    for name in files:
        content = (root / name).read_bytes()
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:16]


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                                check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{command[0]} did not finish within {BUILD_TIMEOUT:.0f}s") from exc
    if result.returncode != 0:
        raise BuildError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _cached(system: str, files: list[str], product: str, make: Callable[[Path], None]) -> Path:
    """_cached returns <cache>/bench/<system>/<hash>/<product>, running make(partial dir) under a lock first."""
    source = SYSTEMS_DIR / system
    target_dir = cache_root() / "bench" / system / source_hash(source, files)
    target = target_dir / product
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    # Another run may be building the same source right now: wait for it instead of racing.
    with open(target_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        partial = target_dir / f"partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        started = time.monotonic()
        try:
            make(partial)
            os.replace(partial / product, target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        seconds = time.monotonic() - started
        (target_dir / "build-seconds.txt").write_text(f"{seconds:.1f}\n")
        print(f"built {target} in {seconds:.1f}s", file=sys.stderr)
    return target


def build_goka() -> Path:
    """build_goka returns the Go Goka benchmark program, building it first if needed."""
    go = shutil.which("go")
    if go is None:
        raise BuildError("the Go toolchain ('go') is not on PATH")

    def make(out: Path) -> None:
        env = dict(os.environ, GOFLAGS="-mod=mod -buildvcs=false", GOWORK="off")
        _run([go, "build", "-trimpath", "-o", str(out / "gokabench"), "."], SYSTEMS_DIR / "goka", env)

    return _cached("goka", ["go.mod", "go.sum", "main.go"], "gokabench", make)


def build_kstreams() -> Path:
    """build_kstreams returns the Kafka Streams benchmark jar, building it with Maven first if needed."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BuildError("Maven ('mvn') is not on PATH")
    java_source = "src/main/java/bench/KStreamsBench.java"

    def make(out: Path) -> None:
        # Maven writes target/ next to the pom: build in a copy so the repository stays clean.
        work = out / "src-copy"
        shutil.copytree(SYSTEMS_DIR / "kstreams", work, ignore=shutil.ignore_patterns("target"))
        _run([mvn, "-B", "-q", "package", "-DskipTests"], work)
        shutil.copy(work / "target" / "kstreams-bench.jar", out / "kstreams-bench.jar")

    return _cached("kstreams", ["pom.xml", java_source], "kstreams-bench.jar", make)


def build_quix() -> Path:
    """build_quix returns the python of a virtualenv with Quix Streams, creating it first if needed."""

    # The venv's scripts name their own path, so it must be built where it stays: only the marker moves.
    venv_dir = cache_root() / "bench" / "quix" / source_hash(SYSTEMS_DIR / "quix", ["requirements.txt"]) / "venv"

    def make_in_place(out: Path) -> None:
        shutil.rmtree(venv_dir, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv_dir)], out)
        _run([str(venv_dir / "bin" / "pip"), "install", "-q", "-r", str(SYSTEMS_DIR / "quix" / "requirements.txt")],
             out)
        (out / "ready").write_text(str(venv_dir) + "\n")

    _cached("quix", ["requirements.txt"], "ready", make_in_place)
    return venv_dir / "bin" / "python"


BUILDERS: dict[str, Callable[[], Path]] = {"goka": build_goka, "kstreams": build_kstreams, "quix": build_quix}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(BUILDERS):
        print(BUILDERS[name]())
