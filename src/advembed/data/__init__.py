"""Datasets: built-in real data, the user's files, GLUE folders and Hugging Face datasets.

:func:`load_dataset` resolves a dataset *spec*, in this order:

1. a built-in name (``mr``, ``cr``, ``nyt``, ``tweets``, ``rt``, ``subj``, ``bbc``,
   ``bbc-match``; see :mod:`advembed.data.named`);
2. ``glue:PATH``, or a folder holding a GLUE task's ``train.tsv`` and dev file
   (see :mod:`advembed.data.glue`);
3. ``hf:REF``: a Hugging Face dataset (see :func:`advembed.data.hf.load_hf`);
4. a question–answer matching folder (``train.query.tsv`` + ``train.reply.tsv``, paper 000's
   format; see :mod:`advembed.data.qa`), split by question;
5. an existing ``.csv``/``.tsv``/``.jsonl``/``.json`` file, or a folder of split files.

Every result has ``train``, ``dev`` and ``test`` splits.
"""

from __future__ import annotations

import os
from pathlib import Path

from advembed.data import named
from advembed.data.base import Example, NamedDatasetInfo, TextDataset
from advembed.data.files import load_files
from advembed.data.glue import glue_task, load_glue
from advembed.data.hf import load_hf
from advembed.data.qa import is_qa_folder, load_qa_folder
from advembed.errors import AdvembedError

__all__ = [
    "Example",
    "NamedDatasetInfo",
    "TextDataset",
    "describe_datasets",
    "load_dataset",
    "named_datasets",
]


def _no_columns(spec: str, columns: tuple[str | None, ...]) -> None:
    if any(c is not None for c in columns):
        raise AdvembedError(
            f"column options do not apply to '{spec}'; they are for CSV/TSV/JSONL files and hf:"
        )


def load_dataset(
    spec: str,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    split_seed: int = 2024,
) -> TextDataset:
    """Load a dataset by name, path or ``glue:``/``hf:`` reference (order in the module docstring).

    ``split_seed`` seeds every split this package makes (it is independent of training seeds).
    The column options pick columns in files and Hugging Face datasets.
    """
    columns = (text_column, text_pair_column, label_column)
    file_options = {
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "label_column": label_column,
        "split_seed": split_seed,
    }
    key = spec.strip().lower()
    if key in named.names():
        _no_columns(spec, columns)
        return named.load_named(key, split_seed)
    if spec.startswith("glue:"):
        _no_columns(spec, columns)
        return load_glue(Path(spec[len("glue:") :]).expanduser(), split_seed=split_seed)
    if spec.startswith("hf:"):
        return load_hf(spec[len("hf:") :], **file_options)
    path = Path(spec).expanduser()
    if is_qa_folder(path):
        _no_columns(spec, columns)
        return load_qa_folder(path, split_seed)
    if path.is_dir() and not any(c is not None for c in columns) and glue_task(path):
        return load_glue(path, split_seed=split_seed)
    if path.exists():
        return load_files(path, **file_options)
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json") or os.sep in spec:
        raise AdvembedError(f"dataset '{spec}' does not exist (no such file or folder)")
    raise AdvembedError(
        f"unknown dataset '{spec}'; named datasets: {', '.join(named.names())}; "
        "or pass a CSV/TSV/JSONL file, a GLUE directory, or hf:NAME"
    )


def named_datasets() -> list[NamedDatasetInfo]:
    """The built-in datasets: name, description, source package and label names."""
    return named.infos()


def _label_map(label_names: list[str] | tuple[str, ...]) -> str:
    return " ".join(f"{i}={name}" for i, name in enumerate(label_names))


def describe_datasets(split_seed: int = 2024) -> str:
    """A fixed-width table of every built-in dataset, with split sizes and label map.

    Each dataset is loaded (from the cache after the first time).  A dataset whose package
    cannot be fetched is listed with ``-`` sizes and the reason below the table.
    """
    header = ("name", "classes", "train", "dev", "test", "labels", "source")
    rows: list[tuple[str, ...]] = []
    problems: dict[str, list[str]] = {}
    for info in named_datasets():
        try:
            sizes = named.load_named(info.name, split_seed).sizes()
            counts = tuple(f"{sizes[s]:,}" for s in ("train", "dev", "test"))
        except AdvembedError as exc:
            counts = ("-", "-", "-")
            problems.setdefault(str(exc), []).append(info.name)
        label_map = _label_map(info.label_names)
        rows.append((info.name, str(len(info.label_names)), *counts, label_map, info.package))
    notes = [f"\n! {', '.join(names)}: {reason}" for reason, names in problems.items()]
    return _format_table(header, rows, numeric={1, 2, 3, 4}) + "".join(notes)


def _format_table(header: tuple[str, ...], rows: list[tuple[str, ...]], numeric: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
