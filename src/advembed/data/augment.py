"""Adversarial data augmentation (ADA, paper 003 Table 5): adversarial texts that a
word-substitution attack found on the training split, added to the training examples.

The file is what ``advembed attack --run RUN --attack pwws --split train`` writes
(``RUN/attack-pwws-train.jsonl``): one JSON record per attacked example; the successful ones carry
the adversarial ``text`` (and ``text_pair``) and the gold ``label`` index.  Each distinct
adversarial text is added once, with its gold label; a success that re-scoring did not confirm
(``flip_confirmed: false``: the stored text does not change the model's prediction) is left out.
An attack run at several temperatures can give one example several texts: each is added.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from advembed.data.base import Example, TextDataset
from advembed.errors import AdvembedError


def adversarial_examples(path: Path, label_names: list[str],
                         held_out: set[tuple[str, str | None]] | None = None) -> list[Example]:
    """The successful adversarial examples of an attack's records, each text once.  A record
    whose original example is in ``held_out`` (the dev and test examples) is refused: the file
    was made by attacking another split, and training on it would put adversarial versions of
    evaluation sentences into training."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AdvembedError(f"cannot read --augment-file {path}: {exc}") from None
    examples, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if record["status"] != "successful" or record.get("flip_confirmed") is False:
                continue
            text, pair, label = record["text"], record.get("text_pair"), int(record["label"])
            original = (record.get("original_text"), record.get("original_text_pair"))
        except (ValueError, KeyError, TypeError):
            raise AdvembedError(f"--augment-file {path} line {number} is not an attack record "
                                "(written by advembed attack)") from None
        if held_out and original in held_out:
            raise AdvembedError(
                f"--augment-file {path} line {number} attacks a dev or test example "
                f"('{original[0][:50]}'): make the file with `advembed attack --split train` "
                "on a run of the same dataset and --split-seed")
        if not 0 <= label < len(label_names):
            raise AdvembedError(f"--augment-file {path} line {number}: label {label} is not one "
                                f"of the dataset's {len(label_names)} labels")
        if (text, pair) not in seen:
            seen.add((text, pair))
            examples.append(Example(text, label, pair))
    return examples


def augmented(data: TextDataset, path: Path, limit: int | None = None,
              seed: int = 0) -> TextDataset:
    """``data`` with the adversarial examples of ``path`` added to its training split.

    ``limit`` caps how many are added: a uniform sample of that size without replacement,
    drawn with ``seed`` and kept in the file's order (all of them when the file has no more),
    so that the share of adversarial examples in the training split can be set."""
    held_out = {(e.text, e.text_pair) for split in ("dev", "test")
                for e in data.splits.get(split, [])}
    extra = adversarial_examples(path, data.label_names, held_out)
    if not extra:
        raise AdvembedError(f"--augment-file {path} holds no successful adversarial example")
    if limit is not None and limit < len(extra):
        chosen = sorted(random.Random(seed).sample(range(len(extra)), limit))
        extra = [extra[i] for i in chosen]
    splits = dict(data.splits) | {"train": [*data.splits["train"], *extra]}
    return TextDataset(data.name, list(data.label_names), splits,
                       f"{data.description}; {len(extra)} adversarial examples from {path}")
