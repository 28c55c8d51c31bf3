"""The user's own data files: one CSV/TSV/JSONL file, or a folder of split files.

* One file: deduplicated and split 80/10/10 (seeded, stratified).
* A folder: ``train.*``, and optionally ``dev.*`` (or ``validation.*``/``valid.*``) and
  ``test.*``.  Missing splits are made as follows: no dev and no test → train is split 80/10/10;
  dev but no test → dev becomes the test set and 10 % of train is held out as dev; test but no
  dev → 10 % of train is held out as dev.  Given splits are used as they are.  In a folder the
  labels come from the training file; a dev/test label not seen in training is an error.

File formats, columns and labels: :mod:`advembed.data.tables`.
"""

from __future__ import annotations

from pathlib import Path

from advembed.data.base import TextDataset
from advembed.data.tables import (
    SUFFIXES,
    assemble,
    label_vocabulary,
    raw_labels,
    read_table,
    resolve_columns,
    to_examples,
)
from advembed.errors import AdvembedError

SPLIT_FILE_STEMS = {"train": ("train",), "dev": ("dev", "validation", "valid"), "test": ("test",)}


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
    return assemble(name, names, parts, split_seed, f"loaded from {path}", source=str(path))
