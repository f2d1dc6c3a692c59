"""Numbers in report text, written so that they never round across a clinical threshold.

`shown(1.4999, (1.5,))` is "1.4999", not "1.5": a reader who sees "1.5 mm" next to "thickened" or "plaque ≥ 1.5 mm"
would read the opposite of what the rule decided. A value is written with `decimals` places (at least `least`
decimals, trailing zeros dropped beyond that) and more places are added until the written value falls on the same
side of every threshold as the value itself (for <, = and >), up to the float's own shortest form.
"""

from __future__ import annotations

from collections.abc import Iterable


def _side(value: float, threshold: float) -> int:
    return (value > threshold) - (value < threshold)


def _written(value: float, places: int, least: int) -> str:
    text = f"{value:.{places}f}"
    if places > least and "." in text:
        text = text.rstrip("0")
        whole, _, fraction = text.partition(".")
        text = f"{whole}.{fraction.ljust(least, '0')}" if least else text.rstrip(".")
    return text


def shown(value: float, thresholds: Iterable[float] = (), *, decimals: int = 2, least: int = 0) -> str:
    """`value` as text with up to `decimals` places (more if needed to keep its side of each threshold)."""
    limits = tuple(thresholds)
    for places in range(max(decimals, least), 16):
        text = _written(value, places, least)
        if all(_side(float(text), t) == _side(value, t) for t in limits):
            return text
    return repr(value)
