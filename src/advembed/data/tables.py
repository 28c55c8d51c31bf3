"""Rows of a data file or dataset as examples: reading CSV/TSV/JSONL, picking the columns,
numbering the labels, and making the train/dev/test splits that were not given.

**Files.**  ``.csv`` (comma, standard quoting), ``.tsv`` (tab, no quoting: ``csv.QUOTE_NONE``,
as GLUE needs), ``.jsonl`` and ``.json`` (one object per line, or one JSON array of objects).
Files are read as UTF-8 (a byte-order mark is ignored).

**Columns.**  Text: ``text_column``, else the first of ``text``, ``sentence``, ``sentence1``,
``premise``, ``question1`` that exists.  Second text (pair tasks): ``text_pair_column``, else the
first of ``text_pair``, ``sentence2``, ``hypothesis``, ``question2`` that exists, else none.
Label: ``label_column``, else ``label``.

**Labels.**  If every label is an integer, labels are ordered numerically, so labels ``0..K-1``
keep their values (names ``"0"``, ``"1"``, …); other integers (e.g. ``-1``/``1``) are renumbered
in numeric order.  Otherwise the label strings are sorted and numbered in that order.  JSON
``true``/``false`` labels are the classes ``False`` (0) and ``True`` (1) when every label of the
file is one of them; mixed with other labels (``0``/``1``, names) they are an error, as they
would be two more classes.  A JSON list or object as a text or label is an error.  A CSV/TSV
header that names a column twice is an error.

Errors name the file, the line (the physical line, header = line 1) and the bad value.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advembed.data.base import Example, TextDataset
from advembed.data.splits import split_off_dev, split_three
from advembed.errors import AdvembedError

TEXT_COLUMNS = ("text", "sentence", "sentence1", "premise", "question1")
PAIR_COLUMNS = ("text_pair", "sentence2", "hypothesis", "question2")
LABEL_COLUMN = "label"
SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents exceed the 128 KiB default
_INT = re.compile(r"[+-]?\d+")


@dataclass
class Table:
    """Rows read from one source, with where each row came from (for error messages)."""

    source: str
    columns: list[str]
    rows: list[dict[str, Any]]
    where: list[str]
    dropped: int = 0
    """Rows left out because their field count differs from the header (GLUE only)."""


@dataclass(frozen=True)
class Columns:
    """Which columns hold the text, the optional second text and the label."""

    text: str
    pair: str | None
    label: str


# --- reading -------------------------------------------------------------------------------


def open_text(path: Path):  # noqa: ANN202 - a text file object
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise AdvembedError(f"cannot read {path}: {exc.strerror}") from None


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a byte-order mark dropped); a byte that is not UTF-8 is an error
    naming its line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AdvembedError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # exc.object: the bytes after a byte-order mark
        line = exc.object[:exc.start].count(b"\n") + 1
        raise AdvembedError(f"{path} line {line} is not UTF-8 (byte "
                            f"0x{exc.object[exc.start]:02x}); save the file as UTF-8") from None


_FIELD_HINT = {",": "a comma inside a text must be quoted: \"like, this\"",
               "\t": "a tab inside a text: TSV fields cannot hold tabs (use CSV with quotes)"}


def read_delimited(path: Path, delimiter: str, header: Sequence[str] | None = None, *,
                   strict: bool = True) -> Table:
    """Rows of a CSV (comma, standard quoting) or TSV (tab, no quoting) file.

    Every row must have as many fields as the header: a row with more or fewer is an error
    naming the file and line (``strict``), or is dropped and counted (``strict=False``, for
    GLUE files, as the GLUE loaders do)."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter,
                        quoting=quoting)
    rows, where, dropped = [], [], 0
    columns = list(header) if header is not None else None
    try:
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            if not fields:  # a blank line
                continue
            if columns is None:
                columns = _header(path, start, fields)
                continue
            if len(fields) != len(columns):
                if strict:
                    raise AdvembedError(
                        f"{path} line {start} has {len(fields)} field"
                        f"{'s' if len(fields) != 1 else ''} but the header has {len(columns)} "
                        f"({_FIELD_HINT[delimiter]})")
                dropped += 1
                continue
            rows.append(dict(zip(columns, fields, strict=True)))
            where.append(f"line {start}")
    except csv.Error as exc:
        raise AdvembedError(f"cannot parse {path} line {reader.line_num}: {exc}") from None
    return Table(str(path), columns or [], rows, where, dropped)


