"""Fine-tuning orchestration on ``transformers.Trainer``.

``run_training(TrainConfig(...))`` loads the data and model, trains with dev evaluation every
epoch, keeps the best checkpoint by dev accuracy, evaluates it on test and writes the run
directory (``config.json``, ``metrics.json``, ``model/`` as safetensors) atomically.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from advembed.errors import AdvembedError
from advembed.runs import CONFIG_FILE, METRICS_FILE, MODEL_DIR, staged_run_dir, write_json

SPLITS = ("train", "dev", "test")


@dataclass
class TrainConfig:
    """Everything needed to reproduce a run; saved as the run's ``config.json``."""

    dataset: str = "mr"
    model: str = "default"
    output: str | None = None
    epochs: float = 3.0
    batch_size: int = 32
    eval_batch_size: int = 64
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 128
    seed: int = 13
    split_seed: int = 2024
    max_steps: int | None = None
    limit: int | None = None
    gradient_accumulation_steps: int = 1
    group_by_length: bool = True
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    method: str = "none"
    method_options: dict[str, Any] = field(default_factory=dict)
    objective: str = "ce"
    objective_options: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    keep_checkpoints: bool = False
    progress: bool = True

    def output_dir(self) -> Path:
        if self.output:
            return Path(self.output)
        dataset = Path(self.dataset).stem if Path(self.dataset).exists() else self.dataset
        dataset = dataset.replace(":", "-").replace("/", "-")
        method = self.method if self.objective == "ce" else f"{self.method}+{self.objective}"
        return Path("runs") / f"{dataset}-{method}-s{self.seed}"

    def validate(self) -> None:
        positive = {
            "epochs": self.epochs,
            "batch-size": self.batch_size,
            "eval-batch-size": self.eval_batch_size,
            "lr": self.lr,
            "max-length": self.max_length,
            "gradient-accumulation-steps": self.gradient_accumulation_steps,
        }
        for name, value in positive.items():
            if not value > 0:
                raise AdvembedError(f"option --{name} must be positive, got {value}")
        for name, value in {"max-steps": self.max_steps, "limit": self.limit}.items():
            if value is not None and value <= 0:
                raise AdvembedError(f"option --{name} must be positive, got {value}")
        if not 0 <= self.warmup_ratio < 1:
            raise AdvembedError(f"option --warmup-ratio must be in [0, 1), got {self.warmup_ratio}")


def load_data(config: TrainConfig):
    """Load and (optionally) limit the dataset named in ``config``; check no split is empty."""
    from advembed.data import load_dataset

    dataset = load_dataset(
        config.dataset,
        text_column=config.text_column,
        text_pair_column=config.text_pair_column,
        label_column=config.label_column,
        split_seed=config.split_seed,
    )
    if config.limit:
        dataset = dataset.limit(config.limit, seed=config.seed)
    for split in SPLITS:
        if not dataset.splits.get(split):
            raise AdvembedError(f"dataset '{config.dataset}' has an empty {split} split")
    return dataset


def _dev_history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    rows = []
    for entry in log_history:
        if "eval_accuracy" in entry:
            rows.append(
                {
                    "epoch": round(float(entry.get("epoch", 0.0)), 4),
                    "step": int(entry.get("step", 0)),
                    "accuracy": entry["eval_accuracy"],
                    "macro_f1": entry["eval_macro_f1"],
                    "loss": entry["eval_loss"],
                }
            )
    return rows


