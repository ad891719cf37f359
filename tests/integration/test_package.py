"""The package as users get it: a wheel and an sdist built from the source tree, the wheel installed into a clean
virtualenv (dependencies from the package index), where `pygoka --version` answers with the one version that
pyproject.toml, the chart's version and appVersion, and the operator's default runtime image share."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

pytestmark = pytest.mark.timeout(900)


def run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=800)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_one_version_everywhere() -> None:
    import pygoka
    from pygoka_operator.config import OperatorConfig

    chart = yaml.safe_load((ROOT / "charts" / "pygoka-operator" / "Chart.yaml").read_text())
    assert pygoka.__version__ == VERSION
    assert chart["version"] == chart["appVersion"] == VERSION
    assert OperatorConfig().runtime_image.endswith(f":{VERSION}")
    assert f"## [{VERSION}]" in (ROOT / "CHANGELOG.md").read_text()


def test_wheel_and_sdist_install_into_a_clean_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob(f"pygoka-{VERSION}-*.whl")
    (sdist,) = dist.glob(f"pygoka-{VERSION}.tar.gz")
    files = zipfile.ZipFile(wheel).namelist()
    assert f"pygoka-{VERSION}.dist-info/licenses/LICENSE" in files
    assert {"pygoka/web/static/index.html", "pygoka/py.typed", "pygoka_operator/handlers.py"} <= set(files)
    metadata = zipfile.ZipFile(wheel).read(f"pygoka-{VERSION}.dist-info/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in metadata and "License-File: LICENSE" in metadata
    members = tarfile.open(sdist).getnames()
    assert {f"pygoka-{VERSION}/LICENSE", f"pygoka-{VERSION}/pyproject.toml"} <= set(members)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel)
    assert run(venv / "bin" / "pygoka", "--version").strip() == f"pygoka {VERSION}"
    # The installed package, not the source tree: its version comes from the installed metadata.
    where = run(venv / "bin" / "python", "-c", "import pygoka; print(pygoka.__version__, pygoka.__file__)",
                cwd=tmp_path)
    version, location = where.split()
    assert version == VERSION and location.startswith(str(venv))
