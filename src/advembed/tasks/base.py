"""What a task brings to training and evaluation, as ``transformers.Trainer`` takes
``compute_metrics`` and ``compute_loss_func``: the data, the model class, the collator, how the
loss is normalised, the metrics and which one picks the best checkpoint, the collapse baseline,
the representation objectives and drift compare, and the goal of word attacks.

Nothing outside ``tasks/`` knows which task it runs: the training loop, the methods, the
objectives and the evaluation ask the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from advembed.data.base import SPLITS
from advembed.errors import AdvembedError
from advembed.objectives.base import first_token_representation

__all__ = ["SPLITS", "LoadedModel", "Task"]


@dataclass
class LoadedModel:
    """A model, its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    source: str


def require_saved_model(model_dir: Path) -> None:
    """A run's saved model folder holds a model config and a tokenizer (one line otherwise,
    naming what is missing, not the loader's ``TypeError`` on a ``None`` path)."""
    if not (model_dir / "config.json").is_file():
        raise AdvembedError(f"run has no saved model: '{model_dir}' is missing config.json")
    if not any((model_dir / name).is_file() for name in ("tokenizer.json",
                                                          "tokenizer_config.json")):
        raise AdvembedError(f"run's model folder '{model_dir}' has no tokenizer "
                            "(tokenizer.json / tokenizer_config.json are missing)")


def require_splits(data, spec: str) -> None:
    """One line naming the dataset and split when a split is empty."""
    for split in SPLITS:
        if not data.splits.get(split):
            raise AdvembedError(f"dataset '{spec}' has an empty {split} split")


