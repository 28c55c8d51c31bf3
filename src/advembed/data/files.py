"""Loaders for the user's own data: CSV/TSV/JSONL files, GLUE task folders, Hugging Face datasets.

**Files.**  ``.csv`` (comma, standard quoting), ``.tsv`` (tab, no quoting: ``csv.QUOTE_NONE``,
as GLUE needs), ``.jsonl`` and ``.json`` (one object per line, or one JSON array of objects).
Files are read as UTF-8 (a byte-order mark is ignored).

* One file: deduplicated and split 80/10/10 (seeded, stratified).
* A folder: ``train.*``, and optionally ``dev.*`` (or ``validation.*``/``valid.*``) and
  ``test.*``.  Missing splits are made as follows: no dev and no test → train is split 80/10/10;
  dev but no test → dev becomes the test set and 10 % of train is held out as dev; test but no
  dev → 10 % of train is held out as dev.  Given splits are used as they are.

**Columns.**  Text: ``text_column``, else the first of ``text``, ``sentence``, ``sentence1``,
``premise``, ``question1`` that exists.  Second text (pair tasks): ``text_pair_column``, else the
first of ``text_pair``, ``sentence2``, ``hypothesis``, ``question2`` that exists, else none.
Label: ``label_column``, else ``label``.

**Labels.**  If every label is an integer, labels are ordered numerically, so labels ``0..K-1``
keep their values (names ``"0"``, ``"1"``, …); other integers (e.g. ``-1``/``1``) are renumbered
in numeric order.  Otherwise the label strings are sorted and numbered in that order.  In a folder
the labels come from the training file; a dev/test label not seen in training is an error.

**GLUE.**  ``train.tsv`` and ``dev.tsv`` (``dev_matched.tsv`` for MNLI) of SST-2, CoLA, MRPC,
QQP, MNLI, QNLI and RTE, recognised from the folder name or the header.  GLUE's ``test.tsv`` has
no labels, so the GLUE dev set is used as our test set and 10 % of train (seeded, stratified) is
held out as dev.  Label names and numbering follow the Hugging Face ``glue`` dataset.

Errors name the file, the line (the physical line, header = line 1) and the bad value.
"""

from __future__ import annotations

import csv
import json
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
SPLIT_FILE_STEMS = {"train": ("train",), "dev": ("dev", "validation", "valid"), "test": ("test",)}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents exceed the 128 KiB default
_INT = re.compile(r"[+-]?\d+")


@dataclass
class Table:
    """Rows read from one source, with where each row came from (for error messages)."""

    source: str
    columns: list[str]
    rows: list[dict[str, Any]]
    where: list[str]


@dataclass(frozen=True)
class Columns:
    """Which columns hold the text, the optional second text and the label."""

    text: str
    pair: str | None
    label: str


# --- reading -------------------------------------------------------------------------------


def _open_text(path: Path):  # noqa: ANN202 - a text file object
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise AdvembedError(f"cannot read {path}: {exc.strerror}") from None


def _read_delimited(path: Path, delimiter: str, header: Sequence[str] | None = None) -> Table:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows, where = [], []
    with _open_text(path) as fh:
        reader = csv.DictReader(fh, fieldnames=header, delimiter=delimiter, quoting=quoting)
        try:
            for row in reader:
                rows.append(row)
                where.append(f"line {reader.line_num}")
            columns = [c for c in (reader.fieldnames or []) if c is not None]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AdvembedError(f"cannot parse {path} near line {reader.line_num}: {exc}") from None
    return Table(str(path), columns, rows, where)


def _read_json(path: Path) -> Table:
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AdvembedError(f"cannot read {path}: {exc}") from None
    if content.lstrip().startswith("["):
        return _json_array(path, content)
    rows, where = [], []
    for number, line in enumerate(content.splitlines(), start=1):
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
        table = _read_delimited(path, ",")
    elif suffix == ".tsv":
        table = _read_delimited(path, "\t")
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
    return Columns(text, pair, _require(table, label or LABEL_COLUMN, "label"))


