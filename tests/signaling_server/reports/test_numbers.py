"""Numbers in report text keep their side of every threshold (reports/numbers.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from signaling_server.reports.numbers import shown


def test_plain_values_are_short() -> None:
    assert [shown(180.0, decimals=1), shown(1.25, decimals=3, least=1), shown(1.0, least=1), shown(0.0)] == [
        "180",
        "1.25",
        "1.0",
        "0",
    ]


def test_more_places_when_rounding_would_cross() -> None:
    assert shown(1.4999, (1.5,), decimals=1) == "1.4999"
    assert shown(4.0018, (2.0, 4.0)) == "4.002"
    assert shown(124.96, (125.0,), decimals=1) == "124.96"
    assert shown(3.996, (4.0,)) == "3.996"


@given(st.floats(0, 1000, allow_nan=False), st.lists(st.floats(0, 1000, allow_nan=False), max_size=4))
def test_the_written_value_is_on_the_same_side_of_every_threshold(value: float, thresholds: list[float]) -> None:
    written = float(shown(value, thresholds, decimals=1))
    for t in thresholds:
        assert (written < t) == (value < t) and (written > t) == (value > t)
