"""Question–answer matching (paper 000): each (question, reply) pair classified answer / not
answer, scored by the F1 of the *answer* class.

The model is the classification task's (pairs tokenised as pairs, a two-way head); what
differs is the metric.  The decision threshold on P(answer) is chosen on dev — the one with the
best dev F1 — and applied unchanged to test: every dev evaluation (each epoch, and the final
one of the best checkpoint) re-chooses it, the test evaluation only reads it, and the run
records it in ``config.json`` (``qa_threshold``) so ``advembed eval`` scores with the same one.
The best checkpoint is the one with the best dev F1.  Data: a folder in paper 000's format
(:mod:`advembed.data.qa`), split by question.
"""

from __future__ import annotations

import numpy as np
import torch

from advembed.data.qa import QA_LABELS
from advembed.errors import AdvembedError
from advembed.tasks.base import SPLITS
from advembed.tasks.classification import ClassificationTask


def answer_probability(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted[:, 1] / shifted.sum(axis=-1)


def scores_at(probability: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """F1, precision and recall of the answer class (label 1) and accuracy, predicting
    "answer" where ``probability >= threshold``."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    predicted = (probability >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, average="binary", pos_label=1, zero_division=0)
    return {"f1": float(f1), "precision": float(precision), "recall": float(recall),
            "accuracy": float(accuracy_score(labels, predicted)), "threshold": float(threshold)}


def best_threshold(probability: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the best F1 among the midpoints between sorted distinct
    probabilities (and 0.5, and 0: everything an answer — on test too, where a score below
    dev's lowest would fail the lowest dev probability as a threshold); ties go to the one
    closest to 0.5, then to the higher.

    Every candidate is scored at once from cumulative counts over the sorted probabilities
    (O(n log n); one :func:`scores_at` per candidate was O(n²): 10.9 s on 3,122 dev pairs),
    with sklearn's F1, ``2·TP / (true + predicted)`` in float64, so the choice is the same."""
    probability, positive = np.asarray(probability), np.asarray(labels) == 1
    values = np.unique(probability)
    candidates = np.concatenate([[0.5], (values[:-1] + values[1:]) / 2, [0.0]])
    order = np.argsort(probability, kind="stable")
    ascending = probability[order]
    positives_below = np.concatenate([[0], np.cumsum(positive[order])])
    below = np.searchsorted(ascending.astype(np.float64), candidates, side="left")
    true_positives = positive.sum() - positives_below[below]  # answered (p ≥ t) and answers
    predicted = len(probability) - below
    denominator = positive.sum() + predicted.astype(np.float64)
    f1 = np.divide(2.0 * true_positives, denominator, out=np.zeros(len(candidates)),
                   where=denominator > 0)
    best = np.lexsort((candidates, -np.abs(candidates - 0.5), f1))[-1]
    return float(candidates[best])


class QAMatchingTask(ClassificationTask):
    name = "qa-matching"
    description = ("question–answer matching: (question, reply) pairs, F1 of the answer class "
                   "at a threshold chosen on dev (paper 000)")
    metric_names = ("f1", "precision", "recall", "accuracy", "threshold")
    metric_labels = {"f1": "F1 (answer)"}
    best_metric = "f1"
    greater_is_better = True

    def __init__(self) -> None:
        self.threshold = 0.5
        self._split = "dev"

    def load_data(self, options, *, limit=None, seed=0):
        """Only data grouped by question: a folder in paper 000's format or a named QA set
        (labels ``not-answer``, ``answer``).  A table of pairs would be split by pair, so one
        question's replies land in train and test, and its label names sort as strings, so
        F1 might be scored on the not-answer class."""
        data = super().load_data(options, limit=limit, seed=seed)
        if len(data.label_names) != 2 or not data.is_pair:
            raise AdvembedError(f"task qa-matching needs (question, reply) pairs with two "
                                f"labels (not answer, answer); dataset '{options.dataset}' has "
                                f"{len(data.label_names)} labels"
                                f"{'' if data.is_pair else ' and single texts'}")
        if tuple(data.label_names) != QA_LABELS:
            raise AdvembedError(
                f"task qa-matching needs data grouped by question: dataset "
                f"'{options.dataset}' has labels {data.label_names}, not {list(QA_LABELS)}; "
                "give a folder of train.query.tsv / train.reply.tsv (paper 000's format, "
                "README) or a named QA set such as help-qa-en, so that splits keep each "
                "question's replies together")
        return data

    def set_split(self, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        self._split = split

    def run_state(self):
        return {"qa_threshold": self.threshold}

    def load_run_state(self, config):
        value = config.get("qa_threshold")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        self.threshold = float(value) if ok else 0.5  # check_run_config refuses the rest
        self._split = "test"  # a saved run's threshold is fixed

    def check_run_config(self, run_config, run):
        super().check_run_config(run_config, run)
        value = run_config.get("qa_threshold")
        if (not isinstance(value, (int, float)) or isinstance(value, bool)
                or not 0.0 <= value <= 1.0):
            raise AdvembedError(f"run '{run}': config.json's qa_threshold must be the dev "
                                f"threshold, a number in [0, 1] (found {value!r}; edited by "
                                "hand, or a run that did not finish?)")

    def decision_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``(0, m)`` per row (float64), ``m = z₁ − z₀ − logit t``, t the threshold: its argmax
        is "answer" exactly where :func:`scores_at` says so, ``P(answer) ≥ t``
        (σ(z₁ − z₀) ≥ t ⇔ z₁ − z₀ ≥ logit t), so an attack flips the decision the task scores,
        not the argmax at 0.5; its softmax is σ(m), monotone in P(answer).  Where rounding
        puts m on the wrong side of 0 (a score at the threshold itself: ``best_threshold`` can
        pick a dev score), m becomes ±1e-12, on the side of the rule."""
        z = logits.detach().double()
        answer = torch.from_numpy(answer_probability(z.cpu().numpy()) >= self.threshold)
        margin = z[:, 1] - z[:, 0] - torch.logit(torch.tensor(self.threshold, dtype=z.dtype))
        margin = margin.clamp(min=-1e4, max=1e4)  # t = 0 or 1: ±inf, which softmax cannot take
        answer = answer.to(margin.device)
        margin = torch.where(answer, margin.clamp(min=1e-12), margin.clamp(max=-1e-12))
        return torch.stack([torch.zeros_like(margin), margin], dim=-1)

    def predict(self, loaded, text, pair, run_config):
        """The classification task's answer, labelled by P(answer) against the run's dev
        threshold (as ``eval`` and ``attack`` decide), not by the argmax at 0.5."""
        logits = self.predict_logits(loaded, text, pair, run_config)
        answer = self.labelled(logits, run_config)
        names = run_config["label_names"]
        # P(answer) in float64 from the logits, as eval and attack compute it (a float32
        # softmax rounds to 1 within 6e-8 of it and could decide otherwise)
        answered = bool(answer_probability(logits[None])[0] >= self.threshold)
        return answer | {"label": names[1] if answered else names[0],
                         "threshold": self.threshold}

    def metrics(self, logits, labels) -> dict[str, float]:
        probability = answer_probability(logits)
        labels = np.asarray(labels)
        if self._split == "dev":
            self.threshold = best_threshold(probability, labels)
        return scores_at(probability, labels, self.threshold)

    def compute_metrics(self, eval_prediction):
        logits = eval_prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        return self.metrics(logits, eval_prediction.label_ids)

    def evaluate(self, model, tokenizer, examples, *, batch_size=64, max_length=128,
                 progress=False):
        from advembed.inference import predict_logits

        logits = predict_logits(model, tokenizer, examples, batch_size=batch_size,
                                max_length=max_length, progress=progress)
        return self.metrics(logits, [example.label for example in examples])

    def collapse_baseline(self, examples, tokenizer=None, *, max_length=128):
        """F1 of answering "answer" to everything (the trivial predictor's best F1)."""
        positives = sum(example.label == 1 for example in examples)
        return 2 * positives / (positives + len(examples)) if positives else 0.0

    def report_columns(self):
        return [("test", "f1", "test F1", "F1 of the answer class on test, at the dev "
                 "threshold"),
                ("test", "precision", "test precision", "answer-class precision on test"),
                ("test", "recall", "test recall", "answer-class recall on test"),
                ("best_dev", "f1", "best dev F1", "dev F1 at the best epoch")]

    def summary(self, metrics):
        best, test = metrics["best_dev"], metrics["test"]
        return (f"dev F1 {best['f1']:.4f}, test F1 {test['f1']:.4f} (precision "
                f"{test['precision']:.4f}, recall {test['recall']:.4f}, threshold "
                f"{test['threshold']:.3f})")
