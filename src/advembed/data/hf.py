"""Hugging Face ``datasets`` as a source (``hf:REF``): hub names where a hub is reachable,
local data files and folders written by ``save_to_disk``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advembed.data.base import TextDataset
from advembed.data.tables import (
    Table,
    assemble,
    label_string,
    label_vocabulary,
    raw_labels,
    resolve_columns,
    to_examples,
)
from advembed.errors import AdvembedError

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
        saved = ("dataset_dict.json", "state.json")  # a DatasetDict, or one Dataset
        if Path(ref).is_dir() and any((Path(ref) / f).is_file() for f in saved):
            return datasets.load_from_disk(ref)
        if not Path(name).exists():
            from advembed.provider import hub_reachable

            if not hub_reachable():
                raise AdvembedError(f"could not load Hugging Face dataset '{ref}': not a local "
                                    "folder, and the hub is not reachable from here (offline)")
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
    return all(label_string(row.get(column)) in {"-1", None} for row in table.rows)
