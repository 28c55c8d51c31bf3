"""Mean ± standard deviation over seeds, and reading nested results safely."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

MISSING = "—"


def finite(values: Sequence[Any]) -> list[float]:
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out.append(float(value))
    return out


def mean_std(values: Sequence[Any]) -> tuple[float, float | None] | None:
    """Mean and sample standard deviation (n−1) of the finite values; std is None for one."""
    numbers = finite(values)
    if not numbers:
        return None
    if len(numbers) == 1:
        return numbers[0], None
    return statistics.fmean(numbers), statistics.stdev(numbers)


def format_mean_std(values: Sequence[Any], digits: int = 4) -> str:
    """``mean ± std`` over one value per seed (or just the value for one seed, ``—`` for
    none); where only some seeds have the figure, ``(k of N seeds)`` follows, so that a
    one-run figure in an N-seed row never reads as the row's mean."""
    stats = mean_std(values)
    if stats is None:
        return MISSING
    mean, std = stats
    text = f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"
    have = len(finite(values))
    return text if have == len(values) else f"{text} ({have} of {len(values)} seeds)"


def dig(payload: dict[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload
