"""Classification of single sentences and sentence pairs (one label per example).

Models are ``AutoModelForSequenceClassification`` with a fresh head; the loss is the model's
cross-entropy, a mean over examples; metrics are accuracy and macro-F1, the best checkpoint is
the one with the best dev accuracy, and a run whose dev accuracy is at the majority-label share
after its first evaluation has collapsed.  Objectives and drift use the first token's final
state; word attacks are untargeted (any other label).  Pairs: tokenised as pairs, and word
attacks change the second sentence only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from advembed.decoders import reads_last_token
from advembed.errors import AdvembedError
from advembed.objectives.base import first_token_representation, last_token_representation
from advembed.tasks.base import LoadedModel, Task, require_splits


class ClassificationTask(Task):
    name = "classification"
    description = "single sentences or sentence pairs, one label each (accuracy, macro-F1)"
    metric_names = ("accuracy", "macro_f1", "ece")
    metric_labels = {"macro_f1": "macro-F1", "ece": "ECE"}
    best_metric = "accuracy"
    greater_is_better = True

    def load_data(self, options, *, limit=None, seed=0):
        data = options.load()
        if limit:
            data = data.limit(limit, seed=seed)
        require_splits(data, options.dataset)
        if not data.label_names:
            raise AdvembedError(f"dataset '{options.dataset}' has no labels (a text corpus: "
                                "--task lm models it)")
        seen = sorted({example.label for example in data.splits["train"]})
        if len(seen) < 2:  # a one-label head would silently become a regression head
            names = ", ".join(repr(data.label_names[i]) for i in seen)
            raise AdvembedError(f"dataset '{options.dataset}' has one class ({names}) in its "
                                "training split: a classifier needs at least two")
        return data

    def build_model(self, name, data, *, random_init=False):
        from advembed.models import load_classifier
        from advembed.scratch import is_scratch, scratch_classifier

        if is_scratch(name):  # random by definition; its vocabulary from the training split
            texts = [t for e in data.splits["train"] for t in (e.text, e.text_pair) if t]
            model, tokenizer = scratch_classifier(name, data.label_names, texts)
            return LoadedModel(model, tokenizer, f"{name} (vocabulary of the training split)")

        loaded = load_classifier(name, data.label_names, random_init=random_init)
        self._reads_last = reads_last_token(loaded.model)
        return LoadedModel(loaded.model, loaded.tokenizer, loaded.source)

    def load_saved(self, model_dir: Path) -> LoadedModel:
        from advembed.models import load_saved_classifier

        loaded = load_saved_classifier(model_dir)
        self._reads_last = reads_last_token(loaded.model)
        return LoadedModel(loaded.model, loaded.tokenizer, loaded.source)

    _reads_last = False  # a decoder classifier was loaded: its head reads the last token

    def representation(self, outputs, inputs=None):
        """The state the classifier head reads: ``[CLS]``'s, or a decoder classifier's last
        real token's (left-padded: the last position) — what drift and objectives compare."""
        if self._reads_last:
            return last_token_representation(outputs, inputs)
        return first_token_representation(outputs, inputs)

    def encode(self, examples, tokenizer, *, max_length, with_index=False):
        from advembed.encoding import EncodedDataset

        return EncodedDataset(examples, tokenizer, max_length=max_length, with_index=with_index)

    def check_run_config(self, run_config, run):
        names = run_config.get("label_names")
        if not (isinstance(names, list) and len(names) >= 2
                and all(isinstance(name, str) for name in names)):
            raise AdvembedError(f"run '{run}': config.json's label_names must be a list of at "
                                "least two label names (edited by hand?)")

    def check_run_data(self, run_config, data, spec):
        recorded_pair = run_config.get("is_pair")
        if recorded_pair is not None and bool(data.is_pair) != bool(recorded_pair):
            kinds = ("single sentences", "sentence pairs")
            raise AdvembedError(f"dataset '{spec}' holds {kinds[bool(data.is_pair)]}, but the "
                                f"run was trained on {kinds[bool(recorded_pair)]}")
        if data.label_names != run_config["label_names"]:
            raise AdvembedError(
                f"dataset '{spec}' has labels {data.label_names}, but the run was trained on "
                f"{run_config['label_names']}")

    def compute_metrics(self, eval_prediction):
        from advembed.metrics import compute_metrics

        return compute_metrics(eval_prediction)

    def evaluate(self, model, tokenizer, examples, *, batch_size=64, max_length=128,
                 progress=False):
        import numpy as np

        from advembed.inference import predict_logits
        from advembed.metrics import classification_metrics

        logits = predict_logits(model, tokenizer, examples, batch_size=batch_size,
                                max_length=max_length, progress=progress)
        return classification_metrics(logits, np.array([example.label for example in examples]))

    def collapse_baseline(self, examples, tokenizer=None, *, max_length=128):
        """Accuracy of always predicting the most frequent label of ``examples``."""
        counts = Counter(example.label for example in examples)
        return max(counts.values()) / sum(counts.values())

    def report_columns(self):
        return [("test", "accuracy", "test acc", "clean test accuracy"),
                ("test", "macro_f1", "test macro-F1", "clean test macro-F1"),
                ("test", "ece", "test ECE", "expected calibration error of the test "
                 "predictions (15 bins; 0 = calibrated, high = miscalibrated: over- or "
                 "under-confident)"),
                ("best_dev", "accuracy", "best dev acc", "accuracy on dev at the best epoch")]

    def summary(self, metrics):
        best, test = metrics["best_dev"], metrics["test"]
        return (f"dev accuracy {best['accuracy']:.4f}, test accuracy {test['accuracy']:.4f}, "
                f"test macro-F1 {test['macro_f1']:.4f}")

    def train_labels(self, data):
        return [example.label for example in data.splits["train"]]

    def record(self, data) -> dict[str, Any]:
        return {"label_names": data.label_names, "is_pair": data.is_pair}

    def word_attack_goal(self, textattack, wrapper, *, query_budget, batch_size):
        from textattack.goal_functions import UntargetedClassification

        return UntargetedClassification(wrapper, query_budget=query_budget,
                                        model_batch_size=batch_size)

    def check_input(self, text, pair, run_config):
        if not text.strip():
            raise AdvembedError("the text to classify is empty")
        if run_config.get("is_pair") and pair is None:
            raise AdvembedError("this run classifies sentence pairs: pass the second one with "
                                "--pair")
        if not run_config.get("is_pair") and pair is not None:
            raise AdvembedError("this run classifies single sentences: --pair does not apply")

    def predict(self, loaded, text, pair, run_config):
        return self.labelled(self.predict_logits(loaded, text, pair, run_config), run_config)

    def predict_logits(self, loaded, text, pair, run_config):
        """The model's class logits for one input (checked first)."""
        from advembed.data import Example
        from advembed.inference import predict_logits

        self.check_input(text, pair, run_config)
        example = Example(text=text, label=0, text_pair=pair)
        return predict_logits(loaded.model, loaded.tokenizer, [example],
                              max_length=run_config.get("max_length", 128))[0]

    def labelled(self, logits, run_config):
        """The likeliest label and every label's probability, from one input's logits."""
        import torch

        probabilities = torch.softmax(torch.from_numpy(logits), dim=-1)
        if not bool(torch.isfinite(probabilities).all()):
            raise AdvembedError("the model's scores for this text are not finite")
        probabilities = probabilities.tolist()
        names = run_config["label_names"]
        best = max(range(len(names)), key=lambda i: probabilities[i])
        return {"label": names[best],
                "probabilities": dict(zip(names, probabilities, strict=True))}