def _strip_prefix(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    keep = ("accuracy", "macro_f1", "loss")
    return {key: metrics[f"{prefix}_{key}"] for key in keep if f"{prefix}_{key}" in metrics}


def _chance_accuracy(examples) -> float:
    """Accuracy of always predicting the most frequent label of ``examples``."""
    counts = np.bincount([example.label for example in examples])
    return float(counts.max() / counts.sum())


class CollapseGuard(TrainerCallback):
    """Stop training with a warning when dev accuracy after the first evaluation is at chance.

    A too-large perturbation radius can collapse a model to predicting one class; finishing
    the run silently would waste the remaining epochs and hide the problem.  Active for
    adversarial methods only: plain fine-tuning is the reference and runs its full course.
    """

    def __init__(self, chance: float, margin: float = 0.01, active: bool = True) -> None:
        self.chance, self.margin, self.active = chance, margin, active
        self.collapsed = False
        self._evaluations = 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._evaluations += 1
        accuracy = (metrics or {}).get("eval_accuracy")
        if self.active and self._evaluations == 1 and accuracy is not None:
            if accuracy <= self.chance + self.margin:
                self.collapsed = True
                control.should_training_stop = True
                warnings.warn(
                    f"training collapsed: dev accuracy {accuracy:.4f} after the first epoch is at "
                    f"chance ({self.chance:.4f}, always the majority label); stopping. Lower the "
                    "perturbation size (--adv-epsilon / --adv-alpha) or the learning rate.",
                    stacklevel=2,
                )
        return control


def build_method(config: TrainConfig, model, tokenizer=None, train_labels=None,
                 total_steps: int | None = None):
    """The training method named by ``config.method`` (``none`` = plain fine-tuning), with
    the objective named by ``config.objective`` (``ce`` = adversarial cross-entropy only)."""
    from advembed.methods import build_training_method
    from advembed.objectives import build_objective

    objective = build_objective(
        config.objective, model, tokenizer=tokenizer, train_labels=train_labels,
        total_steps=total_steps, seed=config.seed, **config.objective_options,
    )
    if config.method == "none" and objective is None:
        return None
    return build_training_method(config.method, model, objective=objective,
                                 **config.method_options)


def run_training(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate and write the run directory; return the metrics dictionary."""
    import torch
    import transformers
    from transformers import DataCollatorWithPadding, TrainingArguments, set_seed

    from advembed import __version__
    from advembed.encoding import EncodedDataset
    from advembed.metrics import compute_metrics
    from advembed.models import load_classifier
    from advembed.objectives import objective_settings
    from advembed.trainer import AdvTrainer

    config.validate()
    output = config.output_dir()
    if output.exists() and not config.overwrite:
        raise AdvembedError(f"output directory '{output}' already exists (pass --overwrite)")
    dataset = load_data(config)
    set_seed(config.seed)
    loaded = load_classifier(config.model, dataset.label_names)
    model, tokenizer = loaded.model, loaded.tokenizer
    encoded = {
        split: EncodedDataset(dataset.splits[split], tokenizer, max_length=config.max_length,
                              with_index=split == "train")
        for split in SPLITS
    }
    per_step = config.batch_size * config.gradient_accumulation_steps
    planned = config.max_steps or math.ceil(
        math.ceil(len(encoded["train"]) / per_step) * config.epochs)
    method = build_method(config, model, tokenizer,
                          [example.label for example in dataset.splits["train"]], planned)
    # FreeAT replays each minibatch m times and divides the epochs by m (Shafahi et al.).
    replays = getattr(method, "replays", 1)
    if replays > 1 and config.gradient_accumulation_steps > 1:
        raise AdvembedError("method freeat does not combine with --gradient-accumulation-steps")
    epochs = config.epochs / replays
    steps_per_epoch = max(1, math.ceil(len(encoded["train"]) / per_step)) * replays
    total_steps = config.max_steps or math.ceil(steps_per_epoch * epochs)
    eval_every = min(steps_per_epoch, total_steps)

    with staged_run_dir(output, overwrite=config.overwrite) as staging:
        args = TrainingArguments(
            output_dir=str(staging / "checkpoints"),
            num_train_epochs=epochs,
            max_steps=config.max_steps or -1,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.eval_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.lr,
            weight_decay=config.weight_decay,
            warmup_ratio=config.warmup_ratio,
            eval_strategy="steps",
            eval_steps=eval_every,
            save_strategy="steps",
            save_steps=eval_every,
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model="accuracy",
            greater_is_better=True,
            logging_steps=max(1, min(50, eval_every)),
            seed=config.seed,
            data_seed=config.seed,
            group_by_length=config.group_by_length,
            report_to="none",
            disable_tqdm=not config.progress,
            dataloader_num_workers=0,
            save_safetensors=True,
        )
        chance = _chance_accuracy(dataset.splits["dev"])
        collapse = CollapseGuard(chance, active=method is not None)
        trainer = AdvTrainer(
            model=model,
            args=args,
            train_dataset=encoded["train"],
            eval_dataset=encoded["dev"],
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=compute_metrics,
            method=method,
            callbacks=[collapse],
        )
        started = time.perf_counter()
        train_output = trainer.train()
        train_seconds = time.perf_counter() - started
        best_dev = _strip_prefix(trainer.evaluate(encoded["dev"], metric_key_prefix="dev"), "dev")
        test = _strip_prefix(trainer.evaluate(encoded["test"], metric_key_prefix="test"), "test")
        trainer.save_model(str(staging / MODEL_DIR))
        tokenizer.save_pretrained(str(staging / MODEL_DIR))
        if not config.keep_checkpoints:
            shutil.rmtree(staging / "checkpoints", ignore_errors=True)
        metrics = {
            "dev": _dev_history(trainer.state.log_history),
            "best_dev": best_dev,
            "test": test,
            "train": {
                "steps": int(train_output.global_step),
                "loss": float(train_output.training_loss),
                "seconds": round(train_seconds, 2),
                "examples": len(encoded["train"]),
            },
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "collapsed": collapse.collapsed,
        }
        record = dataclasses.asdict(config) | {
            "objective_settings": objective_settings(config.objective, config.objective_options),
            "output": str(output),
            "model_source": loaded.source,
            "label_names": dataset.label_names,
            "is_pair": dataset.is_pair,
            "split_sizes": {split: len(dataset.splits[split]) for split in SPLITS},
            "versions": {
                "advembed": __version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "python": platform.python_version(),
            },
        }
        write_json(staging / CONFIG_FILE, record)
        write_json(staging / METRICS_FILE, metrics)
    return metrics


def run_split(
    config: dict[str, Any],
    split: str,
    *,
    dataset: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
) -> list:
    """The examples of ``split`` for a saved run: its own dataset (same columns, split seed
    and ``--limit``) or another one with the same labels; one-line errors otherwise."""
    from advembed.data import load_dataset

    if split not in SPLITS:
        raise AdvembedError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    same = dataset is None
    data = load_dataset(
        config["dataset"] if same else dataset,
        text_column=config.get("text_column") if same else text_column,
        text_pair_column=config.get("text_pair_column") if same else text_pair_column,
        label_column=config.get("label_column") if same else label_column,
        split_seed=config.get("split_seed", 2024),
    )
    if same and config.get("limit"):
        data = data.limit(config["limit"], seed=config["seed"])
    if data.label_names != config["label_names"]:
        raise AdvembedError(
            f"dataset '{dataset}' has labels {data.label_names}, but the run was trained on "
            f"{config['label_names']}"
        )
    examples = data.splits[split]
    if not examples:
        raise AdvembedError(f"dataset '{dataset or config['dataset']}' has an empty {split} split")
    return examples


def evaluate_run(
    run: Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    batch_size: int = 64,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Re-evaluate a saved run on a split of its own dataset or of another one."""
    from advembed.inference import predict_logits
    from advembed.metrics import classification_metrics
    from advembed.models import load_saved_classifier
    from advembed.runs import read_run

    config, _ = read_run(run)
    examples = run_split(config, split, dataset=dataset, text_column=text_column,
                         text_pair_column=text_pair_column, label_column=label_column)
    loaded = load_saved_classifier(Path(run) / MODEL_DIR)
    logits = predict_logits(
        loaded.model,
        loaded.tokenizer,
        examples,
        batch_size=batch_size,
        max_length=config.get("max_length", 128),
        progress=True,
    )
    labels = np.array([example.label for example in examples])
    result = classification_metrics(logits, labels)
    name = dataset or config["dataset"]
    return {"dataset": name, "split": split, "examples": len(examples)} | result