def _label_string(value: Any) -> str | None:
    """A label value as a string: integers (also 1.0 from JSON) as digits, ``None`` if empty."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if _INT.fullmatch(text):
        return str(int(text))
    return text or None


def label_vocabulary(labels: Sequence[str]) -> list[str]:
    """Label names in index order: numeric order if all are integers, else sorted strings."""
    unique = set(labels)
    if all(_INT.fullmatch(label) for label in unique):
        return [str(v) for v in sorted(int(label) for label in unique)]
    return sorted(unique)


def _cell(table: Table, i: int, column: str, role: str) -> str:
    value = table.rows[i].get(column)
    text = "" if value is None else str(value).strip()
    if not text:
        raise AdvembedError(f"{table.source} {table.where[i]}: empty {role} in column '{column}'")
    return text


def raw_labels(table: Table, column: str) -> list[str]:
    """Every row's label as a string; an empty label is an error naming the row."""
    labels = []
    for i, row in enumerate(table.rows):
        label = _label_string(row.get(column))
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
) -> TextDataset:
    """Make train/dev/test from whichever of them were given (rules in the module docstring)."""
    train, dev, test = parts["train"], parts.get("dev"), parts.get("test")
    if dev is None and test is None:
        return TextDataset(name, label_names, split_three(train, seed, name), description)
    if test is None:
        test, dev = dev, None
    if dev is None:
        train, dev = split_off_dev(train, seed, f"{name} training data")
    splits = {"train": list(train), "dev": dev, "test": test}
    return TextDataset(name, label_names, splits, description)


# --- CSV / TSV / JSONL ---------------------------------------------------------------------


def _split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for split, stems in SPLIT_FILE_STEMS.items():
        matches = [
            p
            for p in sorted(folder.iterdir())
            if p.is_file() and p.stem.lower() in stems and p.suffix.lower() in SUFFIXES
        ]
        if len(matches) > 1:
            raise AdvembedError(
                f"{folder} has several {split} files ({', '.join(p.name for p in matches)}); "
                "keep one"
            )
        if matches:
            found[split] = matches[0]
    if "train" not in found:
        raise AdvembedError(
            f"{folder} has no train file (train.csv, train.tsv, train.jsonl or train.json)"
        )
    return found


def load_files(
    path: Path,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    split_seed: int = 2024,
) -> TextDataset:
    """Load one data file, or a folder of split files (rules in the module docstring)."""
    paths = _split_files(path) if path.is_dir() else {"train": path}
    tables = {split: read_table(p) for split, p in paths.items()}
    cols = resolve_columns(tables["train"], text_column, text_pair_column, label_column)
    for split, table in tables.items():
        if split != "train":
            resolve_columns(table, cols.text, cols.pair, cols.label)
    names = label_vocabulary(raw_labels(tables["train"], cols.label))
    mapping = {label: i for i, label in enumerate(names)}
    parts = {split: to_examples(table, cols, mapping) for split, table in tables.items()}
    name = path.name if path.is_dir() else path.stem
    return assemble(name, names, parts, split_seed, f"loaded from {path}")


# --- GLUE ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlueTask:
    """Where a GLUE task keeps its text, second text and label, and its label names."""

    name: str
    text: str
    pair: str | None
    label: str
    label_names: tuple[str, ...]
    raw_labels: tuple[str, ...] | None = None
    """Label values as written in the files, in index order; ``None`` means ``0..K-1``."""
    header: tuple[str, ...] | None = None
    """Column names for files without a header line (CoLA)."""
    dev_file: str = "dev.tsv"


