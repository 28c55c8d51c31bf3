"""The data option group: which dataset, which columns, which split seed.

Declared once and shared by ``train`` (where ``--dataset`` defaults to ``mr``) and by the
commands that read a run's data (``eval``, ``attack``, ``reconstruct``: unset options take the
run's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from advembed.errors import AdvembedError
from advembed.settings import MAX_SEED, Flag, Settings, setting

DATASET = Flag("--dataset", "named dataset, CSV/TSV/JSONL file or folder, GLUE folder, or "
               "hf:NAME")
TEXT_COLUMN = Flag("--text-column", "text column of a CSV/TSV/JSONL file or hf: dataset")
TEXT_PAIR_COLUMN = Flag("--text-pair-column", "second-sentence column (sentence pairs)")
LABEL_COLUMN = Flag("--label-column", "label column of a CSV/TSV/JSONL file or hf: dataset")
SPLIT_SEED = Flag("--split-seed", "seed of the train/dev/test split this package makes",
                  minimum=0, maximum=MAX_SEED)


@dataclass(frozen=True)
class DataOptions(Settings):
    """A dataset spec and how to read it; ``None`` means "the run's own" where a run is read."""

    owner = "the data options"
    dataset: str | None = setting(None, DATASET)
    text_column: str | None = setting(None, TEXT_COLUMN)
    text_pair_column: str | None = setting(None, TEXT_PAIR_COLUMN)
    label_column: str | None = setting(None, LABEL_COLUMN)
    split_seed: int | None = setting(None, SPLIT_SEED)

    def __post_init__(self) -> None:
        """The declared checks, and no empty dataset or column name: ``--dataset ""`` would
        otherwise read ``mr`` and ``--label-column ""`` the column ``label``."""
        super().__post_init__()
        for flag in (DATASET, TEXT_COLUMN, TEXT_PAIR_COLUMN, LABEL_COLUMN):
            value = getattr(self, flag.dest)
            if isinstance(value, str) and not value.strip():
                raise AdvembedError(f"option {flag.name} must not be empty for {self.owner}, "
                                    f"got {value!r}")

    @property
    def columns(self) -> dict[str, str | None]:
        return {"text_column": self.text_column, "text_pair_column": self.text_pair_column,
                "label_column": self.label_column}

    def over(self, run_config: dict[str, Any]) -> DataOptions:
        """These options, with what is unset taken from a run's ``config.json``.

        Columns come from the run only when the dataset does: another dataset is read with
        the columns given here."""
        same = self.dataset is None
        given = [flag for flag, value in (("--text-column", self.text_column),
                                          ("--text-pair-column", self.text_pair_column),
                                          ("--label-column", self.label_column)) if value]
        if same and given:
            raise AdvembedError(f"{given[0]} needs --dataset: without it the run's own dataset "
                                "is read with the run's own columns")
        return DataOptions(  # a run's "" column (before these were refused) meant the default
            dataset=run_dataset(run_config) if same else self.dataset,
            text_column=run_config.get("text_column") or None if same else self.text_column,
            text_pair_column=(run_config.get("text_pair_column") or None if same
                              else self.text_pair_column),
            label_column=run_config.get("label_column") or None if same else self.label_column,
            split_seed=(self.split_seed if self.split_seed is not None
                        else run_config.get("split_seed", 2024)),
        )

    def load(self):
        """The :class:`~advembed.data.TextDataset` these options name."""
        from advembed.data import load_dataset

        return load_dataset(self.dataset or "mr", **self.columns,
                            split_seed=2024 if self.split_seed is None else self.split_seed)


def run_dataset(run_config: dict[str, Any]) -> str:
    """The run's dataset as recorded, or, where that is a relative path not found from here,
    the absolute path the run recorded beside it (``dataset_path``)."""
    from pathlib import Path

    recorded = run_config["dataset"]
    absolute = run_config.get("dataset_path")
    if absolute and not Path(recorded).expanduser().exists() and Path(absolute).exists():
        return absolute
    return recorded
