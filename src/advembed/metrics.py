"""Classification metrics (scikit-learn) shared by training, evaluation and attacks."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 of ``argmax(logits)`` against integer ``labels``."""
    predictions = np.asarray(logits).argmax(axis=-1)
    labels = np.asarray(labels)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
    }


def compute_metrics(eval_prediction) -> dict[str, float]:
    """``transformers.Trainer`` hook: metrics from an ``EvalPrediction``."""
    logits = eval_prediction.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    return classification_metrics(logits, eval_prediction.label_ids)
