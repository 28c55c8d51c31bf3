"""What the benchmark scripts share for their tables: the ``mean ± std`` formatter and the
per-seed paired differences."""

from __future__ import annotations

import statistics


def mean_std(values: list, scale: float = 1.0, digits: int = 4) -> str:
    """``mean ± std`` (sample std) of the values that exist, each times ``scale``; one value
    is marked "(1 seed)" so that a single run never reads as a mean; none at all is "–"."""
    values = [v * scale for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1 seed)"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def paired_points(mine: dict, other: dict) -> list[float]:
    """``mine − other`` in points (×100) for each seed both have, in seed order."""
    return [100 * (mine[s] - other[s]) for s in sorted(mine) if s in other]
