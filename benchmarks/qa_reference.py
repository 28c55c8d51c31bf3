"""Reference rows for question–answer matching tables (paper 000's task): the scores a model
has to beat, computed without training a network.

- *every reply answers*: predicting "answer" for every pair, the best F1 a predictor that
  ignores its input can reach (the task's collapse bar);
- *TF-IDF cosine*: the cosine of the question's and the reply's TF-IDF vectors as the score,
  the threshold chosen on dev with the task's own rule (:func:`best_threshold`) and applied
  unchanged to test.  The vocabulary and IDF are fitted on the training split's questions and
  replies only.  Words are runs of letters and digits, lower-cased; each CJK character is a
  word of its own, so the same rule serves ``help-qa-zh``.

- *the reply's training labels, question ignored*: "answer" unless the reply answers some
  training question (a paragraph answers the one section it stands in).  It reads no question,
  so on data split so that no reply recurs it is the every-reply row; above that row it
  measures how much a split leaks through replies shared across splits (``help-qa`` split by
  question, v4: test F1 0.562 on ``-en``, above ESIM).

A learned model below the TF-IDF row has not learned even the lexical overlap that decides
many pairs.
"""

from __future__ import annotations

import re

import numpy as np

TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_\u3400-\u9fff\uf900-\ufaff]+")


def words(text: str) -> list[str]:
    """Lower-cased word runs; each CJK ideograph on its own."""
    return TOKEN.findall(text.lower())


def fit_tfidf(train):
    """A TF-IDF vectorizer with the vocabulary and IDF of ``train`` (questions and replies)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=words, sublinear_tf=True)
    return vectorizer.fit([e.text for e in train] + [e.text_pair for e in train])


def cosine(vectorizer, examples) -> np.ndarray:
    """Cosine of each example's question and reply vectors (rows are L2-normed)."""
    questions = vectorizer.transform([e.text for e in examples])
    replies = vectorizer.transform([e.text_pair for e in examples])
    return np.asarray(questions.multiply(replies).sum(axis=1)).ravel()


def tfidf_cosine(train, examples) -> np.ndarray:
    """Cosine of question and reply TF-IDF vectors for each of ``examples``, with the
    vocabulary and IDF of ``train``."""
    return cosine(fit_tfidf(train), examples)


def reference_scores(data) -> list[tuple[str, dict, dict]]:
    """``(label, dev scores, test scores)`` of the reference predictors on ``data`` (a
    QA-matching :class:`TextDataset`); scores as the task reports them (f1, precision, …)."""
    from advembed.tasks.qa_matching import best_threshold, scores_at

    dev, test = data.splits["dev"], data.splits["test"]
    dev_labels = np.array([e.label for e in dev])
    test_labels = np.array([e.label for e in test])
    rows = [("every reply answers", scores_at(np.ones(len(dev)), dev_labels, 0.5),
             scores_at(np.ones(len(test)), test_labels, 0.5))]
    vectorizer = fit_tfidf(data.splits["train"])  # fitted once, for dev and test
    dev_score = cosine(vectorizer, dev)
    threshold = best_threshold(dev_score, dev_labels)
    rows.append(("TF-IDF cosine of question and reply, threshold chosen on dev",
                  scores_at(dev_score, dev_labels, threshold),
                  scores_at(cosine(vectorizer, test), test_labels, threshold)))
    answers = {e.text_pair for e in data.splits["train"] if e.label == 1}
    rows.append(("the reply's training labels, question ignored",
                 scores_at(unanswering(answers, dev), dev_labels, 0.5),
                 scores_at(unanswering(answers, test), test_labels, 0.5)))
    return rows


def unanswering(answers: set[str], examples) -> np.ndarray:
    """1 for each example whose reply is not among ``answers`` (the training answers)."""
    return np.array([float(e.text_pair not in answers) for e in examples])


def reference_lines(dataset: str, metric: str, limit: int | None = None,
                    expected: dict | None = None,
                    expected_sizes: dict | None = None) -> list[str]:
    """The reference rows of ``dataset`` in :mod:`quality`'s table columns; ``expected``: the
    runs' ``data_sha256``, which today's build of the dataset must match (else the rows would
    score other splits than the runs did; exits in one line); ``expected_sizes``: the runs'
    ``split_sizes``, the weaker check for runs from before fingerprints were recorded."""
    from advembed.data.options import DataOptions
    from advembed.tasks import get_task

    data = get_task("qa-matching").load_data(DataOptions(dataset=dataset, split_seed=2024),
                                              limit=limit)
    today_sizes = {split: len(examples) for split, examples in data.splits.items()}
    if ((expected is not None and data.fingerprints() != expected)
            or (expected_sizes is not None and today_sizes != expected_sizes)):
        what = "data_sha256" if expected is not None else "split_sizes"
        raise SystemExit(f"qa_reference.py: {dataset} as built today is not the data the runs "
                         f"saw ({what} in their config.json); reference rows would score "
                         "other splits")
    return [f"| {dataset} | *{label}* | – | {dev[metric]:.4f} | {test[metric]:.4f} |  |  |  |"
            for label, dev, test in reference_scores(data)]