_ENTAILMENT = ("entailment", "not_entailment")
GLUE_TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in (
        GlueTask("sst2", "sentence", None, "label", ("negative", "positive")),
        GlueTask(
            "cola",
            "sentence",
            None,
            "label",
            ("unacceptable", "acceptable"),
            header=("source", "label", "original_label", "sentence"),
        ),
        GlueTask("mrpc", "#1 String", "#2 String", "Quality", ("not_equivalent", "equivalent")),
        GlueTask("qqp", "question1", "question2", "is_duplicate", ("not_duplicate", "duplicate")),
        GlueTask(
            "mnli",
            "sentence1",
            "sentence2",
            "gold_label",
            ("entailment", "neutral", "contradiction"),
            raw_labels=("entailment", "neutral", "contradiction"),
            dev_file="dev_matched.tsv",
        ),
        GlueTask("qnli", "question", "sentence", "label", _ENTAILMENT, raw_labels=_ENTAILMENT),
        GlueTask("rte", "sentence1", "sentence2", "label", _ENTAILMENT, raw_labels=_ENTAILMENT),
    )
}
_GLUE_ALIASES = {"sst": "sst2", "multinli": "mnli"}


def _task_from_name(folder: Path) -> GlueTask | None:
    key = re.sub(r"[^a-z0-9]", "", folder.name.lower())
    key = _GLUE_ALIASES.get(key, key)
    return GLUE_TASKS.get(key)


def _task_from_header(train: Path) -> GlueTask | None:
    with _open_text(train) as fh:
        first = fh.readline().rstrip("\r\n").split("\t")
    cols = set(first)
    by_columns = [
        ("mnli", {"sentence1", "sentence2", "gold_label"}),
        ("mrpc", {"#1 String", "#2 String", "Quality"}),
        ("qqp", {"question1", "question2", "is_duplicate"}),
        ("qnli", {"question", "sentence", "label"}),
        ("rte", {"sentence1", "sentence2", "label"}),
    ]
    for name, needed in by_columns:
        if needed <= cols:
            return GLUE_TASKS[name]
    if cols == {"sentence", "label"}:
        return GLUE_TASKS["sst2"]
    if len(first) == 4 and first[1] in {"0", "1"}:
        return GLUE_TASKS["cola"]
    return None


def glue_task(folder: Path) -> GlueTask | None:
    """The GLUE task stored in ``folder`` (by folder name, else by header), or ``None``.

    Only folders that hold ``train.tsv`` and the task's dev file qualify.
    """
    train = folder / "train.tsv"
    if not train.is_file():
        return None
    task = _task_from_name(folder) or _task_from_header(train)
    if task is None or not (folder / task.dev_file).is_file():
        return None
    return task


def _glue_table(path: Path, task: GlueTask) -> Table:
    if not path.is_file():
        raise AdvembedError(f"GLUE {task.name} file {path} not found")
    table = _read_delimited(path, "\t", header=task.header)
    if not table.rows:
        raise AdvembedError(f"{path} has no examples")
    return table


def load_glue(folder: Path, *, split_seed: int = 2024) -> TextDataset:
    """Load a GLUE task folder: dev becomes test, 10 % of train becomes dev."""
    if not folder.is_dir():
        raise AdvembedError(f"GLUE folder {folder} not found")
    if not (folder / "train.tsv").is_file():
        raise AdvembedError(f"GLUE folder {folder} has no train.tsv")
    task = _task_from_name(folder) or _task_from_header(folder / "train.tsv")
    if task is None:
        raise AdvembedError(
            f"cannot tell which GLUE task is in {folder}: name the folder after the task "
            f"({', '.join(GLUE_TASKS)}) or keep the original GLUE header"
        )
    cols = Columns(task.text, task.pair, task.label)
    raw = task.raw_labels or tuple(str(i) for i in range(len(task.label_names)))
    mapping = {label: i for i, label in enumerate(raw)}
    parts = {}
    for split, filename in (("train", "train.tsv"), ("test", task.dev_file)):
        table = _glue_table(folder / filename, task)
        resolve_columns(table, cols.text, cols.pair, cols.label)
        parts[split] = to_examples(table, cols, mapping)
    description = f"GLUE {task.name} from {folder} (GLUE dev used as test)"
    return assemble(f"glue-{task.name}", list(task.label_names), parts, split_seed, description)


