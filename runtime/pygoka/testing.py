"""pytest plugin: a `tester` fixture (pygoka.tester.Tester) that is closed after each test.

Enable it with `pytest_plugins = ["pygoka.testing"]` in a test module or the root conftest.py. The
fixture has one partition per topic; parametrize it indirectly for more:

    @pytest.mark.parametrize("tester", [1, 8], indirect=True)
    def test_counts(tester: Tester) -> None: ...

Closing the tester at teardown fails the test with any processor or view error no tester call raised.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pygoka.tester import Tester

__all__ = ["tester"]


@pytest.fixture
def tester(request: pytest.FixtureRequest) -> Iterator[Tester]:
    """tester is an in-memory Kafka for processors, views and emitters built with tester=tester."""
    partitions = getattr(request, "param", 1)
    tt = Tester(partitions=partitions)
    try:
        yield tt
    finally:
        tt.close()
