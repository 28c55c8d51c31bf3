"""What the benchmark scripts share for their tables: the ``mean ± std`` formatter, the
per-seed paired differences, and writing a table or summary file whole or not at all."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def mean_std(values: list, scale: float = 1.0, digits: int = 4, of: int | None = None,
             signed: bool = False) -> str:
    """``mean ± std`` (sample std) of the values that exist, each times ``scale``; one value
    is marked "(1 seed)" so that a single run never reads as a mean; none at all is "–".
    ``of``: the seeds the row counts; a cell with fewer values says "(k of N seeds)", so that
    a mean over two runs never reads as one over the row's three.  ``signed``: the mean with
    its sign (a gain: +0.38)."""
    values = [v * scale for v in values if v is not None]
    if not values:
        return "–"
    form = f"{'+' if signed else ''}.{digits}f"
    if len(values) == 1:
        return f"{values[0]:{form}} (1 seed)"
    text = f"{statistics.mean(values):{form}} ± {statistics.stdev(values):.{digits}f}"
    return text + (f" ({len(values)} of {of} seeds)" if of and len(values) < of else "")


def paired_points(mine: dict, other: dict, scale: float = 100.0) -> list[float]:
    """``mine − other`` in points (×100; ``scale=1`` for raw perplexity or BLEU) for each seed
    both have, in seed order."""
    return [scale * (mine[s] - other[s]) for s in sorted(mine) if s in other]


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes: a PNG) to ``path`` with the report's atomic writer (temporary
    file, rename), so an interrupted script never leaves a half-written table; the folder is
    created if missing."""
    from advembed.report.render import write_atomic as write_bytes_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, text if isinstance(text, bytes) else text.encode("utf-8"))


def replace_block(path: Path, start: str, end: str, body: str) -> None:
    """Put ``body`` between the ``start`` and ``end`` markers of ``path`` (a README), atomically;
    a file without both markers is a one-line error."""
    text = Path(path).read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{path}: no {start} … {end} markers")
    head, rest = text.split(start, 1)
    write_atomic(path, f"{head}{start}\n{body}{end}{rest.split(end, 1)[1]}")
