"""GLUE task folders: ``train.tsv`` and ``dev.tsv`` (``dev_matched.tsv`` for MNLI) of SST-2,
CoLA, MRPC, QQP, MNLI, QNLI and RTE, recognised from the folder name or the header.  GLUE's
``test.tsv`` has no labels, so the GLUE dev set is used as our test set and 10 % of train
(seeded, stratified) is held out as dev.  Label names and numbering follow the Hugging Face
``glue`` dataset."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from advembed.data.base import TextDataset
from advembed.data.tables import (
    Columns,
    Table,
    assemble,
    read_delimited,
    resolve_columns,
    to_examples,
)
from advembed.errors import AdvembedError


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


def _header_fields(path: Path) -> list[str]:
    """The tab-separated fields of the first line of ``path`` (only that line is read); a
    byte that is not UTF-8 in it is a one-line error, as :func:`read_text` gives."""
    try:
        with path.open("rb") as fh:
            raw = re.split(rb"\r|\n", fh.readline(), maxsplit=1)[0]
    except OSError as exc:
        raise AdvembedError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig").split("\t")
    except UnicodeDecodeError as exc:
        raise AdvembedError(f"{path} line 1 is not UTF-8 (byte "
                            f"0x{exc.object[exc.start]:02x}); save the file as UTF-8") from None


def _task_from_header(train: Path) -> GlueTask | None:
    first = _header_fields(train)
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

    Only folders that hold ``train.tsv`` and the task's dev file qualify, and not one whose
    ``test.tsv`` has labels: GLUE's test files have none, so such a folder is the user's own
    train/dev/test split (read as given by :func:`advembed.data.files.load_files`).
    """
    train = folder / "train.tsv"
    if not train.is_file():
        return None
    task = _task_from_name(folder) or _task_from_header(train)
    if task is None or not (folder / task.dev_file).is_file():
        return None
    if _has_labels(folder / "test.tsv", task):
        return None
    return task


def _has_labels(test: Path, task: GlueTask) -> bool:
    """Whether ``test`` exists and carries the task's label column (GLUE's own has none)."""
    if not test.is_file():
        return False
    first = _header_fields(test)
    if task.header is not None:  # CoLA: no header line; GLUE's test is "index<TAB>sentence"
        return len(first) == len(task.header)
    return task.label in first


def _glue_table(path: Path, task: GlueTask) -> Table:
    if not path.is_file():
        raise AdvembedError(f"GLUE {task.name} file {path} not found")
    table = read_delimited(path, "\t", header=task.header, strict=False)
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
    parts, dropped = {}, 0
    for split, filename in (("train", "train.tsv"), ("test", task.dev_file)):
        table = _glue_table(folder / filename, task)
        resolve_columns(table, cols.text, cols.pair, cols.label)
        parts[split] = to_examples(table, cols, mapping)
        dropped += table.dropped
    description = f"GLUE {task.name} from {folder} (GLUE dev used as test)"
    if dropped:
        description += f"; {dropped} malformed rows (wrong field count) left out"
    return assemble(f"glue-{task.name}", list(task.label_names), parts, split_seed, description)
