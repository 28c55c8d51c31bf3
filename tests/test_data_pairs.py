"""Sentence-pair datasets: ``bbc-match`` pairs a headline with its own lead or with another
same-topic article's, split by article so that nothing leaks between splits."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from advembed.data import load_dataset
from advembed.data.pairs import match_pairs, split_articles, unique_articles
from advembed.errors import AdvembedError, ResourceUnavailable

ARTICLES = [(topic, f"{topic} headline {i}", f"{topic} lead {i}")
            for topic in ("sport", "tech", "politics") for i in range(20)]


def test_each_article_gives_a_positive_and_a_same_topic_negative():
    pairs = match_pairs(ARTICLES, seed=3)
    assert len(pairs) == 2 * len(ARTICLES)
    assert Counter(p.label for p in pairs) == {0: 60, 1: 60}
    for pair in pairs:
        topic, _, number = pair.text.split()
        lead_topic, _, lead_number = pair.text_pair.split()
        assert lead_topic == topic  # the topic alone never decides
        assert (lead_number == number) == (pair.label == 1)
    assert pairs == match_pairs(ARTICLES, seed=3)
    assert pairs != match_pairs(ARTICLES, seed=4)


def test_articles_are_split_before_pairing_so_nothing_crosses_splits():
    splits = split_articles(ARTICLES, seed=0)
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [48, 6, 6]
    assert all(Counter(a[0] for a in splits[s]) == Counter({"sport": n, "tech": n,
                                                            "politics": n})
               for s, n in (("train", 16), ("dev", 2), ("test", 2)))
    paired = {split: match_pairs(group, 0) for split, group in splits.items()}
    texts = {split: {t for p in pairs for t in (p.text, p.text_pair)}
             for split, pairs in paired.items()}
    for a, b in itertools.combinations(texts, 2):
        assert not texts[a] & texts[b]


def test_a_story_the_corpus_repeats_is_kept_once_even_under_a_new_headline():
    texts = [("tech", "Phones sell\n\nSales rose by 4%.\nMore text."),
             ("tech", "Phones sell well\nSales rose by 4%.\nOther text."),  # new headline
             ("business", "Phones sell\nA different lead.\n"),  # same headline
             ("business", "  Markets fall \n Shares fell. \n")]
    assert unique_articles(texts) == [
        ("tech", ["Phones sell", "Sales rose by 4%.", "More text."]),
        ("business", ["Markets fall", "Shares fell."])]


def test_bbc_lm_splits_share_no_headline_or_lead():
    try:
        data = load_dataset("bbc-lm")
    except ResourceUnavailable as exc:
        pytest.skip(f"registry packages unavailable: {exc}")
    assert data.sizes() == {"train": 1645, "dev": 206, "test": 206}
    heads = {s: {line for e in data.splits[s] for line in e.text.split("\n")[:2]}
             for s in data.splits}
    for a, b in itertools.combinations(heads, 2):
        assert not heads[a] & heads[b]


def test_bbc_match_from_the_packaged_corpus():
    try:
        data = load_dataset("bbc-match")
    except ResourceUnavailable as exc:
        pytest.skip(f"registry packages unavailable: {exc}")
    assert data.is_pair and data.label_names == ["other-article", "same-article"]
    assert data.sizes() == {"train": 3290, "dev": 412, "test": 412}
    texts = {s: {t for e in data.splits[s] for t in (e.text, e.text_pair)} for s in data.splits}
    for a, b in itertools.combinations(texts, 2):
        assert not texts[a] & texts[b]
    assert all(Counter(e.label for e in split) == {0: len(split) // 2, 1: len(split) // 2}
               for split in data.splits.values())


PAGE = """<html><body><div id="DisplayArea">
<h1 id="a">Load/Save options</h1><p>Choose Tools - Options - Load/Save in the menu bar.</p>
<h2 id="b">General</h2>
<p class="paragraph">In the General section you select <span class="emph">default</span> settings
for saving documents.</p>
<p>Short one.</p>
<p>Choose <span hidden="true" id="MAC"><span>LibreOffice - Preferences</span></span><span>Tools
- Options</span> to change how documents are saved.</p>
<h3 id="c">VBA Properties</h3>
<p>Specifies the general properties for loading<br>Microsoft Office documents with macros.</p>
<p hidden>Hidden without a value, but hidden all the same.</p>
<br><h2 id="d">Empty section</h2>
</div></body></html>"""


def test_help_pages_become_sections_of_headings_and_their_paragraphs():
    from advembed.data.help_qa import page_questions

    sections = page_questions(PAGE, "en")
    assert [heading for heading, _ in sections] == ["General", "VBA Properties"]
    general = sections[0][1]
    assert general == [  # the h1 part is no section; short and hidden text is dropped
        "In the General section you select default settings for saving documents.",
        "Choose Tools - Options to change how documents are saved."]
    assert sections[1][1] == [  # words either side of <br> stay apart; bare `hidden` hides
        "Specifies the general properties for loading Microsoft Office documents with macros."]


def test_each_heading_asks_for_its_own_paragraphs_against_the_rest_of_its_page():
    from advembed.data.help_qa import qa_rows

    queries, replies, _ = qa_rows({"a.html": PAGE, "b.html": PAGE}, "en", seed=1)
    assert [text for _, text in queries] == ["General", "VBA Properties"]  # no repeats
    general = [(text, label) for qid, _, text, label in replies if qid == "0"]
    assert sorted(label for _, label in general) == [0, 1, 1]
    assert ("Specifies the general properties for loading Microsoft Office documents with "
            "macros.", 0) in general


def test_headings_differing_in_case_or_punctuation_are_one_question_and_repeats_one_reply():
    from advembed.data.help_qa import qa_rows, question_key

    assert question_key("  General  Options:") == question_key("general options") == \
        "general options"
    assert question_key("Example") != question_key("Examples")
    repeated = ("Choose Format - Cells - Numbers to set the number format of a cell.")
    other = PAGE.replace("<h2 id=\"b\">General</h2>", "<h2 id=\"b\">GENERAL:</h2>").replace(
        "<h3 id=\"c\">VBA Properties</h3>",
        f"<h3 id=\"c\">Number formats</h3><p>{repeated}</p><p>{repeated}</p>")
    queries, replies, groups = qa_rows({"a.html": PAGE, "b.html": other}, "en", seed=1)
    assert [text for _, text in queries] == ["General", "VBA Properties", "Number formats"]
    assert groups == [("0", "a.html"), ("1", "a.html"), ("2", "b.html")]  # split by page
    formats = [(text, label) for qid, _, text, label in replies if qid == "2"]
    # its new paragraph, given twice on the page, is one answer (the VBA paragraph that now
    # follows it the other); the "GENERAL:" section's two paragraphs are its non-answers
    assert (repeated, 1) in formats
    assert sorted(label for _, label in formats) == [0, 0, 1, 1]
    assert len({text for text, _ in formats}) == len(formats)


def test_one_pages_sections_asking_the_same_question_are_merged_not_set_against_each_other():
    from advembed.data.help_qa import qa_rows

    first = "The first example shows the function on a sheet with numbers."
    second = "Another example shows the function with text in the cells."
    other = "Settings of this dialog are stored with the document itself."
    page = (f"<h2>Example</h2><p>{first}</p><h3>Options</h3><p>{other}</p>"
            f"<h2>Example:</h2><p>{second}</p><h2>***</h2><p>{other} Again and again.</p>")
    queries, replies, _ = qa_rows({"a.html": page}, "en", seed=3)
    assert [text for _, text in queries] == ["Example", "Options"]  # "***" asks nothing
    example = sorted((label, text) for qid, _, text, label in replies if qid == "0")
    assert example == [(0, other), (1, second), (1, first)]  # "Example:" answers it too
    options = sorted((label, text) for qid, _, text, label in replies if qid == "1")
    assert options == [(0, second), (0, first), (1, other)]


@pytest.mark.parametrize("name", ["help-qa-en", "help-qa-zh"])
def test_help_qa_from_the_debian_package(name):
    from advembed.data.help_qa import question_key

    try:
        data = load_dataset(name)
    except ResourceUnavailable as exc:
        pytest.skip(f"Debian package unavailable: {exc}")
    assert data.is_pair and data.label_names == ["not-answer", "answer"]
    questions = {s: {question_key(e.text) for e in data.splits[s]} for s in data.splits}
    for a, b in itertools.combinations(questions, 2):
        assert not questions[a] & questions[b]  # not even in another case or punctuation
    for split in data.splits.values():
        pairs = [(e.text, e.text_pair) for e in split]
        assert len(pairs) == len(set(pairs))  # no reply twice under one question
    share = sum(e.label for e in data.splits["train"]) / len(data.splits["train"])
    assert 0.15 < share < 0.45  # several candidates per question, some of them answers


def _qa_folder(folder, queries, replies, split="train"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.query.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in queries))
    (folder / f"{split}.reply.tsv").write_text(
        "".join(f"{q}\t{r}\t{text}\t{label}\n" for q, r, text, label in replies))
    return folder


def test_a_question_asked_under_two_ids_is_one_question_in_one_split(tmp_path):
    queries = [(str(i), f"question {i % 10}") for i in range(30)]  # each text under 3 ids
    replies = [(str(i), r, f"reply {i} {r}", int(r == 0)) for i in range(30) for r in range(3)]
    data = load_dataset(str(_qa_folder(tmp_path / "qa", queries, replies)))
    where = {}
    for split, examples in data.splits.items():
        for example in examples:
            where.setdefault(example.text, set()).add(split)
    assert len(where) == 10 and all(len(splits) == 1 for splits in where.values())
    pairs = [(e.text, e.text_pair) for examples in data.splits.values() for e in examples]
    assert len(pairs) == len(set(pairs)) == 90  # 30 ids × 3 replies, all kept


def test_a_question_id_given_twice_is_refused(tmp_path):
    replies = [("0", 0, "yes", 1), ("1", 0, "no", 0), ("2", 0, "maybe", 1)]
    folder = _qa_folder(tmp_path / "twice", [("0", "a"), ("1", "b"), ("0", "c"), ("2", "d")],
                        replies)
    with pytest.raises(AdvembedError, match="train.query.tsv line 3: question id '0' is given "
                                            "twice"):
        load_dataset(str(folder))


def test_a_training_question_that_is_also_a_test_question_is_left_out_of_training(tmp_path):
    """Training questions a–e, test questions b and x ("b" asked again with other replies):
    the training "b" (id 1) is in neither train nor dev, the test set is kept whole (both of
    its questions, all 3 replies), and the description counts the one left out."""
    replies = [(str(i), r, f"reply {i} {r}", int(r == 0)) for i in range(5) for r in range(2)]
    folder = _qa_folder(tmp_path / "leak", [(str(i), t) for i, t in enumerate("abcde")],
                        replies)
    _qa_folder(folder, [("7", "b"), ("8", "x")],
               [("7", 0, "no", 0), ("7", 1, "yes", 1), ("8", 0, "yes", 1)], split="test")
    data = load_dataset(str(folder))
    trained = {e.text for split in ("train", "dev") for e in data.splits[split]}
    assert trained == {"a", "c", "d", "e"}
    assert [(e.text, e.text_pair) for e in data.splits["test"]] == [
        ("b", "no"), ("b", "yes"), ("x", "yes")]
    assert "1 training question(s) that are also test questions left out" in data.description


def test_a_training_set_left_without_enough_questions_says_why(tmp_path):
    replies = [("0", 0, "yes", 1), ("1", 0, "no", 0)]
    folder = _qa_folder(tmp_path / "all", [("0", "a"), ("1", "b")], replies)
    _qa_folder(folder, [("7", "b")], [("7", 0, "no", 0)], split="test")
    with pytest.raises(AdvembedError, match="has 1 question.s. with replies once 1 that are "
                                            "also test questions are left out; at least 2"):
        load_dataset(str(folder))
