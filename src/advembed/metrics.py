"""Classification metrics (scikit-learn) shared by training, evaluation and attacks."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

ECE_BINS = 15


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 of ``argmax(logits)`` against integer ``labels``, and the expected
    calibration error of the softmax confidence."""
    logits = np.asarray(logits, dtype=np.float64)
    predictions = logits.argmax(axis=-1)
    labels = np.asarray(labels)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "ece": expected_calibration_error(logits, labels),
    }


def expected_calibration_error(logits: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """ECE (Guo et al. 2017): the examples put in ``bins`` equal-width bins of confidence
    ``max softmax``; the mean over bins of |accuracy − mean confidence| weighted by the share of
    examples in the bin.  0 for a calibrated model; an over-confident one scores high."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
    confidence = probabilities.max(axis=-1)
    correct = probabilities.argmax(axis=-1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def compute_metrics(eval_prediction) -> dict[str, float]:
    """``transformers.Trainer`` hook: metrics from an ``EvalPrediction``."""
    logits = eval_prediction.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    return classification_metrics(logits, eval_prediction.label_ids)