def _header(path: Path, line: int, fields: list[str]) -> list[str]:
    """The header's column names; a name given twice is an error (a row would keep only the
    last of its fields)."""
    seen = set()
    for name in fields:
        if name in seen:
            raise AdvembedError(f"{path} line {line}: column '{name}' appears twice in the "
                                "header")
        seen.add(name)
    return fields


def _read_json(path: Path) -> Table:
    content = read_text(path)
    if content.lstrip().startswith("["):
        return _json_array(path, content)
    rows, where = [], []
    # "\n" only: str.splitlines also breaks at U+2028/U+2029/U+0085, which JSON written with
    # ensure_ascii=False leaves unescaped inside strings
    for number, line in enumerate(content.split("\n"), start=1):
        if line.strip():
            rows.append(_json_object(path, line, f"line {number}"))
            where.append(f"line {number}")
    return Table(str(path), _union_keys(rows), rows, where)


def _json_object(path: Path, line: str, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AdvembedError(f"{path} {where} is not valid JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise AdvembedError(f"{path} {where} is not a JSON object")
    return obj


def _json_array(path: Path, content: str) -> Table:
    try:
        items = json.loads(content)
    except json.JSONDecodeError as exc:
        raise AdvembedError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not all(isinstance(item, dict) for item in items):
        raise AdvembedError(f"{path} must hold JSON objects, one per example")
    where = [f"item {i}" for i in range(1, len(items) + 1)]
    return Table(str(path), _union_keys(items), items, where)


def _union_keys(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def read_table(path: Path) -> Table:
    """Read a ``.csv``, ``.tsv``, ``.jsonl`` or ``.json`` file; an empty file is an error."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_delimited(path, ",")
    elif suffix == ".tsv":
        table = read_delimited(path, "\t")
    elif suffix in {".jsonl", ".json"}:
        table = _read_json(path)
    else:
        raise AdvembedError(
            f"unsupported file type '{path.suffix}' for {path}; use {', '.join(SUFFIXES)}"
        )
    if not table.rows:
        raise AdvembedError(f"{path} has no examples")
    return table


# --- rows to examples ----------------------------------------------------------------------


def _available(table: Table) -> str:
    return ", ".join(repr(c) for c in table.columns) or "none"


def _require(table: Table, column: str, role: str) -> str:
    if column not in table.columns:
        raise AdvembedError(
            f"{table.source} has no {role} column '{column}'; "
            f"available columns: {_available(table)}"
        )
    return column


def resolve_columns(table: Table, text: str | None, pair: str | None, label: str | None) -> Columns:
    """Pick the text/pair/label columns: the ones named, else the defaults (module docstring)."""
    if text is None:
        text = next((c for c in TEXT_COLUMNS if c in table.columns), None)
        if text is None:
            raise AdvembedError(
                f"{table.source} has no text column (looked for {', '.join(TEXT_COLUMNS)}); "
                f"available columns: {_available(table)}"
            )
    _require(table, text, "text")
    if pair is None:
        pair = next((c for c in PAIR_COLUMNS if c in table.columns and c != text), None)
    else:
        _require(table, pair, "text-pair")
    label = _require(table, LABEL_COLUMN if label is None else label, "label")
    roles = [("text", text), ("text-pair", pair), ("label", label)]
    for i, (role, column) in enumerate(roles):
        other = next((r for r, c in roles[i + 1:] if c is not None and c == column), None)
        if column is not None and other is not None:
            raise AdvembedError(f"{table.source}: column '{column}' is given as both the {role} "
                                f"and the {other} column")
    return Columns(text, pair, label)


def label_string(value: Any) -> str | None:
    """A label value as a string: integers (also 1.0 from JSON) as digits, ``None`` if empty
    (a JSON ``NaN`` included: it is a missing value, not a class named "nan")."""
    if value is None or _not_finite(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if _INT.fullmatch(text):
        return str(int(text))
    return text or None


def _not_finite(value: Any) -> bool:
    """A float ``NaN`` or infinity (JSON's ``NaN``, pandas' missing cell)."""
    return isinstance(value, float) and not math.isfinite(value)


def label_vocabulary(labels: Sequence[str]) -> list[str]:
    """Label names in index order: numeric order if all are integers, else sorted strings."""
    unique = set(labels)
    if all(_INT.fullmatch(label) for label in unique):
        return [str(v) for v in sorted(int(label) for label in unique)]
    return sorted(unique)


def _cell(table: Table, i: int, column: str, role: str) -> str:
    value = table.rows[i].get(column)
    _refuse_nested(table, i, column, value, role)
    text = "" if value is None or _not_finite(value) else str(value).strip()
    if not text:
        raise AdvembedError(f"{table.source} {table.where[i]}: empty {role} in column '{column}'"
                            + (" (NaN)" if _not_finite(value) else ""))
    return text


def _refuse_nested(table: Table, i: int, column: str, value: Any, role: str) -> None:
    """A JSON list or object where a text or label belongs is an error naming the row (it
    would otherwise be read as its Python spelling, ``"['a', 'b']"``)."""
    if isinstance(value, list | dict):
        kind = "list" if isinstance(value, list) else "JSON object"
        raise AdvembedError(f"{table.source} {table.where[i]}: column '{column}' holds a "
                            f"{kind}, not a {role}")


def _refuse_mixed_booleans(table: Table, column: str) -> None:
    """JSON ``true``/``false`` labels mixed with other labels (``0``/``1``, names) are an
    error naming the first row of the minority kind: ``true`` and ``1`` would be two classes."""
    kinds = [isinstance(row.get(column), bool) for row in table.rows]
    if all(kinds) or not any(kinds):
        return
    odd = kinds.index(not kinds[0])
    shown = [json.dumps(table.rows[i].get(column), ensure_ascii=False, default=str)
             for i in (odd, 0)]
    raise AdvembedError(
        f"{table.source} {table.where[odd]}: label {shown[0]} in column '{column}' mixes JSON "
        f"true/false with other labels ({table.where[0]} has {shown[1]}); write every label "
        "as true/false or none of them")


def raw_labels(table: Table, column: str) -> list[str]:
    """Every row's label as a string; an empty label, a list or object, or true/false mixed
    with other labels is an error naming the row."""
    _refuse_mixed_booleans(table, column)
    labels = []
    for i, row in enumerate(table.rows):
        _refuse_nested(table, i, column, row.get(column), "label")
        label = label_string(row.get(column))
        if label is None:
            raise AdvembedError(
                f"{table.source} {table.where[i]}: empty label in column '{column}'"
            )
        labels.append(label)
    return labels


def to_examples(table: Table, cols: Columns, mapping: dict[str, int]) -> list[Example]:
    """Turn rows into examples; a label missing from ``mapping`` is an error naming the row."""
    examples = []
    for i, label in enumerate(raw_labels(table, cols.label)):
        if label not in mapping:
            raise AdvembedError(
                f"{table.source} {table.where[i]}: unknown label '{label}' "
                f"(known labels: {', '.join(mapping)})"
            )
        text = _cell(table, i, cols.text, "text")
        pair = _cell(table, i, cols.pair, "text pair") if cols.pair else None
        examples.append(Example(text, mapping[label], pair))
    return examples


def assemble(
    name: str,
    label_names: list[str],
    parts: dict[str, list[Example]],
    seed: int,
    description: str = "",
    source: str | None = None,
) -> TextDataset:
    """Make train/dev/test from whichever of them were given (rules in the module docstring);
    ``source`` (the file read) names the data in errors, else ``name``."""
    train, dev, test = parts["train"], parts.get("dev"), parts.get("test")
    if dev is None and test is None:
        return TextDataset(name, label_names, split_three(train, seed, f"'{source or name}'"),
                           description)
    if test is None:
        test, dev = dev, None
    if dev is None:
        train, dev = split_off_dev(train, seed, f"{name} training data")
    splits = {"train": list(train), "dev": dev, "test": test}
    return TextDataset(name, label_names, splits, description)