# --- Hugging Face datasets -----------------------------------------------------------------

HF_FILE_BUILDERS = ("csv", "json", "parquet", "text", "arrow")
_HF_SPLITS = {"train": "train", "validation": "dev", "dev": "dev", "valid": "dev", "test": "test"}


def _hf_load(ref: str) -> Any:
    """``datasets`` object for ``NAME[:CONFIG]``, ``BUILDER:DATA_FILES`` or a saved folder."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise AdvembedError("hf: datasets need the 'datasets' package") from None
    name, _, rest = ref.partition(":")
    try:
        if name in HF_FILE_BUILDERS:
            if not rest:
                raise AdvembedError(f"hf:{name} needs data files, e.g. hf:{name}:data.{name}")
            return datasets.load_dataset(name, data_files=rest)
        if Path(ref).is_dir() and (Path(ref) / "dataset_dict.json").is_file():
            return datasets.load_from_disk(ref)
        return datasets.load_dataset(name, rest or None)
    except AdvembedError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the hub or a script is the user's
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise AdvembedError(
            f"could not load Hugging Face dataset '{ref}' ({type(exc).__name__}: {reason})"
        ) from None


def _hf_table(ref: str, split: str, ds: Any) -> Table:
    rows = ds.to_list()
    return Table(
        f"hf:{ref} [{split}]",
        list(ds.column_names),
        rows,
        [f"row {i}" for i in range(1, len(rows) + 1)],
    )


def _class_names(ds: Any, column: str) -> list[str] | None:
    feature = ds.features.get(column)
    names = getattr(feature, "names", None)
    return list(names) if names else None


def load_hf(
    ref: str,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    split_seed: int = 2024,
) -> TextDataset:
    """Load ``hf:REF`` with :func:`datasets.load_dataset` (hub access needed for hub names).

    ``REF`` is ``NAME[:CONFIG]`` (hub or local script/folder), ``csv|json|parquet|text|arrow:
    FILES`` (local data files) or a folder written by ``save_to_disk``.  Splits named train,
    validation/dev/valid and test are used; a split whose labels are all -1 (unlabelled, as in
    GLUE test) is dropped, then missing splits are made as for files.  Labels of a ``ClassLabel``
    column keep their names and numbering.
    """
    loaded = _hf_load(ref)
    if not hasattr(loaded, "items"):  # a single Dataset saved with save_to_disk
        loaded = {"train": loaded}
    sets = {_HF_SPLITS[k]: v for k, v in loaded.items() if k in _HF_SPLITS and len(v)}
    if "train" not in sets:
        raise AdvembedError(
            f"Hugging Face dataset '{ref}' has no train split (it has {', '.join(loaded)})"
        )
    tables = {split: _hf_table(ref, split, ds) for split, ds in sets.items()}
    cols = resolve_columns(tables["train"], text_column, text_pair_column, label_column)
    for table in tables.values():
        resolve_columns(table, cols.text, cols.pair, cols.label)
    tables = {s: t for s, t in tables.items() if s == "train" or not _unlabelled(t, cols.label)}
    names = _class_names(sets["train"], cols.label)
    if names is None:
        names = label_vocabulary(raw_labels(tables["train"], cols.label))
        mapping = {label: i for i, label in enumerate(names)}
    else:
        mapping = {str(i): i for i in range(len(names))}
    parts = {split: to_examples(table, cols, mapping) for split, table in tables.items()}
    return assemble(ref, names, parts, split_seed, f"Hugging Face dataset {ref}")


def _unlabelled(table: Table, column: str) -> bool:
    return all(_label_string(row.get(column)) in {"-1", None} for row in table.rows)