class Task:
    """Base class; subclasses set the class attributes and implement the data and model hooks.

    ``token_level``: the model's loss is a mean over tokens (language modelling, translation),
    so gradient accumulation must weight each micro-batch by its share of the target tokens
    (:meth:`count_items`); sequence-level losses are means over examples.  ``cut_stream``: its
    inputs are fixed-size blocks cut from one token stream (language modelling), so a block's
    first and last pieces may belong to words that go on outside it.
    """

    name: ClassVar[str] = "task"
    description: ClassVar[str] = ""
    metric_names: ClassVar[tuple[str, ...]] = ()
    metric_labels: ClassVar[dict[str, str]] = {}  # how the command line names a metric
    best_metric: ClassVar[str] = "loss"
    greater_is_better: ClassVar[bool] = False
    token_level: ClassVar[bool] = False
    cut_stream: ClassVar[bool] = False

    # --- data and model ----------------------------------------------------------------
    def load_data(self, options, *, limit: int | None = None, seed: int = 0):
        """The dataset named by ``options`` (:class:`~advembed.data.options.DataOptions`), at
        most ``limit`` examples per split, with non-empty train, dev and test splits."""
        raise NotImplementedError

    def build_model(self, name: str, data, *, random_init: bool = False) -> LoadedModel:
        """The model to fine-tune: pretrained weights of ``name`` (a fresh head where the task
        needs one), or with ``random_init`` the same architecture randomly initialised."""
        raise NotImplementedError

    def load_saved(self, model_dir: Path) -> LoadedModel:
        """A model saved by ``advembed train`` (``RUN/model``)."""
        raise NotImplementedError

    def encode(self, examples, tokenizer, *, max_length: int, with_index: bool = False):
        """A ``torch`` dataset of model inputs; ``with_index`` adds ``example_index``."""
        raise NotImplementedError

    def collator(self, tokenizer):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def check_run_config(self, run_config: dict[str, Any], run: Path) -> None:
        """Refuse a run's ``config.json`` that lacks what this task reads back (default:
        accept)."""

    def check_run_data(self, run_config: dict[str, Any], data, spec: str) -> None:
        """Refuse data a saved run cannot be evaluated on (default: accept)."""

    # --- loss, metrics, checkpoints --------------------------------------------------------
    def count_items(self, inputs: dict[str, Any]) -> int | torch.Tensor:
        """How many items the model's loss averages over in this batch (token-level tasks)."""
        labels = inputs["labels"]
        return (labels != -100).sum()

    def compute_metrics(self, eval_prediction) -> dict[str, float]:
        """``transformers.Trainer`` hook (default: the loss only)."""
        return {}

    def use_max_length(self, max_length: int) -> None:
        """The run's final ``--max-length`` (after fitting it to the model), given once before
        training encodes or evaluates anything: a task that generates text (translation)
        decodes up to it.  A saved run's comes back through :meth:`load_run_state`.  Default:
        nothing to do."""

    def set_split(self, split: str) -> None:
        """The split the next evaluations score (training evaluates dev; the final test
        evaluation says so first): a task that tunes on dev (QA matching's threshold) must not
        tune on test.  Default: nothing to do."""

    def run_state(self) -> dict[str, Any]:
        """What the task learned besides the weights, recorded in ``config.json`` (default:
        nothing)."""
        return {}

    def load_run_state(self, config: dict[str, Any]) -> None:
        """Restore :meth:`run_state` from a saved run's ``config.json`` (default: nothing)."""

    def evaluate(self, model, tokenizer, examples, *, batch_size: int = 64,
                 max_length: int = 128, progress: bool = False) -> dict[str, float]:
        """Metrics of a trained model on ``examples`` (``advembed eval``)."""
        raise NotImplementedError

    def collapse_baseline(self, examples, tokenizer=None, *,
                          max_length: int = 128) -> float | None:
        """The best metric of a trivial predictor on ``examples`` (the dev split, encoded as
        training encodes it with ``tokenizer`` and ``max_length`` where the task needs that);
        a run at it after its first judged evaluation has collapsed (``None``: no check)."""
        return None

    def report_columns(self) -> list[tuple[str, str, str, str]]:
        """``(metrics split, metric, header, meaning)`` of the report's metric columns."""
        return [("test", name, f"test {name}", f"{name} on the test split")
                for name in self.metric_names] + [
            ("best_dev", self.best_metric, f"best dev {self.best_metric}",
             f"{self.best_metric} on dev at the best checkpoint")]

    def summary(self, metrics: dict[str, Any]) -> str:
        """One line of the final metrics, for the command line."""
        best, test = metrics["best_dev"], metrics["test"]
        shown = [(name, best.get(name), test.get(name)) for name in self.metric_names]
        return ", ".join(f"dev {n} {d:.4f}, test {n} {t:.4f}" for n, d, t in shown
                         if d is not None and t is not None)

    # --- what objectives, drift and attacks see -----------------------------------------------
    def decision_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits whose argmax is the task's decision (attacks count "correct" by it; default:
        the model's own logits, the decision being their argmax)."""
        return logits

    def representation(self, outputs: Any, inputs: dict[str, Any] | None = None) -> torch.Tensor:
        """``(batch, hidden)`` representation of each example (objectives, drift)."""
        return first_token_representation(outputs, inputs)

    def train_labels(self, data) -> list[int] | None:
        """One label per training example, for objectives that sample by label (CARL)."""
        return None

    def record(self, data) -> dict[str, Any]:
        """What ``config.json`` records about the data beside the options."""
        return {}

    def word_attack_goal(self, textattack, wrapper, *, query_budget: float, batch_size: int):
        """The TextAttack goal function of word-substitution attacks on this task."""
        raise AdvembedError(f"task '{self.name}' has no word-substitution attacks")

    def check_input(self, text: str, pair: str | None, run_config: dict[str, Any]) -> None:
        """Refuse an input ``predict`` cannot answer, before the model loads (default: none)."""

    def predict(self, loaded: LoadedModel, text: str, pair: str | None,
                run_config: dict[str, Any]) -> dict[str, Any]:
        """``advembed predict``: the model's answer for one input, JSON-ready."""
        raise AdvembedError(f"task '{self.name}' has no predict command")


GREEDY: dict[str, Any] = {
    "do_sample": False, "num_beams": 1, "num_beam_groups": 1, "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0, "repetition_penalty": 1.0, "min_length": 0,
    "min_new_tokens": None, "bad_words_ids": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "diversity_penalty": 0.0,
}
"""``generate`` options for plain greedy decoding: the argmax at every step, whatever search
settings (n-gram blocking, penalties, minimum lengths) a saved generation config carries."""


def token_nll_and_count(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(batch, 2)``: per example, the summed NLL of its target tokens and how many there
    are (labels ``-100`` ignored); ``logits[:, t]`` predicts ``labels[:, t]`` (shift a causal
    LM's first, :func:`advembed.tasks.lm.nll_and_count`)."""
    nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels,
                                            ignore_index=-100, reduction="none")
    count = (labels != -100).sum(1).to(nll.dtype)
    return torch.stack([nll.sum(1), count], dim=1)
