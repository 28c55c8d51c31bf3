"""``benchmarks/pair_reference.py``: the word-overlap and length rows beside the pair tables,
checked by hand on a toy pair dataset."""

from __future__ import annotations

import pytest
from test_attack_table import _load

from advembed.data import Example, TextDataset

reference = _load("pair_reference")


def test_jaccard_and_length_ratio_by_hand():
    # {the, cat, sat} and {the, cat, ran, off}: 2 shared of 5
    assert reference.jaccard("The cat sat.", "the CAT ran off") == pytest.approx(2 / 5)
    assert reference.length_ratio("The cat sat.", "the CAT ran off") == pytest.approx(3 / 4)
    assert reference.jaccard("", "") == 0.0


def test_the_threshold_is_chosen_on_dev_for_accuracy_and_applied_unchanged_to_test():
    import numpy as np

    scores, labels = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    # "1 at or above t": t = 0.375 (between 0.35 and 0.4) scores 3/4, as does t = 0.6;
    # t = 0.225 also 3/4 — the lowest of the best wins
    assert reference.best_accuracy_threshold(scores, labels) == pytest.approx(0.225)
    dev = [Example("a b c", 1, "a b c"), Example("a b c", 0, "x y z"),
           Example("a b", 1, "a b q"), Example("p q", 0, "p r s")]
    test = [Example("a b c d", 1, "a b c e"), Example("k l", 0, "k m"),
            Example("u v", 1, "w z")]
    train = [Example("a", 1, "a"), Example("b", 1, "b"), Example("c", 0, "d")]
    data = TextDataset("toy", ["other", "same"], {"train": train, "dev": dev, "test": test})
    rows = reference.reference_rows(data)
    assert rows[0] == ("majority label (same)", 0.5, pytest.approx(2 / 3))
    # dev Jaccard: 1, 0, 2/3, 1/4 → best t = (1/4 + 2/3)/2 = 0.4583 (dev 4/4); on test
    # 3/5 ≥ t (right), 1/3 < t (right), 0 < t (wrong): 2/3
    name, dev_acc, test_acc = rows[1]
    assert "t = 0.458" in name and dev_acc == 1.0 and test_acc == pytest.approx(2 / 3)
