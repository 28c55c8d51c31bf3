"""``benchmarks/qa_reference.py``: the reference rows of the QA-matching tables — a TF-IDF
cosine computed by hand on a toy corpus, and a threshold chosen on dev, never on test."""

from __future__ import annotations

import math

import pytest
from test_attack_table import _load

from advembed.data.base import Example, TextDataset

reference = _load("qa_reference")

TRAIN = [Example("open file", 1, "open the file dialog"), Example("save file", 0, "print page")]


def test_words_are_lower_cased_runs_and_single_cjk_characters():
    assert reference.words("打开文件 Open-File_2") == ["打", "开", "文", "件", "open", "file", "2"]
    # a Latin run or digit glued to Chinese characters stays apart from them
    assert reference.words("在LibreOffice中使用 3个") == ["在", "libreoffice", "中", "使", "用",
                                                         "3", "个"]


def test_the_cosine_uses_training_idf_and_sublinear_term_frequency():
    # Four training documents; idf(t) = ln((1 + 4) / (1 + df(t))) + 1, tf -> 1 + ln(tf).
    idf = {"open": math.log(5 / 3) + 1, "file": math.log(5 / 4) + 1, "dialog": math.log(5 / 2) + 1}
    question = {"open": idf["open"], "file": (1 + math.log(2)) * idf["file"]}  # "file" twice
    reply = {"file": idf["file"], "dialog": idf["dialog"]}  # "unseen" is not in the vocabulary
    norm = math.sqrt(sum(v * v for v in question.values())) * math.sqrt(
        sum(v * v for v in reply.values()))
    expected = question["file"] * reply["file"] / norm
    got = reference.tfidf_cosine(TRAIN, [Example("Open file FILE", 1, "file dialog unseen")])
    assert got[0] == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.4346, abs=1e-4)  # tf 2 without the log: 0.4578


def test_the_threshold_is_chosen_on_dev_and_applied_unchanged_to_test():
    dev = [Example("open file", 1, "open file"), Example("open file", 0, "print page"),
           Example("save file", 1, "save the file"), Example("save file", 0, "file dialog")]
    test = [Example("open file", 1, "open the page"), Example("save file", 0, "save page"),
            Example("open file", 0, "print page"), Example("save file", 1, "file")]
    data = TextDataset("toy", ["not-answer", "answer"], {"train": TRAIN, "dev": dev,
                                                          "test": test})
    (label0, dev0, test0), (label1, dev1, test1), _ = reference.reference_scores(data)
    assert label0 == "every reply answers"
    assert test0["f1"] == pytest.approx(2 * 2 / (2 + 4)) and dev0["f1"] == pytest.approx(2 / 3)
    # dev scores 1, 0, 0.765, 0.289: 0.5 separates them (ties go to the one nearest 0.5)
    assert dev1["f1"] == 1.0 and dev1["threshold"] == test1["threshold"] == 0.5
    # test scores 0.378, 0.596, 0, 0.538 for labels 1, 0, 0, 1: at 0.5 one hit and one false
    # alarm, F1 0.5; test's own best threshold (below 0.378) would give 0.8
    assert reference.tfidf_cosine(TRAIN, test) == pytest.approx([0.3785, 0.5960, 0, 0.5380],
                                                                abs=1e-4)
    assert test1["f1"] == pytest.approx(0.5) and test1["precision"] == pytest.approx(0.5)


def test_the_leak_row_reads_only_the_replies_training_labels():
    train = TRAIN + [Example("close file", 1, "print page"), Example("open file", 0, "save it")]
    test = [Example("x", 0, "open the file dialog"),  # a training answer: predicted no
            Example("y", 1, "save it"),  # a training non-answer only: predicted yes
            Example("z", 1, "never seen"), Example("w", 0, "print page")]
    data = TextDataset("toy", ["not-answer", "answer"], {"train": train, "dev": test,
                                                          "test": test})
    label, dev, scores = reference.reference_scores(data)[2]
    assert label == "the reply's training labels, question ignored"
    # predictions 0, 1, 1, 0 against labels 0, 1, 1, 0: every pair right, from replies alone
    assert scores["f1"] == 1.0 and dev["f1"] == 1.0
    assert reference.unanswering({"a"}, [Example("q", 0, "a"), Example("q", 0, "b")]).tolist() \
        == [0.0, 1.0]
