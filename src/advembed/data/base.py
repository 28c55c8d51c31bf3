"""The dataset types shared by every loader: :class:`Example`, :class:`TextDataset`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from advembed.data.splits import sample
from advembed.errors import AdvembedError

SPLITS: tuple[str, str, str] = ("train", "dev", "test")
"""Split names; every loaded :class:`TextDataset` has all three."""


@dataclass(frozen=True)
class Example:
    """One text, or a text pair (``text_pair`` set) for matching/NLI tasks, with its label
    (``None`` for tasks without labels, such as language modelling)."""

    text: str
    label: int | None = None
    text_pair: str | None = None


@dataclass
class TextDataset:
    """A classification dataset with ``train``/``dev``/``test`` splits.

    ``label_names[i]`` is the name of label ``i``; every ``Example.label`` is in
    ``range(num_labels)``.
    """

    name: str
    label_names: list[str]
    splits: dict[str, list[Example]]
    description: str = ""

    @property
    def is_pair(self) -> bool:
        """True if any example has a second text (``text_pair``)."""
        return any(ex.text_pair is not None for exs in self.splits.values() for ex in exs)

    @property
    def num_labels(self) -> int:
        """Number of classes."""
        return len(self.label_names)

    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {name: len(exs) for name, exs in self.splits.items()}

    def fingerprints(self) -> dict[str, str]:
        """Per split, the sha256 of its examples in order (text, pair, label): two runs whose
        fingerprints differ saw different data, however the dataset was named or built."""
        return {name: examples_sha256(examples) for name, examples in self.splits.items()}

    def limit(self, n: int, seed: int) -> TextDataset:
        """A new dataset with at most ``n`` examples per split.

        The subset is drawn with ``seed``, stratified by label where every class can be
        represented, and keeps the original order of the kept examples.  Splits with ``n`` or fewer
        examples are kept whole.
        """
        if n < 1:
            raise AdvembedError(f"limit must be a positive number of examples, got {n}")
        splits = {name: sample(exs, n, seed) for name, exs in self.splits.items()}
        return TextDataset(self.name, list(self.label_names), splits, self.description)


@dataclass(frozen=True)
class NamedDatasetInfo:
    """What ``advembed datasets`` shows about a built-in dataset before loading it."""

    name: str
    description: str
    package: str
    """Registry package the data comes from, as ``NAME==VERSION``."""
    label_names: tuple[str, ...] = field(default_factory=tuple)


def examples_sha256(examples) -> str:
    """The sha256 of ``examples`` in order (text, pair, label, one JSON line each)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.text, example.text_pair, example.label],
                                 ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()
