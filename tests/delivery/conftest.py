"""Fixtures of the delivery tests."""

from __future__ import annotations

import pytest

from tests.support.delivery_bench import Bench


@pytest.fixture
def benches():
    """benches(config, **kwargs) -> a delivery Bench, closed after the test."""
    made: list[Bench] = []

    def make(config, **kwargs) -> Bench:
        made.append(Bench(config, **kwargs))
        return made[-1]

    yield make
    for bench in made:
        bench.close()
