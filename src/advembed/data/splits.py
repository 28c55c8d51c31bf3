"""Seeded, stratified splitting and sampling.

None of the real datasets ships an official split, so we make one: 80 % train, 10 % dev,
10 % test, with :func:`sklearn.model_selection.train_test_split`, stratified by label and seeded
by ``split_seed`` (default 2024).  The split seed is separate from any training seed, so runs with
different training seeds see the same test set.  Exact duplicates are removed before splitting
(first occurrence kept), so no text can sit in two splits.

Stratification needs every class at least twice and at least one example per class on each
side; when a (tiny) dataset does not allow that, the split is a plain seeded shuffle instead.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from advembed.errors import AdvembedError

if TYPE_CHECKING:  # the types only: base imports this module
    from advembed.data.base import Example

DEV_FRACTION = 0.1
TEST_FRACTION = 0.1


def dedupe(examples: Sequence[Example]) -> list[Example]:
    """Drop examples whose ``(text, text_pair)`` was seen before (the first one is kept)."""
    seen: set[tuple[str, str | None]] = set()
    kept: list[Example] = []
    for ex in examples:
        key = (ex.text, ex.text_pair)
        if key not in seen:
            seen.add(key)
            kept.append(ex)
    return kept


def _can_stratify(labels: Sequence[int], n_held: int) -> bool:
    counts = Counter(labels)
    n_classes = len(counts)
    return (
        n_classes > 1
        and min(counts.values()) >= 2
        and n_held >= n_classes
        and len(labels) - n_held >= n_classes
    )


def _hold_out(
    examples: Sequence[Example], n_held: int, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split off ``n_held`` examples, stratified if possible; returns ``(rest, held)``."""
    labels = [ex.label for ex in examples]
    stratify = labels if _can_stratify(labels, n_held) else None
    from sklearn.model_selection import train_test_split  # seconds to import: when used

    rest, held = train_test_split(
        list(examples), test_size=n_held, random_state=seed, stratify=stratify
    )
    return rest, held


def _count(n: int, fraction: float) -> int:
    return max(1, round(n * fraction))


def split_three(examples: Sequence[Example], seed: int, what: str) -> dict[str, list[Example]]:
    """Deduplicate, then split 80/10/10 into train/dev/test (seeded, stratified).

    ``what`` names the data in the error raised when there are fewer than 3 distinct examples.
    """
    pool = dedupe(examples)
    if len(pool) < 3:
        raise AdvembedError(f"{what} has {len(pool)} distinct examples; at least 3 are needed")
    n_dev, n_test = _count(len(pool), DEV_FRACTION), _count(len(pool), TEST_FRACTION)
    train_dev, test = _hold_out(pool, n_test, seed)
    train, dev = _hold_out(train_dev, n_dev, seed)
    return {"train": train, "dev": dev, "test": test}


def split_off_dev(
    train: Sequence[Example], seed: int, what: str
) -> tuple[list[Example], list[Example]]:
    """Deduplicate ``train`` and hold 10 % of it out as dev; returns ``(train, dev)``."""
    pool = dedupe(train)
    if len(pool) < 2:
        raise AdvembedError(
            f"{what} has {len(pool)} distinct examples; at least 2 are needed to hold out a dev set"
        )
    return _hold_out(pool, _count(len(pool), DEV_FRACTION), seed)


def sample(examples: Sequence[Example], n: int, seed: int) -> list[Example]:
    """At most ``n`` examples, seeded and stratified where possible, in their original order."""
    if len(examples) <= n:
        return list(examples)
    labels = [ex.label for ex in examples]
    index = list(range(len(examples)))
    stratify = labels if _can_stratify(labels, len(examples) - n) else None
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(index, train_size=n, random_state=seed, stratify=stratify)
    return [examples[i] for i in sorted(kept)]


def split_groups(groups: Sequence, seed: int, what: str) -> dict:
    """``{group: "train" | "dev" | "test"}``: the sorted groups (files, chapters) shuffled with
    ``seed`` and cut 80/10/10, so that everything of a group lands in one split."""
    keys = sorted(set(groups))
    random.Random(seed).shuffle(keys)
    n_test, n_dev = round(len(keys) * TEST_FRACTION), round(len(keys) * DEV_FRACTION)
    if min(n_test, n_dev, len(keys) - n_test - n_dev) < 1:
        raise AdvembedError(f"{len(keys)} {what} are too few to split by {what}")
    return {key: "test" for key in keys[:n_test]} | {
        key: "dev" for key in keys[n_test:n_test + n_dev]} | {
        key: "train" for key in keys[n_test + n_dev:]}
