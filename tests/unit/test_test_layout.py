"""The suite's layout: pytest imports test modules by basename (rootdir-relative, no packages), so two test files
of one name in different folders stop the whole run at collection ("import file mismatch")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_names_are_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py") if ".venv" not in path.parts)
    assert [name for name, count in names.items() if count > 1] == []
