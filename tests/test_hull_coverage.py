"""benchmarks/hull_coverage.py: each swap of a word attack is put in the right kind."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import byte_level_tokenizer, wordpiece_tokenizer
from test_attack_table import _load

from advembed.hull import synonym_table

coverage = _load("hull_coverage")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "great", "fine", "nice", "bad",
         "the", "un", "##real", "impro", "##ver"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return wordpiece_tokenizer(tmp_path_factory.mktemp("coverage"), VOCAB)


def test_each_swap_gets_its_kind(tokenizer):
    synonyms = {"good": ["great", "fine", "nice", "improver"], "bad": ["unreal"]}
    table = synonym_table(tokenizer, lambda w: synonyms.get(w, []), max_neighbours=2,
                          stopwords=set())

    def kind(word, substitute):
        return coverage.classify(tokenizer, table, True, word, substitute)

    assert kind("Good", "great") == "in the hull"  # folded like the table
    assert kind("good", "fine") == "in the hull"
    assert kind("good", "nice") == "outside the table"  # a synonym beyond the cap of 2
    assert kind("good", "bad") == "outside the table"
    assert kind("good", "improver") == "substitute in pieces"
    assert kind("unreal", "good") == "word in pieces"
    with_pieces = synonym_table(tokenizer, lambda w: synonyms.get(w, []), max_neighbours=2,
                                stopwords=set(), pieces=2)
    assert coverage.classify(tokenizer, with_pieces, True, "bad", "unreal") == "in the hull"
    assert coverage.classify(tokenizer, with_pieces, True, "good", "unreal") == (
        "substitute in pieces")  # not among good's entries
    assert coverage.classify(tokenizer, with_pieces, True, "good", "fine") == "in the hull"


def test_byte_level_swaps_are_read_in_their_after_a_space_spelling():
    tok = byte_level_tokenizer()
    synonyms = {"good": ["great", "goodmovie"]}
    table = synonym_table(tok, lambda w: synonyms.get(w, []), max_neighbours=4,
                          stopwords=set(), pieces=3)
    assert coverage.classify(tok, table, False, "good", "great") == "in the hull"  # Ġgreat
    assert coverage.classify(tok, table, False, "good", "goodmovie") == "in the hull"
    assert coverage.classify(tok, table, False, "good", "movie") == "outside the table"
    # bare "movie" is mo+vie, but a swapped word stands after a space: Ġmovie, one entry
    assert coverage.classify(tok, table, False, "movie", "good") == "outside the table"


def test_only_successful_swaps_at_the_temperature_are_read(tmp_path):
    records = [
        {"status": "successful", "temperature": 1.0, "changed_words": [[0, "a", "b"]]},
        {"status": "successful", "temperature": 100.0, "changed_words": [[1, "c", "d"]]},
        {"status": "failed", "temperature": 1.0, "changed_words": [[2, "e", "f"]]},
        {"status": "successful", "changed_words": [[3, "g", "h"], [5, "i", "j"]]},
    ]
    path = tmp_path / "attack-pwws.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert coverage.swaps(path, 1.0) == [("a", "b"), ("g", "h"), ("i", "j")]
    assert coverage.swaps(path, 100.0) == [("c", "d")]


def test_the_table_sums_the_runs_of_each_method():
    lines = coverage.table_lines({
        "r1": Counter({"in the hull": 3, "substitute in pieces": 1}),
        "plain": Counter({"outside the table": 5}),
        "r2": Counter({"in the hull": 1, "word in pieces": 3})},
        {"r1": "ascc", "plain": "none", "r2": "ascc"})
    assert lines[2] == "| r1 | 4 | 3 (75.0 %) | 0 (0.0 %) | 1 (25.0 %) | 0 (0.0 %) |"
    assert lines[-1] == ("| all `ascc` runs | 8 | 4 (50.0 %) | 3 (37.5 %) | 1 (12.5 %) "
                         "| 0 (0.0 %) |")
    assert len(lines) == 2 + 3 + 1  # a method of one run gets no sum


def test_the_swaps_on_offer_are_every_candidate_of_every_non_stop_word(tmp_path):
    records = [
        {"status": "failed", "temperature": 1.0, "original_text": "The film, bad-ish!"},
        {"status": "skipped", "temperature": 1.0, "original_text": "good"},
        {"status": "successful", "temperature": 100.0, "original_text": "good"},
    ]
    path = tmp_path / "attack-pwws.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    synonyms = {"film": ["movie", "Film", "picture"], "bad-ish": ["poor"], "The": ["x"]}
    assert coverage.offered(path, 1.0, lambda w: synonyms[w], {"the"}, fold=True) == [
        ("film", "movie"), ("film", "picture"), ("bad-ish", "poor")]  # TextAttack's words
    assert coverage.offered(path, 1.0, lambda w: synonyms[w], {"the"}, fold=False) == [
        ("film", "movie"), ("film", "Film"), ("film", "picture"), ("bad-ish", "poor")]


@pytest.mark.parametrize("method, saved, control, kind", [
    ("ascc", {"neighbours": 16}, 3, "substitute in pieces"),  # before --ascc-pieces: 1
    ("ascc", {"neighbours": 16, "pieces": 3}, 1, "in the hull"),
    ("none", {}, 1, "substitute in pieces"),
    ("none", {}, 3, "in the hull"),
])
def test_a_run_is_read_against_its_own_pieces_and_a_control_against_control_pieces(
        tmp_path, method, saved, control, kind):
    run = tmp_path / "run"
    tokenizer = wordpiece_tokenizer(tmp_path, VOCAB[:5] + ["film", "flic", "##k"])
    tokenizer.save_pretrained(run / "model")
    (run / "config.json").write_text(json.dumps({"method": method, "method_settings": saved}))
    record = {"status": "successful", "temperature": 1.0, "original_text": "film",
              "changed_words": [[0, "film", "flick"]]}  # WordNet: flick is a film; flic ##k
    (run / "attack-pwws.jsonl").write_text(json.dumps(record) + "\n")
    _, chosen, _ = coverage.measure(run, "pwws", 1.0, control_pieces=control)
    assert chosen == Counter({kind: 1})
