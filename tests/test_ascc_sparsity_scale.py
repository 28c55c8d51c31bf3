"""benchmarks/ascc_sparsity_scale.py: TextDefender's entropy weight in our normalisation."""

from __future__ import annotations

import pytest
from conftest import wordpiece_tokenizer
from test_attack_table import _load

from advembed.hull import synonym_table

scale = _load("ascc_sparsity_scale")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "great", "fine", "bad", "the"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return wordpiece_tokenizer(tmp_path_factory.mktemp("scale"), VOCAB)


def test_open_positions_are_counted_against_each_batch_padded_to_its_longest(tokenizer):
    synonyms = {"good": ["great", "fine"], "great": ["good"]}
    table = synonym_table(tokenizer, lambda w: synonyms.get(w, []), max_neighbours=4,
                          stopwords=set())
    ids = tokenizer(["good the", "bad good good great"])["input_ids"]  # 4 and 6 tokens
    # open: "good" in the first; "good", "good", "great" in the second ("bad", "the", the
    # special tokens and the padding have no hull)
    one_batch = scale.open_share(table, ids, batch_size=2, epochs=1, seed=0, pad_id=0)
    assert one_batch == (4, 12)  # padded to 6 twice
    two_batches = scale.open_share(table, ids, batch_size=1, epochs=2, seed=0, pad_id=0)
    assert two_batches == (8, 20)  # 4 + 6 per epoch, no padding


def test_the_equivalent_alpha_is_alpha_times_the_open_share_over_the_batch_size():
    # TextDefender: −KL_sum + α·f·H_open; ÷ B: −KL_mean + (α·f / B)·H_open
    assert scale.equivalent_alpha(10.0, 32, 4, 12) == pytest.approx(10 * (4 / 12) / 32)
    assert scale.equivalent_alpha(7.0, 8, 3, 20) == pytest.approx(0.13125)
