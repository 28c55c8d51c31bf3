"""Adversarial data augmentation (ADA, paper 003 Table 5): adversarial texts that a
word-substitution attack found on the training split, added to the training examples.

The file is what ``advembed attack --run RUN --attack pwws --split train`` writes
(``RUN/attack-pwws-train.jsonl``): one JSON record per attacked example; the successful ones carry
the adversarial ``text`` (and ``text_pair``, exactly when the dataset is sentence pairs) and the
gold ``label`` index (an integer).  Each distinct adversarial text is added once, with its gold
label; a success that re-scoring did not confirm (``flip_confirmed: false``: the stored text does
not change the model's prediction) is left out.  An attack run at several temperatures can give
one example several texts: each is added.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from advembed.data.base import Example, TextDataset
from advembed.errors import AdvembedError


def adversarial_examples(path: Path, label_names: list[str],
                         held_out: set[tuple[str, str | None]] | None = None,
                         pair: bool | None = None) -> list[Example]:
    """The successful adversarial examples of an attack's records, each text once.  A record
    whose original example is in ``held_out`` (the dev and test examples) is refused: the file
    was made by attacking another split, and training on it would put adversarial versions of
    evaluation sentences into training.  With ``pair`` (whether the dataset is sentence pairs)
    a record must have a ``text_pair`` exactly when the dataset does."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AdvembedError(f"cannot read --augment-file {path}: {exc}") from None
    examples, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"--augment-file {path} line {number}"
        parsed = _record(line, where)
        if parsed is None:
            continue
        example, original = parsed
        if held_out and original in held_out:
            raise AdvembedError(
                f"{where} attacks a dev or test example "
                f"('{original[0][:50]}'): make the file with `advembed attack --split train` "
                "on a run of the same dataset and --split-seed")
        if not 0 <= example.label < len(label_names):
            raise AdvembedError(f"{where}: label {example.label} is not one "
                                f"of the dataset's {len(label_names)} labels")
        if pair is not None and (example.text_pair is not None) != pair:
            raise AdvembedError(
                f"{where} " + ("has a text_pair but the dataset is single-sentence data"
                               if example.text_pair is not None else
                               "has no text_pair but the dataset is sentence-pair data"))
        if (example.text, example.text_pair) not in seen:
            seen.add((example.text, example.text_pair))
            examples.append(example)
    return examples


def _record(line: str, where: str) -> tuple[Example, tuple[str | None, str | None]] | None:
    """A successful, confirmed record's example and its original ``(text, text_pair)``;
    ``None`` for a record to leave out.  ``text`` must be a non-empty string, ``text_pair``
    one or null, the originals a string or null, ``label`` an integer index (``1.0`` and
    ``"1"`` too, not ``true`` or ``1.7``)."""
    try:
        record = json.loads(line)
        if record["status"] != "successful" or record.get("flip_confirmed") is False:
            return None
        text, pair, label = record["text"], record.get("text_pair"), record["label"]
        original = (record.get("original_text"), record.get("original_text_pair"))
    except (ValueError, KeyError, TypeError):
        raise AdvembedError(f"{where} is not an attack record (written by advembed attack)"
                            ) from None
    if not isinstance(text, str) or not text.strip():
        raise AdvembedError(f"{where}: 'text' must be a non-empty string, got {_shown(text)}")
    if pair is not None and (not isinstance(pair, str) or not pair.strip()):
        raise AdvembedError(f"{where}: 'text_pair' must be a non-empty string or null, got "
                            f"{_shown(pair)}")
    for key, value in (("original_text", original[0]), ("original_text_pair", original[1])):
        if value is not None and not isinstance(value, str):
            raise AdvembedError(f"{where}: '{key}' must be a string or null, got "
                                f"{_shown(value)}")
    return Example(text, _label_index(label, where), pair), original


def _label_index(label: object, where: str) -> int:
    """A record's label as an integer index: an int, an integral float or a string of
    digits; a bool, a fractional number or anything else is an error."""
    if isinstance(label, float) and label.is_integer():
        return int(label)
    if isinstance(label, int) and not isinstance(label, bool):
        return label
    if isinstance(label, str) and re.fullmatch(r"\s*[+-]?\d+\s*", label):
        return int(label)
    raise AdvembedError(f"{where}: 'label' must be an integer label index, got {_shown(label)}")


def _shown(value: object) -> str:
    """A JSON value as the record wrote it, cut short."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def augmented(data: TextDataset, path: Path, limit: int | None = None,
              seed: int = 0) -> TextDataset:
    """``data`` with the adversarial examples of ``path`` added to its training split.

    ``limit`` caps how many are added: a uniform sample of that size without replacement,
    drawn with ``seed`` and kept in the file's order (all of them when the file has no more),
    so that the share of adversarial examples in the training split can be set."""
    held_out = {(e.text, e.text_pair) for split in ("dev", "test")
                for e in data.splits.get(split, [])}
    extra = adversarial_examples(path, data.label_names, held_out, data.is_pair)
    if not extra:
        raise AdvembedError(f"--augment-file {path} holds no successful adversarial example")
    if limit is not None and limit < len(extra):
        chosen = sorted(random.Random(seed).sample(range(len(extra)), limit))
        extra = [extra[i] for i in chosen]
    splits = dict(data.splits) | {"train": [*data.splits["train"], *extra]}
    return TextDataset(data.name, list(data.label_names), splits,
                       f"{data.description}; {len(extra)} adversarial examples from {path}")
